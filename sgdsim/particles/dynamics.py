"""Dynamics: frozen configs of the update rule, validated on creation, translated to solver arguments.

Time is t = step * lr when compared with continuous-time theory (the Langevin step is dt = lr; an SME
integrated with `substeps` steps per SGD step has t = step * lr / substeps: `step_time`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ..errors import ParameterError
from .landscapes import Landscape, Regression, Tilted


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ParameterError(message)


def _positive(name: str, value, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    _check(ok and (value >= 0 if allow_zero else value > 0),
           f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")


@dataclass(frozen=True)
class Schedule:
    """Learning-rate schedule: "constant" lr; "step" lr * decay^floor(n / every);
    "cosine" lr_min + (lr - lr_min)(1 + cos(pi n / every)) / 2 (Loshchilov & Hutter 2017), flat after."""
    kind: str = "constant"
    decay: float = 0.1
    every: int = 1000
    lr_min: float = 0.0

    def __post_init__(self):
        _check(self.kind in ("constant", "step", "cosine"),
               f"unknown schedule {self.kind!r} (valid: constant, step, cosine)")
        _positive("schedule decay", self.decay)
        _check(isinstance(self.every, int) and self.every >= 1, f"schedule every must be an integer >= 1, got {self.every!r}")
        _positive("schedule lr_min", self.lr_min, allow_zero=True)

    def params(self, lr: float) -> tuple:
        return {"constant": (lr,), "step": (lr, self.decay, self.every),
                "cosine": (lr, self.lr_min, self.every)}[self.kind]

    def rates(self, lr: float, steps: np.ndarray) -> np.ndarray:
        """NumPy twin of the kernel's learning_rate: eta_n at the given steps."""
        n = np.asarray(steps, dtype=float)
        if self.kind == "constant":
            return np.full_like(n, lr)
        if self.kind == "step":
            return lr * self.decay ** np.floor(n / self.every)
        return self.lr_min + 0.5 * (lr - self.lr_min) * (1 + np.cos(np.pi * np.minimum(n / self.every, 1.0)))


class Clock:
    """The learning rate of each step and the continuous time t_n = sum_{k<n} eta_k of SGD (t = step x lr for a
    constant rate; DESIGN), followed chunk by chunk as a run advances, never tabulated per step: `take(k)`
    returns the rates of the next k steps and moves on; `time(steps)` is t at steps of the chunk last taken
    (its start to its end); `at(steps)` is t at any steps, past ones included (what a particle run needs for
    its events). The running sum is accumulated in step order, so t is the same bit for bit for any chunking
    and either way. `given` (one rate per step) replaces lr and schedule."""

    MARK = 4096   # `at` keeps t at every MARK-th step only

    def __init__(self, lr: float, schedule: Schedule = Schedule(), given: np.ndarray | None = None):
        self.lr, self.schedule, self.given = lr, schedule, given
        self.start = 0
        self.times = np.zeros(1)
        self.marks = [0.0]   # t at steps 0, MARK, 2 MARK, ... reached so far by `at`

    def rates(self, start: int, k: int) -> np.ndarray:
        """eta_n for n = start .. start + k - 1."""
        if self.given is not None:
            return self.given[start:start + k]
        return self.schedule.rates(self.lr, np.arange(start, start + k))

    def take(self, k: int) -> np.ndarray:
        end = self.start + len(self.times) - 1
        rates = self.rates(end, k)
        self.times = np.cumsum(np.concatenate([self.times[-1:], rates]))
        self.start = end
        return rates

    def time(self, steps):
        """t at `steps` (each between the start and the end of the chunk last taken)."""
        return self.times[np.asarray(steps, dtype=np.int64) - self.start]

    def _running(self, block: int) -> np.ndarray:
        """t at steps block MARK .. (block + 1) MARK: the rates added in step order to the mark below."""
        return np.cumsum(np.concatenate([[self.marks[block]], self.rates(block * self.MARK, self.MARK)]))

    def at(self, steps) -> np.ndarray:
        """t at any steps n >= 0, in any order (not only in the chunk last taken), equal bit for bit to the
        per-step table np.cumsum of every rate while keeping one time per MARK steps: from the mark below n,
        the rates after it are added in step order, as the table adds them."""
        steps = np.asarray(steps, dtype=np.int64)
        blocks = steps // self.MARK
        while steps.size and len(self.marks) <= blocks.max():
            self.marks.append(float(self._running(len(self.marks) - 1)[-1]))
        out = np.empty(steps.shape)
        for block in np.unique(blocks):
            inside = blocks == block
            out[inside] = self._running(int(block))[steps[inside] - block * self.MARK]
        return out


@dataclass(frozen=True)
class Dynamics:
    """Base of every update rule; `solver` names the registered solver that runs it."""
    lr: float = 0.01
    solver = "particles"

    def __post_init__(self):
        _positive("lr", self.lr)

    @property
    def step_time(self) -> float:
        """Continuous time per engine step (t = step x step_time for a constant rate)."""
        return self.lr

    def solver_arguments(self, landscape: Landscape) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"rule": type(self).__name__}


def minibatch_noise_factor(n_examples: int, batch: int, replace: bool) -> float:
    """k with Cov(minibatch mean gradient) = k C(x), C the per-example gradient covariance: 1/B for B
    independent uniform draws, (N - B) / (B (N - 1)) for B distinct examples (finite-population correction)."""
    if replace:
        return 1.0 / batch
    return (n_examples - batch) / (batch * (n_examples - 1)) if n_examples > 1 else 0.0


def _minibatch_source(landscape: Landscape, rule: str) -> str:
    if isinstance(landscape, Tilted):
        return "tilt"
    if isinstance(landscape, Regression):
        return "minibatch"
    raise ParameterError(f"{rule} needs a finite-sum landscape (regression or tilted), got {landscape.name}; "
                         "use Langevin for noise on a smooth landscape")


@dataclass(frozen=True)
class GradientDescent(Dynamics):
    """Full-batch gradient descent with heavy-ball momentum: v <- beta v - lr grad f; x <- x + v."""
    momentum: float = 0.0
    schedule: Schedule = Schedule()

    def __post_init__(self):
        super().__post_init__()
        _check(isinstance(self.momentum, (int, float)) and 0.0 <= self.momentum < 1.0,
               f"momentum must be in [0, 1), got {self.momentum!r}")

    def solver_arguments(self, landscape):
        return dict(schedule=self.schedule.kind, lr_params=self.schedule.params(self.lr), momentum=self.momentum)


@dataclass(frozen=True)
class SGD(GradientDescent):
    """Minibatch SGD: the gradient is the mean over B examples drawn uniformly, with replacement
    (independent draws) or without (B distinct examples each step); optional heavy ball and schedule."""
    batch: int = 1
    replace: bool = True

    def __post_init__(self):
        super().__post_init__()
        _check(isinstance(self.batch, int) and not isinstance(self.batch, bool) and self.batch >= 1,
               f"batch must be an integer >= 1, got {self.batch!r}")

    def solver_arguments(self, landscape):
        source = _minibatch_source(landscape, "SGD")
        _check(self.batch <= landscape.n_examples,
               f"batch {self.batch} is larger than the data ({landscape.n_examples} examples)")
        return super().solver_arguments(landscape) | dict(gradient=source, batch=self.batch, replace=self.replace)


@dataclass(frozen=True)
class Langevin(Dynamics):
    """Overdamped Langevin dx = -grad f dt + sqrt(2 T D) dW with dt = lr, discretized by Euler–Maruyama or
    stochastic Heun. T defaults to lr / (2 batch), the SGD temperature (Chaudhari & Soatto 2018); D is the
    identity ("isotropic"), a constant matrix, or "gradient": the gradient-noise covariance of the data
    (constant cov(a) for tilted sums, state-dependent C(x) for regression, Euler only).

    nongradient: a constant (d, d) matrix Q making the drift -(I + Q) grad f. For Q antisymmetric and D = I the
    steady state stays exp(-f/T)/Z (div(Q grad f e^{-f/T}) = 0) while a current circulates along the level
    sets of f (Chaudhari & Soatto 2018, sec. 5: a gradient part plus a divergence-free part)."""
    batch: int = 1
    temperature: float | None = None
    diffusion: object = "isotropic"
    scheme: str = "euler"
    nongradient: object = None

    def __post_init__(self):
        super().__post_init__()
        _check(isinstance(self.batch, int) and self.batch >= 1, f"batch must be an integer >= 1, got {self.batch!r}")
        if self.temperature is not None:
            _positive("temperature", self.temperature, allow_zero=True)
        _check(self.scheme in ("euler", "heun"), f"unknown scheme {self.scheme!r} (valid: euler, heun)")
        if isinstance(self.diffusion, str):
            _check(self.diffusion in ("isotropic", "gradient"),
                   f"unknown diffusion {self.diffusion!r} (valid: isotropic, gradient, or a matrix)")

    @property
    def effective_temperature(self) -> float:
        return self.lr / (2 * self.batch) if self.temperature is None else float(self.temperature)

    def drift_matrix(self, landscape: Landscape) -> np.ndarray | None:
        """Q of the drift -(I + Q) grad f, checked against the landscape's dimension (None: a gradient drift)."""
        if self.nongradient is None:
            return None
        Q = np.atleast_2d(np.asarray(self.nongradient, dtype=float))
        _check(Q.shape == (landscape.dim, landscape.dim) and bool(np.all(np.isfinite(Q))),
               f"nongradient must be a finite {landscape.dim}x{landscape.dim} matrix, got shape {Q.shape}")
        return Q

    def solver_arguments(self, landscape):
        args = dict(lr_params=(self.lr,), temperature=self.effective_temperature, scheme=self.scheme,
                    noise="isotropic", drift_matrix=self.drift_matrix(landscape))
        if isinstance(self.diffusion, str) and self.diffusion == "isotropic":
            return args
        if isinstance(self.diffusion, str):  # "gradient"
            if isinstance(landscape, Tilted):
                return args | dict(noise="constant", factor=_cholesky(np.cov(landscape.tilts.T, bias=True)))
            _minibatch_source(landscape, "gradient-noise diffusion")
            _check(self.scheme == "euler", "state-dependent diffusion needs scheme='euler' (Heun converges to "
                                           "the Stratonovich SDE)")
            return args | dict(noise="gradient")
        D = np.atleast_2d(np.asarray(self.diffusion, dtype=float))
        _check(D.shape == (landscape.dim, landscape.dim),
               f"diffusion matrix must be {landscape.dim}x{landscape.dim}, got {D.shape}")
        return args | dict(noise="constant", factor=_cholesky(D))


@dataclass(frozen=True)
class SME(Dynamics):
    """The stochastic modified equation of minibatch SGD at learning rate lr (Li, Tai & E 2019, JMLR 20,
    "Stochastic modified equations and dynamics of stochastic gradient algorithms I", SME for SGD):

        order 1:  dX = -grad f(X) dt + sqrt(lr Sigma(X)) dW                       (weak error O(lr))
        order 2:  dX = -grad(f + (lr/4)|grad f|^2)(X) dt + sqrt(lr Sigma(X)) dW   (weak error O(lr^2))
                     = -(grad f + (lr/2) H grad f) dt + ...

    on [0, T] with t = k lr matching SGD step k. Sigma(x) = k C(x) is the covariance of one minibatch gradient,
    C the per-example gradient covariance (`Landscape.noise_covariance`), k from `minibatch_noise_factor`
    (constant cov(a)/B on tilted sums; state dependent on regression: multiplicative noise). Why order 2: one
    SGD step has mean -lr g and second moment lr^2 (g g^T + Sigma); over a time lr the SDE's increment has
    mean lr b + (lr^2/2) (Db) b + O(lr^3) = -lr g + O(lr^3) (b = -g - (lr/2) H g, Db = -H + O(lr)), second moment
    lr^2 (b b^T + Sigma) + O(lr^3): both match to O(lr^3) per step, hence O(lr^2) over [0, T].

    Integrated by the particle engine with dt = lr / substeps (Euler–Maruyama, or stochastic Heun for the
    constant noise of tilted sums), so engine step n is at t = n dt (`step_time`).

    Momentum: not provided here. The paper also treats momentum SGD, whose SME is an SDE for position and
    velocity (order 1), which this engine's position-only SME does not integrate; heavy ball at a fixed beta
    keeps the rescaled order-1 limit of `fokker_planck.sde_coefficients` (T / (1 - beta)), and there is no
    order-2 form for it here (`fokker_planck.sme_order` refuses order 2 with momentum).
    """
    batch: int = 1
    replace: bool = True
    order: int = 2
    substeps: int = 1
    scheme: str = "euler"

    def __post_init__(self):
        super().__post_init__()
        _check(isinstance(self.batch, int) and not isinstance(self.batch, bool) and self.batch >= 1,
               f"batch must be an integer >= 1, got {self.batch!r}")
        _check(self.order in (1, 2), f"SME order must be 1 or 2, got {self.order!r}")
        _check(isinstance(self.substeps, int) and not isinstance(self.substeps, bool) and self.substeps >= 1,
               f"substeps must be an integer >= 1, got {self.substeps!r}")
        _check(self.scheme in ("euler", "heun"), f"unknown scheme {self.scheme!r} (valid: euler, heun)")

    @property
    def step_time(self) -> float:
        return self.lr / self.substeps

    @property
    def drift_hessian(self) -> float:
        """c in the drift -(g + c H g): lr/2 at order 2 (the gradient of (lr/4)|grad f|^2), 0 at order 1."""
        return self.lr / 2 if self.order == 2 else 0.0

    def noise_factor(self, landscape: Landscape) -> float:
        """k in Sigma = k C (see `minibatch_noise_factor`)."""
        _minibatch_source(landscape, "the SME")
        _check(self.batch <= landscape.n_examples,
               f"batch {self.batch} is larger than the data ({landscape.n_examples} examples)")
        return minibatch_noise_factor(landscape.n_examples, self.batch, self.replace)

    def solver_arguments(self, landscape):
        # sqrt(lr Sigma dt) z = sqrt(2 T dt) L z with T = lr k / 2 and L L^T = C
        args = dict(gradient="full", lr_params=(self.step_time,), drift_hessian=self.drift_hessian,
                    temperature=self.lr * self.noise_factor(landscape) / 2, scheme=self.scheme)
        if isinstance(landscape, Tilted):
            return args | dict(noise="constant", factor=_cholesky(np.cov(landscape.tilts.T, bias=True)))
        _check(self.scheme == "euler", "state-dependent diffusion needs scheme='euler' (Heun converges to "
                                       "the Stratonovich SDE)")
        return args | dict(noise="gradient")


def _cholesky(D: np.ndarray) -> np.ndarray:
    D = np.atleast_2d(D)
    _check(np.allclose(D, D.T), "diffusion matrix must be symmetric")
    w, V = np.linalg.eigh(D)
    _check(w.min() >= -1e-12 * max(w.max(), 1.0), f"diffusion matrix must be positive semi-definite (eigenvalue {w.min():.3g})")
    try:
        return np.linalg.cholesky(D)
    except np.linalg.LinAlgError:  # semi-definite: a square root that is not triangular is fine for noise
        return V @ np.diag(np.sqrt(np.clip(w, 0, None))) @ V.T


@dataclass(frozen=True)
class PerturbedGD(Dynamics):
    """Perturbed gradient descent (Jin, Ge, Netrapalli, Kakade & Jordan 2017, Algorithm 2): when
    |grad f| <= gradient_threshold and at least `interval` steps have passed since the last perturbation,
    add a point uniform in the ball of radius `radius`, then take the gradient step."""
    radius: float = 0.1
    gradient_threshold: float = 1e-3
    interval: int = 10

    def __post_init__(self):
        super().__post_init__()
        _positive("radius", self.radius)
        _positive("gradient_threshold", self.gradient_threshold, allow_zero=True)
        _check(isinstance(self.interval, int) and self.interval >= 1, f"interval must be an integer >= 1, got {self.interval!r}")

    def solver_arguments(self, landscape):
        return dict(lr_params=(self.lr,), kick_gradient=self.gradient_threshold, kick_radius=self.radius,
                    kick_interval=self.interval)
