"""Dynamics: frozen configs of the update rule, validated on creation, translated to solver arguments.

Time is t = step * lr when compared with continuous-time theory (the Langevin step is dt = lr).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from .errors import ParameterError
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


@dataclass(frozen=True)
class Dynamics:
    """Base of every update rule; `solver` names the registered solver that runs it."""
    lr: float = 0.01
    solver = "particles"

    def __post_init__(self):
        _positive("lr", self.lr)

    def solver_arguments(self, landscape: Landscape) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"rule": type(self).__name__}


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
    (constant cov(a) for tilted sums, state-dependent C(x) for regression, Euler only)."""
    batch: int = 1
    temperature: float | None = None
    diffusion: object = "isotropic"
    scheme: str = "euler"

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

    def solver_arguments(self, landscape):
        args = dict(lr_params=(self.lr,), temperature=self.effective_temperature, scheme=self.scheme,
                    noise="isotropic")
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
