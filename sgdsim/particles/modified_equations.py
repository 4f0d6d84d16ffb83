"""Finite learning rate: the stochastic modified equations (SME) of SGD, their exact moments on least squares,
their stationary densities on smooth losses, and the weak orders measured from them.

SGD x_{k+1} = x_k - lr g_B(x_k), E g_B = grad f, Cov g_B = Sigma(x) = k C(x) (k from
`dynamics.minibatch_noise_factor`, C the per-example gradient covariance), is approximated in the weak sense
at t = k lr by (Li, Tai & E 2019, JMLR 20, "Stochastic modified equations and dynamics of stochastic
gradient algorithms I: mathematical foundations", the SMEs of SGD of order 1 and 2):

    order 0 (gradient flow, the lr -> 0 limit):  dX = -grad f dt
    order 1:  dX = -grad f dt + sqrt(lr Sigma) dW
    order 2:  dX = -grad(f + (lr/4) |grad f|^2) dt + sqrt(lr Sigma) dW = -(grad f + (lr/2) H grad f) dt + ...

with weak errors O(lr), O(lr), O(lr^2) on a fixed time interval (the order-2 drift is re-derived from the
one-step moments in `dynamics.SME`). The particle engine integrates them (`dynamics.SME`), the Fokker–Planck
engine solves their densities (`fokker_planck.sme_problem`); this module holds the closed-form side.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import scipy.linalg

from .dynamics import minibatch_noise_factor
from ..errors import ParameterError
from .landscapes import Landscape

SME_CORRECTION = 0.25   # the order-2 drift is -grad(f + SME_CORRECTION lr |grad f|^2)


def modified_loss(landscape: Landscape, lr: float, correction: float = SME_CORRECTION) -> Callable:
    """f + correction lr |grad f|^2 as a function of points x (M, d) -> (M,): the potential of the order-2
    SME's drift (correction = 1/4; Li, Tai & E 2019). Its Gibbs density exp(-f_mod / T) is the stationary
    density of the order-2 SME when Sigma is constant and a multiple of the identity (1-D tilted sums)."""
    def f_mod(x):
        g = landscape.grad(x)
        return landscape.value(x) + correction * lr * np.sum(g * g, axis=-1)
    return f_mod


def euler_invariant_loss(landscape: Landscape, lr: float, temperature: float) -> Callable:
    """The effective potential of the stationary density of SGD with constant isotropic noise to first order
    in lr, p_SGD = exp(-f_eff / T) / Z + O(lr^2) with

        f_eff = f - T log(1 + lr |grad f|^2 / (4T) - (lr/2) Laplacian f)     (floored at 1e-300 inside the log)

    SGD with Gaussian noise of covariance 2T/lr is the Euler–Maruyama scheme of dX = -grad f dt + sqrt(2T) dW
    with step lr, whose weak modified equation of order 2 has drift -grad f - (lr/2)(H grad f - T grad
    Laplacian f) and diffusion 2T (I + lr H) (Zygalakis 2011, SIAM J. Sci. Comput. 33, 102, modified
    equations for SDEs); its stationary density is exp(-f/T) (1 + lr |grad f|^2 / (4T) - (lr/2) Laplacian f)
    + O(lr^2). The correction is kept linear (an exponential form exp(lr |grad f|^2 / (4T)) outgrows
    exp(-f/T) in the tails of a quartic). Its |grad f|^2 term has the opposite sign to the order-2 SME's
    (lr/4)|grad f|^2. For a quadratic f = x^T K x / 2 it gives the covariance T (K - lr K^2 / 2)^-1 to
    O(lr^2), the expansion of the exact discrete Lyapunov covariance (`theory.lyapunov_discrete`)."""
    def f_eff(x):
        x = np.asarray(x, float)
        g = landscape.grad(x)
        units = np.eye(x.shape[-1])
        laplacian = sum(landscape.hessian_vector(x, np.broadcast_to(u, x.shape))[..., k] for k, u in enumerate(units))
        factor = 1.0 + lr * np.sum(g * g, axis=-1) / (4 * temperature) - 0.5 * lr * laplacian
        return landscape.value(x) - temperature * np.log(np.maximum(factor, 1e-300))
    return f_eff


def euler_modified_coefficients(landscape: Landscape, lr: float, temperature: float, D: np.ndarray
                                ) -> tuple[Callable, Callable]:
    """Drift and Itô diffusion (in the Fokker–Planck engine's form b, T D(x)) of the weak order-2 modified
    equation of SGD with a constant noise covariance 2T D / lr, read as the Euler–Maruyama scheme of
    dX = -grad f dt + sqrt(2 T D) dW with step lr (Zygalakis 2011, SIAM J. Sci. Comput. 33, 102; additive
    noise):

        b(x) = -grad f - (lr/2) (H grad f - T grad tr(D H)),     D(x) = D + (lr/2) (H D + D H).

    Unlike the order-2 SME of Li, Tai & E (whose diffusion stays lr Sigma = 2T D), it corrects the diffusion at
    the same relative order lr H as the drift, so its steady state is SGD's to O(lr^2) also when T ~ lr: to
    O(lr) that steady state is `euler_invariant_loss`. grad tr(D H) by central differences of
    tr(D H(x)) = sum_j (H(x) D e_j)_j (step 1e-4 (1 + |x_k|): relative error ~1e-8 for smooth f)."""
    D = np.atleast_2d(np.asarray(D, float))
    dim = landscape.dim

    def trace_dh(x):
        return sum(landscape.hessian_vector(x, np.broadcast_to(D[:, j], x.shape))[..., j] for j in range(dim))

    def drift(x):
        x = np.asarray(x, float)
        g = landscape.grad(x)
        grad_trace = np.empty_like(x)
        for k in range(dim):
            step = np.zeros(dim)
            h = 1e-4 * (1.0 + np.abs(x[..., k]))
            step[k] = 1.0
            grad_trace[..., k] = (trace_dh(x + h[..., None] * step) - trace_dh(x - h[..., None] * step)) / (2 * h)
        return -g - 0.5 * lr * (landscape.hessian_vector(x, g) - temperature * grad_trace)

    def diffusion(x):
        x = np.asarray(x, float)
        HD = np.stack([landscape.hessian_vector(x, np.broadcast_to(D[:, j], x.shape)) for j in range(dim)], axis=-1)
        return D + 0.5 * lr * (HD + np.swapaxes(HD, -1, -2))
    return drift, diffusion


# --- least squares: exact moments -----------------------------------------------------------------------

class Moments(NamedTuple):
    """First and second moments of x at each recorded time: mean (T, d) and E[x x^T] (T, d, d)."""
    mean: np.ndarray
    second: np.ndarray


class _LeastSquares:
    """f = (1/N) sum_i 1/2 (a_i.x - b_i)^2 in e = x - x*: grad f = H e, per-example gradient a_i rho_i with
    rho_i = a_i.e + r_i (r_i the residuals at x*), so C(e) = (1/N) sum rho_i^2 a_i a_i^T - H e e^T H is
    quadratic in e and E C(e) = K(S) + 2 G(m) + R - H S H is linear in (m, S) = (E e, E e e^T):
    K(S) = (1/N) sum (a_i^T S a_i) a_i a_i^T, G(m) = (1/N) sum (a_i.m) r_i a_i a_i^T, R = (1/N) sum r_i^2 a_i a_i^T.
    """

    def __init__(self, A, b, batch, replace):
        A, b = np.atleast_2d(np.asarray(A, float)), np.asarray(b, float).ravel()
        if len(A) != len(b) or not 1 <= batch <= len(b):
            raise ParameterError(f"need A (N, d), b (N,) and 1 <= batch <= N, got {A.shape}, {b.shape}, {batch}")
        self.A, self.n, self.d = A, len(b), A.shape[1]
        self.x_star = np.linalg.lstsq(A, b, rcond=None)[0]
        self.r = A @ self.x_star - b
        self.H = A.T @ A / self.n
        self.outer = A[:, :, None] * A[:, None, :]
        self.k = minibatch_noise_factor(self.n, batch, replace)

    def mean_noise(self, m, S):
        """E C(e) for E e = m, E e e^T = S."""
        weights = np.einsum("ia,ab,ib->i", self.A, S, self.A) + 2 * (self.A @ m) * self.r + self.r ** 2
        return np.einsum("i,iab->ab", weights, self.outer) / self.n - self.H @ S @ self.H

    def pack(self, m, S):
        return np.concatenate([[1.0], m, S.ravel()])

    def unpack(self, z):
        return z[1:1 + self.d], z[1 + self.d:].reshape(self.d, self.d)

    def matrix(self, affine: Callable) -> np.ndarray:
        """The matrix of an affine map (m, S) -> (m', S') on the packed vector (1, m, vec S)."""
        size = 1 + self.d + self.d * self.d
        out = np.zeros((size, size))
        out[0, 0] = 1.0
        base = self.pack(*affine(np.zeros(self.d), np.zeros((self.d, self.d))))
        out[:, 0] = base
        for j in range(1, size):
            unit = np.zeros(size)
            unit[j] = 1.0
            m, S = self.unpack(unit)
            out[1:, j] = self.pack(*affine(m, S))[1:] - base[1:]
        return out

    def moments(self, z_list):
        means, seconds = [], []
        for z in z_list:
            m, S = self.unpack(z)
            means.append(self.x_star + m)
            seconds.append(S + np.outer(self.x_star, m) + np.outer(m, self.x_star) + np.outer(self.x_star, self.x_star))
        return Moments(np.array(means), np.array(seconds))


def sgd_moments(A, b, x0, lr: float, batch: int, replace: bool, steps) -> Moments:
    """Exact mean and second moment of minibatch SGD on least squares after each number of `steps`, from x0.

    In e = x - x*: e' = e - lr (H e + xi) with E[xi | e] = 0, Cov[xi | e] = k C(e), so
        m' = (I - lr H) m,    S' = (I - lr H) S (I - lr H) + lr^2 k E C(e)
    (see `_LeastSquares`; at m = 0 its fixed point is `theory.sgd_stationary_covariance`, and its
    homogeneous part is `minibatch_moments.moment_map(order=2)`)."""
    ls = _LeastSquares(A, b, batch, replace)
    P = np.eye(ls.d) - lr * ls.H
    step = ls.matrix(lambda m, S: (P @ m, P @ S @ P + lr ** 2 * ls.k * ls.mean_noise(m, S)))
    e0 = np.asarray(x0, float) - ls.x_star
    z0 = ls.pack(e0, np.outer(e0, e0))
    steps = np.asarray(steps, dtype=np.int64)
    return ls.moments([np.linalg.matrix_power(step, int(n)) @ z0 for n in steps])


def sme_moments(A, b, x0, lr: float, batch: int, replace: bool, times, order: int,
                correction: float = SME_CORRECTION) -> Moments:
    """Exact mean and second moment of the SME of `order` (0: gradient flow, 1, 2) on least squares at `times`.

    The drift -grad(f + c lr |grad f|^2) = -(H + 2 c lr H^2) e = -Ht e (c = `correction` at order 2, 0
    below) and the diffusion lr k C(e) close the moment equations (Ito):
        dm/dt = -Ht m,    dS/dt = -Ht S - S Ht + lr k E C(e)       (no noise term at order 0)
    solved exactly by a matrix exponential."""
    if order not in (0, 1, 2):
        raise ParameterError(f"SME order must be 0, 1 or 2, got {order!r}")
    ls = _LeastSquares(A, b, batch, replace)
    Ht = ls.H + (2 * correction * lr * ls.H @ ls.H if order == 2 else 0.0)
    noise = lr * ls.k if order > 0 else 0.0
    generator = ls.matrix(lambda m, S: (-Ht @ m, -Ht @ S - S @ Ht + noise * ls.mean_noise(m, S)))
    generator[0, 0] = 0.0
    e0 = np.asarray(x0, float) - ls.x_star
    z0 = ls.pack(e0, np.outer(e0, e0))
    return ls.moments([scipy.linalg.expm(generator * float(t)) @ z0 for t in np.asarray(times, float)])


def moment_error(a: Moments, b: Moments) -> np.ndarray:
    """max over the test functions x_i and x_i x_j of |E_a - E_b|, at each recorded time: the weak error on
    polynomials of degree <= 2."""
    return np.maximum(np.abs(a.mean - b.mean).max(axis=-1), np.abs(a.second - b.second).max(axis=(-2, -1)))


# --- fitted orders ----------------------------------------------------------------------------------------

class Slope(NamedTuple):
    """log error = slope log lr + intercept, with the slope's standard error."""
    slope: float
    stderr: float
    intercept: float


def fit_slope(lrs, errors, stderr=None) -> Slope:
    """Least-squares fit of log(error) against log(lr). With `stderr` (standard errors of the errors, e.g. a
    Monte Carlo error), weighted by 1 / sigma_log^2 with sigma_log = stderr / error (delta method) and the
    slope's standard error from those weights; without, unweighted with the standard error from the
    residuals (for deterministic errors it measures how far the points are from one power law)."""
    x, y = np.log(np.asarray(lrs, float)), np.log(np.asarray(errors, float))
    if x.size < 3 or x.shape != y.shape or not np.all(np.isfinite(y)):
        raise ParameterError("fitting an order needs at least 3 learning rates with positive finite errors")
    if stderr is not None:
        w = (np.asarray(errors, float) / np.asarray(stderr, float)) ** 2
    else:
        w = np.ones_like(x)
    X = np.column_stack([x, np.ones_like(x)])
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    slope, intercept = cov @ X.T @ (w * y)
    if stderr is None:
        resid = y - X @ np.array([slope, intercept])
        cov = cov * float(resid @ resid) / (x.size - 2)
    return Slope(float(slope), float(np.sqrt(cov[0, 0])), float(intercept))
