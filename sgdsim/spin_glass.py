"""Spherical p-spin landscapes and the descent of many replicas on them.

Convention (see `spin_glass_theory`): H(s) = sum_p a_p N^{-(p-1)/2} sum_{i_1..i_p} J s_{i_1}..s_{i_p}, J iid
N(0, 1), on |s|^2 = N, so E[H(s) H(s')] = N xi(s.s'/N) with xi(q) = sum_p a_p^2 q^p (Auffinger, Ben Arous &
Cerny 2013). Energies are reported per spin (H/N); time is t = step * dt.

Dynamics (all replicas share the couplings, so one matrix product per term serves them all; every step is
taken in the tangent space and followed by a rescaling to |s|^2 = N, which holds the constraint to round-off):
    "gd"        s <- s - dt grad_S H                                  (projected gradient descent / flow)
    "langevin-euler"  s <- s - dt grad_S H + sqrt(2 T dt) P xi        (Euler-Maruyama on the sphere): its
                stationary law is Gibbs only to O(dt); it samples about T (1 + 2 dt) on the p = 3 model
    "langevin"  the same step as a proposal, accepted with the Metropolis-Hastings probability
                min(1, exp(-(H' - H)/T) q(s | s') / q(s' | s)) (Metropolis-adjusted Langevin, MALA: Roberts &
                Tweedie 1996, Bernoulli 2, 341; Hastings 1970): the stationary law is exactly exp(-H/T) on the
                sphere for every dt. The proposal s' = sqrt(N) (s + v)/|s + v|, v = -dt grad_S H + sqrt(2 T dt)
                P xi in the tangent space at s, is inverted by v = N s'/(s.s') - s; its density on the sphere
                is the Gaussian density phi_s(v) of v times the gnomonic Jacobian 1/cos^N(theta), cos theta =
                s.s'/N, which is symmetric in (s, s') and cancels: q(s'|s)/q(s|s') = phi_s(v)/phi_s'(v'),
                phi_s the N(-dt grad_S H(s), 2 T dt I) density on the tangent space at s. A rejected replica
                stays put; the acceptance rate is recorded (near 1 at small dt, where the path is Langevin's
                to O(dt) as for "langevin-euler")
    "minibatch" s <- s - dt grad_S H_B,   H_B: the first contracted index restricted to a random fraction b of
                the sites, rescaled by 1/b (an unbiased gradient whose noise mimics a minibatch; one batch per
                step shared by the replicas)
grad_S = P grad, P = I - s s^T / N.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .errors import ParameterError
from .solvers import pspin as kernels
from .spin_glass_theory import Xi

DEFAULT_MAX_BYTES = 2 * 1024 ** 3   # couplings + one replica workspace; override with max_bytes or SGDSIM_MAX_BYTES
METHODS = ("gd", "langevin", "langevin-euler", "minibatch")


def parse_mixture(text) -> dict[int, float]:
    """'3' -> {3: 1.0}; '2:0.5,3:1' -> {2: 0.5, 3: 1.0} (p: amplitude a_p). ParameterError on bad input."""
    if isinstance(text, (int, np.integer)):
        text = str(text)
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for part in str(text).split(","):
            p, _, a = part.strip().partition(":")
            try:
                items.append((int(p), float(a) if a else 1.0))
            except ValueError:
                raise ParameterError(f"p-spin mixture must look like '3' or '2:0.5,3:1', got {text!r}") from None
    if not items:
        raise ParameterError("p-spin mixture is empty")
    out = {}
    for p, a in items:
        if not 2 <= int(p) <= 6 or not math.isfinite(a) or a == 0 or int(p) in out:
            raise ParameterError(f"p-spin mixture needs distinct p in 2..6 with finite nonzero amplitudes, "
                                 f"got {text!r}")
        out[int(p)] = float(a)
    return dict(sorted(out.items()))


def memory_estimate(n: int, mixture: dict[int, float], replicas: int = 1) -> int:
    """Bytes of the dense symmetric couplings (8 N^p per term) plus one gradient workspace (8 N^{p-1} R)."""
    return kernels.coupling_bytes(n, mixture) + kernels.workspace_bytes(n, mixture, replicas)


def check_memory(n: int, mixture: dict[int, float], replicas: int = 1, max_bytes: int | None = None) -> int:
    """The estimate, or ParameterError before anything is allocated when it exceeds the limit."""
    need = memory_estimate(n, mixture, replicas)
    limit = int(max_bytes if max_bytes is not None else os.environ.get("SGDSIM_MAX_BYTES", DEFAULT_MAX_BYTES))
    if need > limit:
        raise ParameterError(f"p-spin N={n}, p={','.join(map(str, mixture))}, {replicas} replicas needs "
                             f"{need / 1e9:.2f} GB (dense symmetric tensor, 8 N^p bytes per term) > limit "
                             f"{limit / 1e9:.2f} GB; raise max_bytes / SGDSIM_MAX_BYTES or lower N")
    return need


@dataclass
class SphericalPSpin:
    """A spherical mixed p-spin Hamiltonian on |s|^2 = N. Points are columns: s (N,) or S (N, R)."""
    n: int
    mixture: dict[int, float]
    couplings: tuple[np.ndarray, ...] = field(repr=False)

    @property
    def xi(self) -> Xi:
        return Xi.mixture(self.mixture)

    @property
    def weights(self) -> tuple[float, ...]:
        """Prefactors a_p N^{-(p-1)/2} of the symmetric tensors."""
        return tuple(a * self.n ** (-(p - 1) / 2) for p, a in self.mixture.items())

    def energy_gradient(self, S: np.ndarray, batch: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(H (R,), Euclidean gradient (N, R)); with `batch`, H_B and its gradient (see module docstring)."""
        return kernels.gradient(self.couplings, self.weights, np.asarray(S, float), batch)

    def energy(self, S: np.ndarray) -> np.ndarray:
        S = np.asarray(S, float)
        return self.energy_gradient(S.reshape(self.n, -1))[0].reshape(S.shape[1:])

    def riemannian_gradient(self, S: np.ndarray) -> np.ndarray:
        """P grad H: the gradient on the sphere (tangent part)."""
        S = np.asarray(S, float).reshape(self.n, -1)
        return kernels.tangent(S, self.energy_gradient(S)[1])

    def euclidean_hessian(self, s: np.ndarray) -> np.ndarray:
        return kernels.hessian(self.couplings, self.weights, np.asarray(s, float))

    def hessian(self, s: np.ndarray) -> np.ndarray:
        """Riemannian Hessian (N-1, N-1) in an orthonormal basis of the tangent space at s."""
        s = np.asarray(s, float)
        g = self.energy_gradient(s[:, None])[1][:, 0]
        return kernels.riemannian_hessian(self.euclidean_hessian(s), s, g)

    def radial_derivative(self, S: np.ndarray) -> np.ndarray:
        """s.grad H / N per replica (minus the centre of the Hessian spectrum; p u for pure p at a critical point)."""
        S = np.asarray(S, float).reshape(self.n, -1)
        return np.einsum("ir,ir->r", S, self.energy_gradient(S)[1]) / self.n


def spherical_pspin(n: int, mixture, seed: int, max_bytes: int | None = None) -> SphericalPSpin:
    """Draw the couplings of each term p from default_rng([seed, p]) after checking the memory estimate."""
    mixture = parse_mixture(mixture)
    if int(n) < 2:
        raise ParameterError(f"p-spin needs N >= 2, got N={n}")
    check_memory(int(n), mixture, 1, max_bytes)
    couplings = tuple(kernels.draw_couplings(int(n), p, np.random.default_rng([int(seed), p])) for p in mixture)
    return SphericalPSpin(int(n), mixture, couplings)


def random_starts(n: int, replicas: int, seed: int) -> np.ndarray:
    """R independent uniform points on |s|^2 = N, columns of an (N, R) array."""
    S = np.random.default_rng([int(seed), 0xC0FFEE]).standard_normal((n, replicas))
    return kernels.to_sphere(S)


def hessian_spectrum(model: SphericalPSpin, s: np.ndarray) -> np.ndarray:
    """Sorted eigenvalues (N-1) of the Riemannian Hessian at s."""
    return np.linalg.eigvalsh(model.hessian(s))


def record_steps(steps: int, points: int) -> np.ndarray:
    """0, steps and about `points` log-spaced steps between them."""
    if steps == 0:
        return np.zeros(1, np.int64)
    return np.unique(np.concatenate([[0], np.geomspace(1, steps, max(points, 2)).round()]).astype(np.int64))


@dataclass
class Trajectory:
    """Records at `steps` (times t = step dt): energy per spin, |grad_S H|/sqrt(N), overlap with the start
    s(t).s(0)/N (per replica), mean overlap between distinct replicas, the fraction of accepted proposals
    since the start (per replica; 1 for dynamics without a Metropolis test), end points (N, R), and the aging
    correlation s(t).s(t_w)/N (T, W, R) for the waiting steps `waiting` (NaN before t_w)."""
    steps: np.ndarray
    times: np.ndarray
    energy: np.ndarray
    grad_norm: np.ndarray
    overlap_start: np.ndarray
    overlap_replicas: np.ndarray
    acceptance: np.ndarray
    end: np.ndarray
    waiting: np.ndarray
    overlap_waiting: np.ndarray
    dt: float
    status: str = "complete"
    message: str = ""


def metropolis_log_ratio(S, S_new, H, H_new, grad, grad_new, dt: float, temperature: float) -> np.ndarray:
    """log of the MALA acceptance probability (before min(0, .)) of S -> S_new for every replica (see the
    module docstring): -(H' - H)/T + log phi_s'(v') - log phi_s(v), v = N s'/(s.s') - s, v' = N s/(s.s') - s',
    phi_s the density of N(-dt grad_S H(s), 2 T dt I); grad, grad_new are the Riemannian gradients."""
    n = S.shape[0]
    overlap = np.einsum("ir,ir->r", S, S_new)
    forward = n * S_new / overlap - S + dt * grad
    backward = n * S / overlap - S_new + dt * grad_new
    squares = np.einsum("ir,ir->r", backward, backward) - np.einsum("ir,ir->r", forward, forward)
    quad = squares / (4 * temperature * dt)
    return -(H_new - H) / temperature - quad


def descend(model: SphericalPSpin, S0: np.ndarray, method: str = "gd", *, dt: float, steps: int,
            temperature: float = 0.0, fraction: float = 1.0, seed: int = 0, points: int = 40,
            waiting: tuple[int, ...] = (), grad_tol: float = 0.0, progress: bool = False) -> Trajectory:
    """Run R replicas (columns of S0) with `method` (see `METHODS`) for `steps` steps of size dt;
    `waiting`: steps t_w at which the configuration is kept to record the two-time correlation C(t, t_w).
    grad_tol > 0 (gd, langevin-euler, langevin): stop at the first step where every replica has
    |grad_S H|/sqrt(N) < grad_tol (that step is recorded; the message says so)."""
    if method not in METHODS:
        raise ParameterError(f"unknown p-spin dynamics {method!r} (valid: {', '.join(METHODS)})")
    if not (dt > 0 and temperature >= 0 and 0 < fraction <= 1 and steps >= 0 and grad_tol >= 0):
        raise ParameterError(f"descent needs dt > 0, T >= 0, 0 < fraction <= 1, steps >= 0, grad_tol >= 0 "
                             f"(got dt={dt}, T={temperature}, fraction={fraction}, steps={steps}, "
                             f"grad_tol={grad_tol})")
    if method == "minibatch" and grad_tol > 0:
        raise ParameterError("grad_tol needs the full gradient at every step: not with minibatch dynamics")
    n, r = S0.shape
    rng = np.random.default_rng([int(seed), 0xD1CE])
    S = kernels.to_sphere(np.array(S0, float))
    start = S.copy()
    waiting = np.array(sorted({int(w) for w in waiting if 0 <= int(w) <= steps}), np.int64)
    marks = np.union1d(record_steps(steps, points), waiting)
    kept = np.full((len(waiting), n, r), np.nan)
    rows = {k: [] for k in ("energy", "grad_norm", "overlap_start", "overlap_replicas", "acceptance",
                            "overlap_waiting")}
    status, message, done, stopped = "complete", "", 0, False
    off = ~np.eye(r, dtype=bool)
    noisy = method in ("langevin", "langevin-euler") and temperature > 0
    metropolis = method == "langevin" and temperature > 0
    noise = math.sqrt(2.0 * temperature * dt) if noisy else 0.0
    batch_size = max(1, int(round(fraction * n)))
    accepted = np.zeros(r)
    recorded_steps = []
    if method != "minibatch":
        H, G = model.energy_gradient(S)
        grad = kernels.tangent(S, G)
    with tqdm(total=steps, disable=None if progress else True, delay=1.0, unit="step", leave=False) as bar:
        for step in range(steps + 1):
            if method == "minibatch" and step in marks:
                H, G = model.energy_gradient(S)
                grad = kernels.tangent(S, G)
            norm = np.sqrt(np.einsum("ir,ir->r", grad, grad) / n) if method != "minibatch" or step in marks else None
            stopped = grad_tol > 0 and bool(np.all(norm < grad_tol))
            if step in marks or stopped or step == steps:
                kept[waiting == step] = S
                q = S.T @ S / n
                rows["energy"].append(H / n)
                rows["grad_norm"].append(norm)
                rows["overlap_start"].append(np.einsum("ir,ir->r", S, start) / n)
                rows["overlap_replicas"].append(q[off].mean() if r > 1 else np.nan)
                rows["acceptance"].append(accepted / step if metropolis and step else np.ones(r))
                rows["overlap_waiting"].append(np.einsum("wir,ir->wr", kept, S) / n)
                recorded_steps.append(step)
                done = step
                if not np.all(np.isfinite(H)):
                    status, message = "diverged", f"energy not finite at step {step} (t = {step * dt:g})"
                    break
            if stopped or step == steps:
                break
            if method == "minibatch":
                batch = np.sort(rng.choice(n, batch_size, replace=False))
                grad = kernels.tangent(S, model.energy_gradient(S, batch)[1])
            step_vector = -dt * grad
            if noise:
                step_vector += noise * kernels.tangent(S, rng.standard_normal(S.shape))
            S_new = kernels.to_sphere(S + step_vector)
            if method == "minibatch":
                S = S_new
            else:
                H_new, G_new = model.energy_gradient(S_new)
                grad_new = kernels.tangent(S_new, G_new)
                take = np.ones(r, bool)
                if metropolis:
                    log_ratio = metropolis_log_ratio(S, S_new, H, H_new, grad, grad_new, dt, temperature)
                    take = np.log(rng.random(r)) < log_ratio
                    accepted += take
                S = np.where(take, S_new, S)
                H = np.where(take, H_new, H)
                grad = np.where(take, grad_new, grad)
            bar.update(1)
    k = len(rows["energy"])
    arrays = {key: np.array(rows[key]) for key in rows}
    arrays["overlap_waiting"] = arrays["overlap_waiting"].reshape(k, len(waiting), r)
    if status == "complete":
        message = (f"stopped at step {done} (t = {done * dt:g}): |grad_S H|/sqrt(N) < {grad_tol:g} for every "
                   f"replica" if stopped and done < steps else f"{done} steps")
    return Trajectory(np.array(recorded_steps, np.int64), np.array(recorded_steps) * dt, end=S, waiting=waiting,
                      dt=dt, status=status, message=message, **arrays)


def write_trajectory(writer, name: str, traj: Trajectory, attrs: dict | None = None) -> None:
    """Store a trajectory as elements /observables/<name>_{energy, grad_norm, overlap_start} (value (T, R))
    and <name>_overlap_replicas (value (T,)), and the end points as /observables/<name>_end (one row (N, R))."""
    r = traj.energy.shape[1] if traj.energy.ndim == 2 else 1
    replica = {"replica": np.arange(r)}
    described = {"energy": "H/N per replica", "grad_norm": "|grad_S H|/sqrt(N) per replica",
                 "overlap_start": "s(t).s(0)/N per replica", "overlap_replicas": "mean s_a.s_b/N over a != b",
                 "acceptance": "fraction of accepted Metropolis proposals since the start (1 without a test)"}
    for key, text in described.items():
        values = getattr(traj, key)
        el = writer.element(f"{name}_{key}", values.shape[1:], coords=replica if values.ndim == 2 else None,
                            attrs={"description": text, **(attrs or {})})
        for step, t, v in zip(traj.steps, traj.times, values):
            el.append(int(step), float(t), v)
    if len(traj.waiting):
        el = writer.element(f"{name}_overlap_waiting", traj.overlap_waiting.shape[1:],
                            coords={"waiting_time": traj.waiting * traj.dt, "replica": np.arange(r)},
                            attrs={"description": "aging correlation s(t).s(t_w)/N (NaN before t_w)",
                                   "waiting_steps": traj.waiting, **(attrs or {})})
        for step, t, v in zip(traj.steps, traj.times, traj.overlap_waiting):
            el.append(int(step), float(t), v)
    end = writer.element(f"{name}_end", traj.end.shape, attrs={"description": "end points (N, R) on |s|^2 = N"})
    if len(traj.steps):
        end.append(int(traj.steps[-1]), float(traj.times[-1]), traj.end)
