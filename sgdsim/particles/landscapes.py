"""Landscapes: what SGD minimizes. Each gives a readable NumPy value, gradient and Hessian-vector product
(vectorized over particles, x of shape (M, d)) and the code, parameters and data of its Numba kernel in `solvers.particles.landscapes`;
tests check the two agree. Finite sums f = (1/N) sum_i f_i also give per-example gradients, so minibatches
are real.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError
from ..solvers.particles import landscapes as LK

_EMPTY = np.zeros((0, 0))


def _as_points(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.shape[-1] != dim:
        raise ParameterError(f"points must have last dimension {dim}, got shape {x.shape}")
    return x


@dataclass(frozen=True, eq=False)
class Landscape:
    """Base: subclasses set `code`, `dim`, `theta` and implement `value`/`grad` in NumPy."""
    dim: int
    code: int = field(init=False, default=-1)
    name: str = field(init=False, default="landscape")

    @property
    def theta(self) -> np.ndarray:
        return np.zeros(0)

    @property
    def data(self) -> np.ndarray:
        """Rows of the finite sum the kernel reads (regression data, or tilts); empty for smooth losses."""
        return _EMPTY

    @property
    def n_examples(self) -> int:
        return 0

    def value(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def grad(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def hessian_vector(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """H(x) v, the Hessian of f at each point times the matching vector (both (..., d))."""
        raise NotImplementedError

    def example_grads(self, x: np.ndarray) -> np.ndarray:
        """Per-example gradients (N, d) at one point x (finite sums only)."""
        raise ParameterError(f"{self.name} is not a finite sum: it has no per-example gradients")

    def noise_covariance(self, x: np.ndarray) -> np.ndarray:
        """Gradient-noise covariance C(x) = (1/N) sum_i (g_i - g)(g_i - g)^T at one point."""
        g = self.example_grads(np.asarray(x, float))
        g = g - g.mean(axis=0)
        return g.T @ g / len(g)


@dataclass(frozen=True, eq=False)
class Quadratic(Landscape):
    """f(x) = 1/2 sum_k h_k x_k^2: the anisotropic quadratic (Langevin on it is the OU process)."""
    curvatures: tuple = (1.0,)
    code: int = field(init=False, default=LK.QUADRATIC)
    name: str = field(init=False, default="quadratic")

    def __init__(self, curvatures):
        h = tuple(float(c) for c in np.atleast_1d(curvatures))
        object.__setattr__(self, "curvatures", h)
        object.__setattr__(self, "dim", len(h))

    @property
    def theta(self) -> np.ndarray:
        return np.array(self.curvatures)

    def value(self, x):
        x = _as_points(x, self.dim)
        return 0.5 * np.sum(self.theta * x * x, axis=-1)

    def grad(self, x):
        return self.theta * _as_points(x, self.dim)

    def hessian_vector(self, x, v):
        return self.theta * _as_points(v, self.dim)


@dataclass(frozen=True, eq=False)
class DoubleWell(Landscape):
    """f(x) = c sum_k (x_k^2 - 1)^2: minima at x_k = +-1, barrier c per coordinate (separable in d dims)."""
    height: float = 1.0
    code: int = field(init=False, default=LK.DOUBLE_WELL)
    name: str = field(init=False, default="double-well")

    @property
    def theta(self):
        return np.array([self.height])

    def value(self, x):
        x = _as_points(x, self.dim)
        return self.height * np.sum((x * x - 1.0) ** 2, axis=-1)

    def grad(self, x):
        x = _as_points(x, self.dim)
        return 4.0 * self.height * x * (x * x - 1.0)

    def hessian_vector(self, x, v):
        x = _as_points(x, self.dim)
        return self.height * (12.0 * x * x - 4.0) * v


@dataclass(frozen=True, eq=False)
class StrictSaddle(Landscape):
    """f(x) = x_1^4/4 - x_1^2/2 + |x_rest|^2/2: a strict saddle at 0 (Hessian eigenvalue -1 along x_1),
    minima at x_1 = +-1; the stable manifold of the saddle is {x_1 = 0}."""
    code: int = field(init=False, default=LK.STRICT_SADDLE)
    name: str = field(init=False, default="strict-saddle")

    def value(self, x):
        x = _as_points(x, self.dim)
        return 0.25 * x[..., 0] ** 4 - 0.5 * x[..., 0] ** 2 + 0.5 * np.sum(x[..., 1:] ** 2, axis=-1)

    def grad(self, x):
        x = _as_points(x, self.dim)
        g = x.copy()
        g[..., 0] = x[..., 0] ** 3 - x[..., 0]
        return g

    def hessian_vector(self, x, v):
        x = _as_points(x, self.dim)
        hv = np.array(v, dtype=float, copy=True)
        hv[..., 0] *= 3.0 * x[..., 0] ** 2 - 1.0
        return hv


@dataclass(frozen=True, eq=False)
class SharpWide(Landscape):
    """f(x) = -a_s e^{-(x_1-m_s)^2/(2 s_s^2)} - a_w e^{-(x_1-m_w)^2/(2 s_w^2)} + c x_1^2 + |x_rest|^2/2:
    a sharp (narrow) and a wide Gaussian well of similar depth along x_1, confined by c x_1^2."""
    sharp: tuple = (1.0, -1.0, 0.1)   # depth, centre, width
    wide: tuple = (1.0, 1.0, 0.5)
    confinement: float = 0.05
    code: int = field(init=False, default=LK.SHARP_WIDE)
    name: str = field(init=False, default="sharp-wide")

    @property
    def theta(self):
        return np.array([*self.sharp, *self.wide, self.confinement])

    def _along_x1(self, x1):
        value = self.confinement * x1 ** 2
        slope = 2.0 * self.confinement * x1
        for depth, centre, width in (self.sharp, self.wide):
            u = (x1 - centre) / width
            bump = depth * np.exp(-0.5 * u * u)
            value = value - bump
            slope = slope + bump * u / width
        return value, slope

    def _curvature(self, x1):
        """d^2 f / d x_1^2 = 2c + sum_j a_j e^{-u_j^2/2} (1 - u_j^2) / s_j^2."""
        acc = 2.0 * self.confinement
        for depth, centre, width in (self.sharp, self.wide):
            u = (x1 - centre) / width
            acc = acc + depth * np.exp(-0.5 * u * u) * (1.0 - u * u) / width ** 2
        return acc

    def value(self, x):
        x = _as_points(x, self.dim)
        return self._along_x1(x[..., 0])[0] + 0.5 * np.sum(x[..., 1:] ** 2, axis=-1)

    def grad(self, x):
        x = _as_points(x, self.dim)
        g = x.copy()
        g[..., 0] = self._along_x1(x[..., 0])[1]
        return g

    def hessian_vector(self, x, v):
        x = _as_points(x, self.dim)
        hv = np.array(v, dtype=float, copy=True)
        hv[..., 0] *= self._curvature(x[..., 0])
        return hv


@dataclass(frozen=True, eq=False)
class Ripple(Landscape):
    """f(x) = c |x|^2 / 2 + a sum_k (1 - cos(2 pi x_k / w)): a wide bowl covered with sharp local minima
    (curvature ~ c + a (2 pi / w)^2, spacing ~ w) whenever a (2 pi / w)^2 > c. Its convolution with a
    Gaussian of std s per coordinate is c (|x|^2 + d s^2) / 2 + a sum_k (1 - e^{-(2 pi s /
    w)^2 / 2} cos(2 pi x_k / w)), given by `value(x, smoothing=s)` and `grad(x, smoothing=s)`
    (the smoothed loss of Kleinberg, Li & Yuan 2018)."""
    bowl: float = 1.0
    amplitude: float = 0.1
    wavelength: float = 0.2
    code: int = field(init=False, default=LK.RIPPLE)
    name: str = field(init=False, default="ripple")

    @property
    def theta(self):
        return np.array([self.bowl, self.amplitude, self.wavelength])

    def value(self, x, smoothing: float = 0.0):
        x = _as_points(x, self.dim)
        damp = np.exp(-0.5 * (2 * np.pi * smoothing / self.wavelength) ** 2)
        ripples = 1.0 - damp * np.cos(2 * np.pi * x / self.wavelength)
        return 0.5 * self.bowl * (np.sum(x * x, axis=-1) + self.dim * smoothing ** 2) + \
            self.amplitude * np.sum(ripples, axis=-1)

    def grad(self, x, smoothing: float = 0.0):
        x = _as_points(x, self.dim)
        k = 2 * np.pi / self.wavelength
        return self.bowl * x + self.amplitude * k * np.exp(-0.5 * (k * smoothing) ** 2) * np.sin(k * x)

    def hessian_vector(self, x, v):
        x = _as_points(x, self.dim)
        k = 2 * np.pi / self.wavelength
        return (self.bowl + self.amplitude * k * k * np.cos(k * x)) * v


@dataclass(frozen=True, eq=False)
class Ring(Landscape):
    """f(x) = (|x|^2 - 1)^2 / 4: a valley along the unit circle (sphere in d dims), a local maximum at 0;
    the ring potential of the limit-cycle example (Chaudhari & Soatto 2018, sec. 5 structure)."""
    code: int = field(init=False, default=LK.RING)
    name: str = field(init=False, default="ring")

    def value(self, x):
        x = _as_points(x, self.dim)
        return 0.25 * (np.sum(x * x, axis=-1) - 1.0) ** 2

    def grad(self, x):
        x = _as_points(x, self.dim)
        return (np.sum(x * x, axis=-1, keepdims=True) - 1.0) * x

    def hessian_vector(self, x, v):
        x = _as_points(x, self.dim)
        v = np.asarray(v, float)
        return (np.sum(x * x, axis=-1, keepdims=True) - 1.0) * v + 2.0 * np.sum(x * v, axis=-1, keepdims=True) * x


@dataclass(frozen=True, eq=False)
class Tilted(Landscape):
    """The finite sum f_i(x) = base(x) + a_i . x with tilts a_i centred to mean zero, so f = base exactly
    and the minibatch gradient noise is the mean of B tilts (covariance cov(a)/B with replacement)."""
    base: Landscape = None
    tilts: np.ndarray = None
    name: str = field(init=False, default="tilted")

    def __init__(self, base: Landscape, tilts: np.ndarray):
        a = np.asarray(tilts, dtype=float)
        a = a.reshape(-1, 1) if a.ndim == 1 else a
        if a.shape[1] != base.dim or len(a) < 2:
            raise ParameterError(f"tilts must have shape (N >= 2, {base.dim}), got {a.shape}")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "tilts", a - a.mean(axis=0))
        object.__setattr__(self, "dim", base.dim)
        object.__setattr__(self, "name", f"tilted-{base.name}")

    @property
    def code(self):
        return self.base.code

    @property
    def theta(self):
        return self.base.theta

    @property
    def data(self):
        return self.tilts

    @property
    def n_examples(self):
        return len(self.tilts)

    def value(self, x):
        return self.base.value(x)

    def grad(self, x):
        return self.base.grad(x)

    def hessian_vector(self, x, v):
        return self.base.hessian_vector(x, v)   # the tilts a_i . x are linear: no curvature

    def example_grads(self, x):
        return self.base.grad(np.asarray(x, float)[None, :]) + self.tilts


def finite_sum_double_well(n_examples: int = 64, spread: float = 1.0, dim: int = 1, seed: int = 0,
                           height: float = 1.0) -> Tilted:
    """f_i(x) = c sum_k (x_k^2 - 1)^2 + a_i . x with a_i ~ N(0, spread^2) centred: the double well whose
    minibatch noise has variance spread^2 / B per coordinate (sampling with replacement)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    return Tilted(DoubleWell(dim, height), spread * rng.standard_normal((n_examples, dim)))


@dataclass(frozen=True, eq=False)
class Regression(Landscape):
    """l_p regression f_i(x) = |a_i . x - b_i|^p / p on data (A, b); p = 2 is least squares."""
    A: np.ndarray = None
    b: np.ndarray = None
    p: float = 2.0
    name: str = field(init=False, default="regression")

    def __init__(self, A: np.ndarray, b: np.ndarray, p: float = 2.0):
        A = np.atleast_2d(np.asarray(A, dtype=float))
        b = np.asarray(b, dtype=float).ravel()
        if len(A) != len(b) or len(A) < 1:
            raise ParameterError(f"A has {len(A)} rows but b has {len(b)}")
        if not p >= 2.0:
            raise ParameterError(f"p must be >= 2 for l_p regression (smooth gradient), got {p}")
        for k, v in (("A", A), ("b", b), ("dim", A.shape[1]), ("p", float(p)),
                     ("name", "least-squares" if p == 2.0 else f"l{p:g}-regression")):
            object.__setattr__(self, k, v)

    @property
    def code(self):
        return LK.LEAST_SQUARES if self.p == 2.0 else LK.LP_REGRESSION

    @property
    def theta(self):
        return np.array([self.p])

    @property
    def data(self):
        return np.column_stack([self.A, self.b])

    @property
    def n_examples(self):
        return len(self.b)

    def residuals(self, x):
        return _as_points(x, self.dim) @ self.A.T - self.b

    def value(self, x):
        return np.mean(np.abs(self.residuals(x)) ** self.p, axis=-1) / self.p

    def grad(self, x):
        r = self.residuals(x)
        return (np.sign(r) * np.abs(r) ** (self.p - 1)) @ self.A / len(self.b)

    def hessian_vector(self, x, v):
        """(1/N) sum_i (p - 1)|r_i|^(p-2) (a_i . v) a_i."""
        curvature = (self.p - 1) * np.abs(self.residuals(x)) ** (self.p - 2)
        return (curvature * (_as_points(v, self.dim) @ self.A.T)) @ self.A / len(self.b)

    def example_grads(self, x):
        r = self.residuals(np.asarray(x, float))
        return (np.sign(r) * np.abs(r) ** (self.p - 1))[:, None] * self.A
