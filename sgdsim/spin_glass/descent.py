"""Spherical p-spin landscapes and the descent of many replicas on them.

Convention (see `spin_glass.theory`): H(s) = sum_p a_p N^{-(p-1)/2} sum_{i_1..i_p} J s_{i_1}..s_{i_p}, J iid
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

from ..errors import ParameterError
from ..runloop import Schedule, Status, drive, record_steps_array
from ..solvers.spin_glass import pspin as kernels
from .theory import Xi

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
    """0, steps and about `points` log-spaced steps between them (`runloop.Schedule`)."""
    return record_steps_array(Schedule(log_points=max(points, 2)), steps)


@dataclass
class Descent:
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


class _Descent:
    """The state of R replicas under one dynamics, advanced k steps at a time by the run loop."""

    def __init__(self, model, S0, method, dt, temperature, fraction, seed, grad_tol):
        self.model, self.method, self.dt, self.grad_tol = model, method, dt, grad_tol
        n, r = S0.shape
        self.n, self.r = n, r
        self.rng = np.random.default_rng([int(seed), 0xD1CE])
        self.S = kernels.to_sphere(np.array(S0, float))
        self.start = self.S.copy()
        noisy = method in ("langevin", "langevin-euler") and temperature > 0
        self.metropolis = method == "langevin" and temperature > 0
        self.temperature = temperature
        self.noise = math.sqrt(2.0 * temperature * dt) if noisy else 0.0
        self.batch_size = max(1, int(round(fraction * n)))
        self.accepted = np.zeros(r)
        self.step = 0
        self.stopped = False
        self.H = self.grad = None
        if method != "minibatch":
            self._full()

    def _full(self):
        self.H, G = self.model.energy_gradient(self.S)
        self.grad = kernels.tangent(self.S, G)

    def grad_norm(self) -> np.ndarray:
        return np.sqrt(np.einsum("ir,ir->r", self.grad, self.grad) / self.n)

    def advance(self, k: int) -> int:
        """Up to k steps; fewer when every replica's gradient norm falls below grad_tol (checked before each
        step, as the state is recorded there). Returns the number of steps taken."""
        for taken in range(k):
            if self.grad_tol > 0 and bool(np.all(self.grad_norm() < self.grad_tol)):
                self.stopped = True
                return taken
            self._one_step()
            self.step += 1
        return k

    def _one_step(self) -> None:
        S, dt = self.S, self.dt
        if self.method == "minibatch":
            batch = np.sort(self.rng.choice(self.n, self.batch_size, replace=False))
            self.grad = kernels.tangent(S, self.model.energy_gradient(S, batch)[1])
        step_vector = -dt * self.grad
        if self.noise:
            step_vector += self.noise * kernels.tangent(S, self.rng.standard_normal(S.shape))
        S_new = kernels.to_sphere(S + step_vector)
        if self.method == "minibatch":
            self.S = S_new
            return
        H_new, G_new = self.model.energy_gradient(S_new)
        grad_new = kernels.tangent(S_new, G_new)
        take = np.ones(self.r, bool)
        if self.metropolis:
            log_ratio = metropolis_log_ratio(S, S_new, self.H, H_new, self.grad, grad_new, dt, self.temperature)
            take = np.log(self.rng.random(self.r)) < log_ratio
            self.accepted += take
        self.S = np.where(take, S_new, S)
        self.H = np.where(take, H_new, self.H)
        self.grad = np.where(take, grad_new, self.grad)

    def observables(self, kept: np.ndarray) -> dict:
        """One record: energy per spin, gradient norm, overlaps, acceptance, aging correlations."""
        if self.method == "minibatch":
            self._full()
        S, n, r = self.S, self.n, self.r
        q = S.T @ S / n
        off = ~np.eye(r, dtype=bool)
        return {"energy": self.H / n, "grad_norm": self.grad_norm(),
                "overlap_start": np.einsum("ir,ir->r", S, self.start) / n,
                "overlap_replicas": q[off].mean() if r > 1 else np.nan,
                "acceptance": self.accepted / self.step if self.metropolis and self.step else np.ones(r),
                "overlap_waiting": np.einsum("wir,ir->wr", kept, S) / n}

    def diverged(self) -> str | None:
        finite = np.all(np.isfinite(self.S), axis=0)
        if self.H is not None:
            finite &= np.isfinite(self.H)
        if finite.all():
            return None
        return (f"energy not finite at step {self.step} (t = {self.step * self.dt:g}), replica "
                f"{int(np.argmin(finite))}: lower dt")


def descend(model: SphericalPSpin, S0: np.ndarray, method: str = "gd", *, dt: float, steps: int,
            temperature: float = 0.0, fraction: float = 1.0, seed: int = 0, points: int = 40,
            waiting: tuple[int, ...] = (), grad_tol: float = 0.0, progress: bool = False,
            writer=None, name: str = "", attrs: dict | None = None) -> Descent:
    """Run R replicas (columns of S0) with `method` (see `METHODS`) for `steps` steps of size dt;
    `waiting`: steps t_w at which the configuration is kept to record the two-time correlation C(t, t_w).
    grad_tol > 0 (gd, langevin-euler, langevin): stop at the first step where every replica has
    |grad_S H|/sqrt(N) < grad_tol (that step is recorded; the message says so).

    With a run `writer`, every record is streamed to it as it is taken (elements named as by
    `write_trajectory`, flushed at each record), so a run killed at any moment leaves every record up to the
    last flush; SIGINT/SIGTERM under the CLI stop at the next chunk with status "interrupted" (`sgdsim.runloop`)."""
    if method not in METHODS:
        raise ParameterError(f"unknown p-spin dynamics {method!r} (valid: {', '.join(METHODS)})")
    if not (dt > 0 and temperature >= 0 and 0 < fraction <= 1 and steps >= 0 and grad_tol >= 0):
        raise ParameterError(f"descent needs dt > 0, T >= 0, 0 < fraction <= 1, steps >= 0, grad_tol >= 0 "
                             f"(got dt={dt}, T={temperature}, fraction={fraction}, steps={steps}, "
                             f"grad_tol={grad_tol})")
    if method == "minibatch" and grad_tol > 0:
        raise ParameterError("grad_tol needs the full gradient at every step: not with minibatch dynamics")
    state = _Descent(model, S0, method, dt, temperature, fraction, seed, grad_tol)
    n, r = state.n, state.r
    waiting = np.array(sorted({int(w) for w in waiting if 0 <= int(w) <= steps}), np.int64)
    marks = np.union1d(record_steps(steps, points), waiting)
    kept = np.full((len(waiting), n, r), np.nan)
    rows = {k: [] for k in ("energy", "grad_norm", "overlap_start", "overlap_replicas", "acceptance",
                            "overlap_waiting")}
    recorded = []
    sink = _TrajectorySink(writer, name, r, waiting, dt, attrs) if writer is not None else None

    def record(step: int) -> None:
        kept[waiting == step] = state.S
        values = state.observables(kept)
        for key, value in values.items():
            rows[key].append(value)
        recorded.append(step)
        if sink is not None:
            sink.append(step, values)

    result = drive(state.advance, steps, Schedule(steps=tuple(int(m) for m in marks)), record,
                   diverged=state.diverged, progress=progress, stopped=lambda: state.stopped)
    if sink is not None:
        sink.finish(recorded[-1], state.S)
    k = len(rows["energy"])
    arrays = {key: np.array(rows[key]) for key in rows}
    arrays["overlap_waiting"] = arrays["overlap_waiting"].reshape(k, len(waiting), r)
    message = result.message
    if result.status is Status.COMPLETE:
        message = (f"stopped at step {result.steps_done} (t = {result.steps_done * dt:g}): |grad_S H|/sqrt(N) < "
                   f"{grad_tol:g} for every replica" if state.stopped else f"{result.steps_done} steps")
    return Descent(np.array(recorded, np.int64), np.array(recorded) * dt, end=state.S, waiting=waiting,
                      dt=dt, status=str(result.status), message=message, **arrays)


class _TrajectorySink:
    """The run-file elements of one trajectory (see `write_trajectory`), appended one record at a time."""

    DESCRIBED = {"energy": "H/N per replica", "grad_norm": "|grad_S H|/sqrt(N) per replica",
                 "overlap_start": "s(t).s(0)/N per replica", "overlap_replicas": "mean s_a.s_b/N over a != b",
                 "acceptance": "fraction of accepted Metropolis proposals since the start (1 without a test)"}

    def __init__(self, writer, name: str, replicas: int, waiting: np.ndarray, dt: float, attrs: dict | None):
        replica = {"replica": np.arange(replicas)}
        self.writer, self.dt = writer, dt
        self.elements = {key: writer.element(f"{name}_{key}", () if key == "overlap_replicas" else (replicas,),
                                             coords=None if key == "overlap_replicas" else replica,
                                             attrs={"description": text, **(attrs or {})})
                         for key, text in self.DESCRIBED.items()}
        if len(waiting):
            self.elements["overlap_waiting"] = writer.element(
                f"{name}_overlap_waiting", (len(waiting), replicas),
                coords={"waiting_time": waiting * dt, "replica": np.arange(replicas)},
                attrs={"description": "aging correlation s(t).s(t_w)/N (NaN before t_w)",
                       "waiting_steps": waiting, **(attrs or {})})
        self.name = name

    def append(self, step: int, values: dict) -> None:
        t = step * self.dt
        for key, element in self.elements.items():
            element.append(int(step), float(t), values[key])
        self.writer.flush()

    def finish(self, step: int, S: np.ndarray) -> None:
        """The end points (N, R) as one row at the last recorded step."""
        end = self.writer.element(f"{self.name}_end", S.shape, attrs={"description": "end points (N, R) on "
                                                                                      "|s|^2 = N"})
        end.append(int(step), float(step * self.dt), S)
        self.writer.flush()


def write_trajectory(writer, name: str, traj: Descent, attrs: dict | None = None) -> None:
    """Store a trajectory computed without a writer as elements /observables/<name>_{energy, grad_norm,
    overlap_start, acceptance} (value (T, R)), <name>_overlap_replicas (value (T,)), <name>_overlap_waiting and
    the end points /observables/<name>_end (one row (N, R)): what `descend(writer=...)` streams."""
    r = traj.end.shape[1]
    sink = _TrajectorySink(writer, name, r, traj.waiting, traj.dt, attrs)
    for i, step in enumerate(traj.steps):
        sink.append(int(step), {key: getattr(traj, key)[i] for key in sink.elements})
    if len(traj.steps):
        sink.finish(int(traj.steps[-1]), traj.end)
