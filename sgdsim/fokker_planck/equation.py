"""The Fokker–Planck equation of SGD on a grid: set-up from a loss or a drift, time stepping with recording,
steady state, free energy, KL, probability currents, circulation and mean first-passage times.

    dp/dt = -div J,   J = b p - T div(D p)   (Itô; b = -grad f for a loss f; constant D: div(p grad f) +
                                             T div(D grad p); Chaudhari & Soatto 2018, eq. 6)

The engine is `solvers.fokker_planck.finite_volume` (finite volumes, Scharfetter–Gummel fluxes, sparse LU). Times are
continuous; for SGD, t = step x lr and the SDE limit has T = lr / (2B) and D the gradient-noise covariance
(`sde_coefficients`). `sme_problem` and `pde_density` give SGD's stochastic modified equation of order 2
(default) or 1 (`modified_equations`): drift -grad(f + (lr/4)|grad f|^2) or -grad f, T D = lr Sigma / 2.

    fp = sgdsim.fokker_planck.problem(loss=sgdsim.DoubleWell(1), temperature=0.25, lo=-2.5, hi=2.5, cells=400)
    p_ss = fp.steady_state()                      # == fp.gibbs() to round-off for isotropic D
    out = fp.evolve(fp.point_mass([-1.0]), times=[0, 1, 10], dt=0.01)   # out.density[i] at out.times[i]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..particles.dynamics import SGD, SME, Dynamics, GradientDescent, Langevin, minibatch_noise_factor
from ..errors import ParameterError
from .. import runloop
from ..particles.landscapes import Landscape, Regression, Tilted
from ..particles.modified_equations import euler_modified_coefficients, modified_loss
from ..solvers.fokker_planck import finite_volume as FP


def _points(mesh: list[np.ndarray]) -> np.ndarray:
    return np.stack([m.ravel() for m in mesh], axis=-1)


def _evaluate(fn, mesh: list[np.ndarray]) -> np.ndarray:
    """fn at the points of a mesh (M, d) -> array of the mesh's shape (+ trailing dims of fn's output)."""
    x = _points(mesh)
    out = np.asarray(fn.value(x) if isinstance(fn, Landscape) else fn(x), dtype=float)
    return out.reshape(mesh[0].shape + out.shape[1:])


@dataclass
class Evolution:
    """Densities recorded at `times`: `density` has shape (len(times), *grid.shape); `steps` is the number of
    time steps taken to reach each record."""
    times: np.ndarray
    density: np.ndarray
    steps: np.ndarray
    status: str = "complete"
    message: str = ""


class FokkerPlanck:
    """One Fokker–Planck problem on a grid: its generator A (dp/dt = A p) and the functionals of a density.

    Densities are arrays of the grid's shape (cell averages, integrating to 1 with the cell volume)."""

    def __init__(self, grid: FP.Grid, A, fluxes: list, temperature: float, loss_values: np.ndarray | None,
                 isotropic: bool, diagonal: bool):
        self.grid, self.A, self.fluxes, self.temperature = grid, A, fluxes, float(temperature)
        self.loss_values = loss_values           # f at the cell centres (None for a non-gradient drift)
        self.isotropic = isotropic               # D = I: the steady state is exactly Gibbs
        self.diagonal = diagonal                 # no cross diffusion: A is an M-matrix, p >= 0 guaranteed

    # --- grid helpers ------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.grid.shape)

    def coords(self) -> dict[str, np.ndarray]:
        """Cell centres per axis, named x, y, z (the run-file coordinates of a density)."""
        return {"xyz"[k]: self.grid.centres(k) for k in range(self.grid.dim)}

    def integrate(self, values: np.ndarray) -> float:
        return float(np.sum(values) * self.grid.volume)

    def point_mass(self, x0) -> np.ndarray:
        """Unit mass at x0, shared between the nearest cell centres by linear (cloud-in-cell) weights, so its
        mean is x0 exactly away from the walls: the discrete delta for particles started at one point."""
        x0 = np.atleast_1d(np.asarray(x0, dtype=float))
        if x0.shape != (self.grid.dim,):
            raise ParameterError(f"start point must have {self.grid.dim} coordinates, got {x0.shape}")
        if np.any(x0 < np.asarray(self.grid.lo)) or np.any(x0 > np.asarray(self.grid.hi)):
            raise ParameterError(f"start point {x0.tolist()} is outside the grid [{self.grid.lo}, {self.grid.hi}]")
        p = np.ones(())
        for k in range(self.grid.dim):
            s = (x0[k] - self.grid.lo[k]) / self.grid.spacing[k] - 0.5
            i = int(np.clip(np.floor(s), 0, self.shape[k] - 2))
            w = float(np.clip(s - i, 0.0, 1.0))
            axis = np.zeros(self.shape[k])
            axis[i], axis[i + 1] = 1.0 - w, w
            p = np.multiply.outer(p, axis)
        return p / self.grid.volume

    def gaussian(self, mean, std) -> np.ndarray:
        """A Gaussian sampled at the cell centres (std per axis), normalized on the grid."""
        mean = np.broadcast_to(np.asarray(mean, float), (self.grid.dim,))
        std = np.broadcast_to(np.asarray(std, float), (self.grid.dim,))
        r2 = sum(((m - c) / s) ** 2 for m, c, s in zip(self.grid.mesh(), mean, std))
        p = np.exp(-0.5 * r2)
        return p / self.integrate(p)

    # --- equilibrium -------------------------------------------------------------------------------------
    def gibbs(self) -> np.ndarray:
        """exp(-f/T)/Z sampled at the cell centres (the exact discrete steady state for D = I)."""
        if self.loss_values is None:
            raise ParameterError("the Gibbs density needs a loss (this problem was given a drift)")
        w = np.exp(-(self.loss_values - self.loss_values.min()) / self.temperature)
        return w / self.integrate(w)

    def steady_state(self) -> np.ndarray:
        """The null vector of the generator, normalized (one sparse LU solve)."""
        try:
            # Gibbs weights rescale the unknowns where they help (diagonal D: the generator is an M-matrix);
            # with cross diffusion the steady state can exceed them by orders of magnitude in the corners
            weights = self.gibbs() if self.diagonal and self.loss_values is not None else None
            p = FP.steady_state(self.A, self.grid.volume, weights)
        except ValueError as e:
            raise ParameterError(str(e)) from None
        return p.reshape(self.shape)

    def relaxation_time(self) -> float:
        """1/lambda_1, the inverse spectral gap of the generator A (dp/dt = A p): the slowest mode's decay time
        (for a double well the inter-well relaxation, 1/(k_LR + k_RL) by Kramers; Risken 1989, sec. 5.7 and
        eq. 5.110). The two eigenvalues of A nearest 0 by shift-invert Arnoldi; lambda_0 = 0 is the steady state.
        inf when the slowest mode does not decay (a disconnected or periodic problem with no gap)."""
        from scipy.sparse.linalg import eigs
        n = self.A.shape[0]
        if n <= 8:   # too small for Arnoldi with k = 3
            values = np.linalg.eigvals(self.A.toarray())
        else:
            values = eigs(self.A.tocsc(), k=3, sigma=1e-9, which="LM", v0=np.ones(n), return_eigenvectors=False)
        rates = np.sort(-values.real)
        gap = rates[1] if len(rates) > 1 else 0.0
        return float(1.0 / gap) if gap > 0 else float("inf")

    # --- time stepping -----------------------------------------------------------------------------------
    def stepper(self, p0: np.ndarray, dt: float, scheme: str = "bdf2") -> FP.Stepper:
        try:
            return FP.Stepper(self.A, np.asarray(p0, float).ravel(), dt, scheme)
        except ValueError as e:
            raise ParameterError(str(e)) from None

    def evolve(self, p0: np.ndarray, times, dt: float, scheme: str = "bdf2", *, progress: bool = False,
               callback: Callable | None = None) -> Evolution:
        """Advance p0 from t = 0 and record the density at `times` (non-decreasing; 0 records p0). Each
        interval between records is cut into equal steps of at most dt; the LU factors are reused while the
        step stays the same (a new step size refactors, and BDF2 restarts with one implicit Euler step).
        `callback(index, time, density)` is called at each record (e.g. to append to a run file). A density
        that becomes non-finite stops with status "diverged" and a message naming the time.

        The steps run on `sgdsim.runloop.drive` (chunks of about 0.3 s between records, never past one): under
        `sgdsim run` a SIGINT/SIGTERM stops at the next chunk with status "interrupted", the densities recorded
        up to then kept (records stay at the requested times)."""
        times = np.asarray(times, dtype=float).ravel()
        if times.size == 0 or times[0] < 0 or np.any(np.diff(times) < 0) or not np.all(np.isfinite(times)):
            raise ParameterError("record times must be finite, non-negative and non-decreasing")
        if not (isinstance(dt, (int, float)) and dt > 0):
            raise ParameterError(f"time step dt must be positive, got {dt!r}")
        # the steps of every interval (to times[i] from the previous record time, from 0 for the first)
        counts, sizes, now = np.zeros(len(times), np.int64), np.zeros(len(times)), 0.0
        for i, t in enumerate(times):
            gap = t - now
            if gap > 1e-12 * max(1.0, t):
                counts[i] = int(np.ceil(gap / dt * (1 - 1e-12)))
                sizes[i] = gap / counts[i]
            now = t
        ends = np.cumsum(counts)                       # the step at which record i is taken
        n_steps = int(ends[-1])
        run = _Evolving(self, np.asarray(p0, dtype=float).reshape(self.shape).copy(), scheme, times, counts,
                        sizes, ends, callback)
        result = runloop.drive(run.advance, n_steps, runloop.Schedule(steps=tuple(int(e) for e in np.unique(ends))),
                               run.record, diverged=run.diverged, progress=progress)
        status, message = str(result.status), result.message
        if result.status is runloop.Status.INTERRUPTED:
            last = f"{times[len(run.out) - 1]:g}" if run.out else "none"
            message = (f"{result.message} (t = {run.time(result.steps_done):g}; densities recorded up to "
                       f"t = {last})")
        return Evolution(times[:len(run.out)], np.array(run.out), np.array(run.steps, dtype=np.int64), status,
                         message)

    # --- functionals -------------------------------------------------------------------------------------
    def mass(self, p: np.ndarray) -> float:
        return self.integrate(p)

    def mean(self, p: np.ndarray) -> np.ndarray:
        return np.array([self.integrate(p * m) for m in self.grid.mesh()])

    def covariance(self, p: np.ndarray) -> np.ndarray:
        mesh, mu = self.grid.mesh(), self.mean(p)
        d = self.grid.dim
        return np.array([[self.integrate(p * (mesh[i] - mu[i]) * (mesh[j] - mu[j])) for j in range(d)]
                         for i in range(d)])

    def free_energy(self, p: np.ndarray) -> float:
        """F(p) = E_p[f] - T H(p), H(p) = -int p log p (Chaudhari & Soatto 2018, eq. 8); for isotropic D it
        is T KL(p || Gibbs) - T log Z, so it decreases along the flow (Jordan, Kinderlehrer & Otto 1998)."""
        if self.loss_values is None:
            raise ParameterError("the free energy needs a loss (this problem was given a drift)")
        return self.integrate(p * self.loss_values) + self.temperature * self.integrate(_plogp(p))

    def kl(self, p: np.ndarray, q: np.ndarray) -> float:
        """KL(p || q) = int p log(p / q) (infinite if p > 0 where q = 0)."""
        p, q = np.asarray(p, float), np.asarray(q, float)
        support = p > 0
        if np.any(q[support] <= 0):
            return float("inf")
        return self.integrate(np.where(support, p * np.log(np.where(support, p, 1.0) / np.where(support, q, 1.0)), 0.0))

    def face_currents(self, p: np.ndarray) -> list[np.ndarray]:
        """The probability flux J_k through every face normal to axis k, the scheme's own (so that
        dp/dt = -sum_k (J_k[i+1/2] - J_k[i-1/2]) / h_k holds exactly)."""
        p = np.asarray(p, float).ravel()
        return [(F @ p).reshape(self.grid.face_mesh(k)[0].shape) for k, F in enumerate(self.fluxes)]

    def current(self, p: np.ndarray) -> np.ndarray:
        """J = b p - T div(D p) at the cell centres, shape (d, *grid.shape): the mean of the two face fluxes."""
        out = []
        for k, j in enumerate(self.face_currents(p)):
            if self.grid.boundary[k] == "periodic":
                out.append(0.5 * (j + np.roll(j, 1, axis=k)))
            else:
                n = j.shape[k]
                lo = np.take(j, np.arange(n - 1), axis=k)
                hi = np.take(j, np.arange(1, n), axis=k)
                out.append(0.5 * (lo + hi))
        return np.array(out)

    def circulation(self, p: np.ndarray, centre=(0.0, 0.0)) -> float:
        """(1/2) int (x J_y - y J_x) dx about `centre`: the mean rate of the Stratonovich area
        (1/2) int (x o dy - y o dx) swept by the process (2-D, constant symmetric D; zero at equilibrium,
        non-zero for a steady current, e.g. when D does not commute with the Hessian)."""
        if self.grid.dim != 2:
            raise ParameterError("the circulation is defined for 2-D problems")
        J = self.current(p)
        x, y = (m - c for m, c in zip(self.grid.mesh(), centre))
        return 0.5 * self.integrate(x * J[1] - y * J[0])

    def mfpt(self, target: np.ndarray | Callable) -> np.ndarray:
        """Mean first-passage time to the target cells from every cell (array of the grid's shape); the
        target is a boolean mask over the cells or a predicate on the cell centres (M, d) -> (M,)."""
        mask = _evaluate(target, self.grid.mesh()) if callable(target) else np.asarray(target)
        try:
            return FP.mean_first_passage(self.A, mask.astype(bool)).reshape(self.shape)
        except ValueError as e:
            raise ParameterError(str(e)) from None

    def bin_probabilities(self, p: np.ndarray, edges: np.ndarray) -> np.ndarray:
        """The probability of each bin [edges[j], edges[j+1]] of a 1-D density (exact for the piecewise-
        constant cell density): the PDE's counterpart of a particle histogram."""
        if self.grid.dim != 1:
            raise ParameterError("bin probabilities are for 1-D problems")
        faces = self.grid.lo[0] + np.arange(self.shape[0] + 1) * self.grid.spacing[0]
        cdf = np.concatenate([[0.0], np.cumsum(p) * self.grid.spacing[0]])
        return np.diff(np.interp(edges, faces, cdf))



class _Evolving:
    """The state of one `FokkerPlanck.evolve`: the density, its stepper, and the records taken."""

    def __init__(self, fp: FokkerPlanck, p: np.ndarray, scheme: str, times, counts, sizes, ends, callback):
        self.fp, self.p, self.scheme, self.callback = fp, p, scheme, callback
        self.times, self.counts, self.sizes, self.ends = times, counts, sizes, ends
        self.stepper: FP.Stepper | None = None
        self.step, self.next = 0, 0          # steps taken; the index of the next record
        self.out: list[np.ndarray] = []
        self.steps: list[int] = []

    def interval(self, step: int) -> int:
        """The index of the record that ends the interval holding the step after `step`."""
        return int(np.searchsorted(self.ends, step, side="right"))

    def time(self, step: int) -> float:
        """The time reached after `step` steps (a record time exactly at the end of an interval)."""
        i = self.interval(step)
        if i > 0 and self.ends[i - 1] == step:
            return float(self.times[i - 1])
        if i >= len(self.times):
            return float(self.times[-1])
        return float(self.times[i] - (self.ends[i] - step) * self.sizes[i])

    def advance(self, k: int) -> None:
        i = self.interval(self.step)
        if self.step == self.ends[i] - self.counts[i]:   # the first step of an interval: refactor if dt changed
            h = self.sizes[i]
            if self.stepper is None or abs(self.stepper.dt - h) > 1e-12 * self.stepper.dt:
                self.stepper = self.fp.stepper(self.p, h, self.scheme)
        self.stepper.advance(k)
        self.p = self.stepper.p.reshape(self.fp.shape)
        self.step += k

    def record(self, step: int) -> None:
        """The density at every record time whose interval ends at `step` (none for the step an interrupt
        reached between two of them); a non-finite density is not kept (`diverged` reports it)."""
        while self.next < len(self.ends) and self.ends[self.next] == step and np.all(np.isfinite(self.p)):
            self.out.append(self.p.copy())
            self.steps.append(step)
            if self.callback is not None:
                self.callback(self.next, float(self.times[self.next]), self.out[-1])
            self.next += 1

    def diverged(self) -> str | None:
        if np.all(np.isfinite(self.p)):
            return None
        return f"the Fokker–Planck density became non-finite by t = {self.time(self.step):g}"


def _plogp(p: np.ndarray) -> np.ndarray:
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def problem(*, temperature: float, lo, hi, cells, loss: Landscape | Callable | None = None,
            drift: Callable | None = None, diffusion=None, boundary="reflecting") -> FokkerPlanck:
    """Set up dp/dt = -div(b p - T div(D p)) on the box [lo, hi] with `cells` cells per axis.

    loss: a Landscape or f(x) with x (M, d) -> (M,), giving b = -grad f (the face drift is the difference of
    f across the face, which makes the Gibbs density the exact discrete steady state); or drift: b(x), x
    (M, d) -> (M, d). diffusion: None (identity), a constant (d, d) matrix, or D(x): (M, d) -> (M, d, d)
    (Itô form). boundary: one name for every axis or one per axis (reflecting, absorbing, periodic)."""
    d = max(np.size(lo), np.size(hi), np.size(cells), loss.dim if isinstance(loss, Landscape) else 1)
    try:
        lo, hi = (np.broadcast_to(np.asarray(v, float), (d,)) for v in (lo, hi))
    except ValueError:
        raise ParameterError(f"lo, hi and cells must have one entry or one per axis ({d} axes)") from None
    cells = tuple(int(c) for c in np.broadcast_to(np.asarray(cells), (d,)))
    boundary = (boundary,) * d if isinstance(boundary, str) else tuple(boundary)
    if (loss is None) == (drift is None):
        raise ParameterError("give exactly one of loss (b = -grad f) or drift (b(x))")
    if not (isinstance(temperature, (int, float)) and np.isfinite(temperature) and temperature > 0):
        raise ParameterError(f"temperature must be a positive number, got {temperature!r}")
    try:
        grid = FP.Grid(tuple(lo), tuple(hi), cells, boundary)
    except ValueError as e:
        raise ParameterError(str(e)) from None
    if isinstance(loss, Landscape) and loss.dim != d:
        raise ParameterError(f"the loss has dimension {loss.dim} but the grid has {d} axes")
    h = grid.spacing
    face_drift = []
    for k in range(d):
        mesh = grid.face_mesh(k)
        if loss is not None:
            plus = [m + (h[k] / 2 if j == k else 0.0) for j, m in enumerate(mesh)]
            minus = [m - (h[k] / 2 if j == k else 0.0) for j, m in enumerate(mesh)]
            face_drift.append(-(_evaluate(loss, plus) - _evaluate(loss, minus)) / h[k])
        else:
            face_drift.append(_evaluate(drift, mesh)[..., k])
    isotropic = diffusion is None
    if diffusion is None or not callable(diffusion):
        D = np.eye(d) if diffusion is None else np.atleast_2d(np.asarray(diffusion, float))
        if D.ndim == 2 and D.shape[0] == D.shape[1] != d:
            raise ParameterError(f"diffusion is {D.shape[0]}x{D.shape[0]} but the grid has {d} "
                                 f"axis{'es' if d > 1 else ''}: give lo, hi and cells per axis "
                                 f"({D.shape[0]} entries each)")
        if D.shape != (d, d) or not np.allclose(D, D.T) or np.any(np.linalg.eigvalsh(D) <= 0):
            raise ParameterError(f"diffusion must be a symmetric positive-definite {d}x{d} matrix, got {D.tolist()}")
        isotropic = bool(np.allclose(D, np.eye(d)))
        dcell = np.broadcast_to(D[:, :, *([None] * d)], (d, d, *cells)).copy()
        dfaces = [np.full(grid.face_mesh(k)[0].shape, D[k, k]) for k in range(d)]
    else:
        dcell = np.moveaxis(_evaluate(diffusion, grid.mesh()), (-2, -1), (0, 1))
        dfaces = [_evaluate(diffusion, grid.face_mesh(k))[..., k, k] for k in range(d)]
    try:
        A, fluxes = FP.assemble(grid, face_drift, float(temperature), dcell, dfaces)
    except ValueError as e:
        raise ParameterError(str(e)) from None
    f_cells = _evaluate(loss, grid.mesh()) if loss is not None else None
    diagonal = not any(np.any(dcell[k, l]) for k in range(d) for l in range(d) if k != l)
    return FokkerPlanck(grid, A, fluxes, float(temperature), f_cells, isotropic, diagonal)


def sde_coefficients(landscape: Landscape, dynamics: Dynamics) -> tuple[float, np.ndarray | Callable]:
    """(T, D) of the SDE limit dx = -grad f dt + sqrt(2 T D) dW of a dynamics config, time t = step x lr.

    SGD (and the SME of SGD): T D = lr Sigma / 2 with Sigma = k C the minibatch gradient covariance
    (k = 1/B, or (N - B)/(B (N - 1)) without replacement; `dynamics.minibatch_noise_factor`): on a tilted
    finite sum C = Cov(a) is constant (Mandt, Hoffman & Blei 2017), on regression C(x) is state dependent
    (returned as a function); heavy-ball momentum divides T by 1 - momentum. Langevin: its temperature and
    diffusion (the data's gradient-noise covariance for diffusion="gradient", state-dependent C(x) for
    regression). A D that is a multiple c I is folded into T (T c, I), so 1-D and isotropic problems have the
    Gibbs steady state."""
    if isinstance(dynamics, (SGD, SME)):
        if not isinstance(landscape, (Tilted, Regression)):
            raise ParameterError("the Fokker–Planck equation of SGD needs a finite sum (tilted or regression), "
                                 f"got {landscape.name}")
        k = minibatch_noise_factor(landscape.n_examples, dynamics.batch, dynamics.replace)
        T = dynamics.lr * k / 2 / (1 - getattr(dynamics, "momentum", 0.0))
        if isinstance(landscape, Regression):
            return T, lambda x: np.array([landscape.noise_covariance(xi) for xi in x])
        D = np.atleast_2d(np.cov(landscape.tilts.T, bias=True))
    elif isinstance(dynamics, Langevin):
        T = dynamics.effective_temperature
        if isinstance(dynamics.diffusion, str) and dynamics.diffusion == "isotropic":
            D = np.eye(landscape.dim)
        elif isinstance(dynamics.diffusion, str):      # "gradient"
            if isinstance(landscape, Tilted):
                D = np.atleast_2d(np.cov(landscape.tilts.T, bias=True))
            else:
                return T, lambda x: np.array([landscape.noise_covariance(xi) for xi in x])
        else:
            D = np.atleast_2d(np.asarray(dynamics.diffusion, float))
    elif isinstance(dynamics, GradientDescent):
        raise ParameterError("gradient descent has no noise: its density is transported, not diffused "
                             "(the Fokker–Planck solver needs T > 0)")
    else:
        raise ParameterError(f"no Fokker–Planck limit for {type(dynamics).__name__}")
    if not T > 0:
        raise ParameterError(f"the SDE limit has temperature {T}; the Fokker–Planck solver needs T > 0")
    c = D[0, 0]
    if c > 0 and np.allclose(D, c * np.eye(len(D)), rtol=1e-12, atol=0):
        return T * c, np.eye(len(D))
    return T, D


def sme_order(dynamics: Dynamics, order: int | None) -> int | None:
    """The SME order a Fokker–Planck problem of `dynamics` solves: SGD 2 unless asked for 1 (no order 2 with
    momentum); an `SME` dynamics its own order; other dynamics none (their own SDE)."""
    if isinstance(dynamics, SME):
        if order not in (None, dynamics.order):
            raise ParameterError(f"the dynamics is the SME of order {dynamics.order}; got order={order}")
        return dynamics.order
    if isinstance(dynamics, SGD):
        order = 2 if order is None else order
        if order not in (1, 2):
            raise ParameterError(f"SME order must be 1 or 2, got {order!r}")
        if order == 2 and dynamics.momentum != 0.0:
            raise ParameterError("the order-2 SME is for SGD without momentum; use order=1 (the rescaled SDE "
                                 "limit T / (1 - momentum))")
        return order
    if order is not None:
        raise ParameterError(f"order applies to SGD and its SME, not to {type(dynamics).__name__}")
    return None


EQUATIONS = ("sme", "euler")


def sme_problem(landscape: Landscape, dynamics: Dynamics, *, lo, hi, cells, order: int | None = None,
                boundary="reflecting", equation: str = "sme") -> FokkerPlanck:
    """The Fokker–Planck problem of a dynamics on the box [lo, hi]: for SGD (or an `SME` dynamics) the
    stochastic modified equation of order 2 (default) or 1 (Li, Tai & E 2019; `modified_equations`),

        dp/dt = div(p grad F) + (lr/2) sum_kl d_k d_l (Sigma_kl p),   F = f + (lr/4)|grad f|^2 (order 2), f (1)

    with Sigma = k C(x) in Itô form (constant for tilted sums, state dependent for regression); time t = step
    x lr. For other dynamics, their own SDE (`sde_coefficients`; a Langevin drift -(I + Q) grad f with its
    non-gradient part Q). The problem gives the steady state
    (`steady_state`, for order 2 with constant Sigma = c I the Gibbs density of F) and mean first-passage
    times (`mfpt`) of either order.

    equation="euler" (SGD on a tilted sum, constant Sigma): instead the weak order-2 modified equation of SGD
    read as the Euler scheme of its SDE limit at fixed T (`modified_equations.euler_modified_coefficients`):
    drift and diffusion both corrected at relative order lr H, which keeps SGD's steady state to O(lr^2)
    where the SME's diffusion lr Sigma does not (`modified_equations.euler_invariant_loss`)."""
    if equation not in EQUATIONS:
        raise ParameterError(f"unknown modified equation {equation!r} (valid: {', '.join(EQUATIONS)})")
    order = sme_order(dynamics, order)
    T, D = sde_coefficients(landscape, dynamics)
    lo, hi = (np.broadcast_to(np.asarray(v, float), (landscape.dim,)) for v in (lo, hi))
    if equation == "euler":
        if order != 2 or not isinstance(landscape, Tilted):
            raise ParameterError("equation='euler' is the order-2 modified equation of SGD with constant noise: "
                                 "it needs SGD (order 2) on a tilted finite sum")
        drift, diffusion = euler_modified_coefficients(landscape, dynamics.lr, T, D)
        return problem(drift=drift, temperature=T, lo=lo, hi=hi, cells=cells, diffusion=diffusion,
                       boundary=boundary)
    Q = dynamics.drift_matrix(landscape) if isinstance(dynamics, Langevin) else None
    if Q is not None:   # the drift -(I + Q) grad f of a Langevin dynamics with a non-gradient part
        return problem(drift=lambda x: -(landscape.grad(x) @ (np.eye(landscape.dim) + Q).T), temperature=T,
                       lo=lo, hi=hi, cells=cells, diffusion=D, boundary=boundary)
    loss = modified_loss(landscape, dynamics.lr) if order == 2 else landscape
    return problem(loss=loss, temperature=T, lo=lo, hi=hi, cells=cells, diffusion=D, boundary=boundary)


def pde_density(landscape: Landscape, dynamics: Dynamics, start, steps, *, lo, hi, cells, order: int | None = None,
                dt: float | None = None, scheme: str = "bdf2", boundary="reflecting", equation: str = "sme",
                progress: bool = False) -> tuple[FokkerPlanck, Evolution]:
    """The Fokker–Planck density of a run at the given engine steps (t = step x `dynamics.step_time`, lr
    for SGD): for SGD the order-2 SME by default, order=1 the order-1 SME (= the SDE limit), equation="euler"
    the order-2 modified equation that also corrects the diffusion (tilted sums), see `sme_problem`.

        fp, out = pde_density(finite_sum_double_well(256, 7.0), SGD(lr=0.02, batch=2), [-1.0],
                              steps=[0, 250, 500], lo=-2.5, hi=2.5, cells=600)   # order 2
        out.density[i]  # at out.times[i] = steps[i] x lr;  fp.bin_probabilities(out.density[i], edges)

    start: a point (all particles there: a cloud-in-cell delta) or a density on the grid. dt defaults to
    (the smallest time between recorded steps) / 100. Returns the problem (grid, functionals) and the
    `Evolution`."""
    fp = sme_problem(landscape, dynamics, lo=lo, hi=hi, cells=cells, order=order, boundary=boundary,
                     equation=equation)
    start = np.asarray(start, dtype=float)
    p0 = fp.point_mass(start.ravel()) if start.size == fp.grid.dim else start.reshape(fp.shape)
    times = np.asarray(steps, dtype=float) * dynamics.step_time
    if dt is None:
        gaps = np.diff(np.concatenate([[0.0], times]))
        gaps = gaps[gaps > 0]
        dt = float(gaps.min() / 100) if gaps.size else 1.0
    return fp, fp.evolve(p0, times, dt, scheme, progress=progress)
