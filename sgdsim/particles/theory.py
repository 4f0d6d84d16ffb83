"""Closed-form and exactly computable predictions for SGD, Langevin dynamics and perturbed GD.

Conventions: SGD on f(x) = (1/N) sum_i f_i(x), update x <- x - lr * g_B with g_B the mean gradient over a
minibatch of size `batch`; Langevin SDE dx = -grad f dt + sqrt(2 T) dW. Each function names its source.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import scipy.integrate
import scipy.linalg
import scipy.special

from sgdsim.errors import ParameterError

SCHEMES = ("euler", "heun")


def ou_moments(x0: np.ndarray, h: np.ndarray, temperature: float, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and variance of the Ornstein-Uhlenbeck process for f = 1/2 sum_k h_k x_k^2.

    dx_k = -h_k x_k dt + sqrt(2 T) dW_k from x(0) = x0 gives, componentwise,
    mean = x0 exp(-h t), var = (T / h) (1 - exp(-2 h t))
    (Uhlenbeck & Ornstein 1930; Gardiner, Handbook of Stochastic Methods, 2009).
    """
    x0, h = np.broadcast_arrays(np.asarray(x0, float), np.asarray(h, float))
    _check_ou(h, temperature)
    if t < 0:
        raise ParameterError(f"time t must be >= 0, got {t}")
    return x0 * np.exp(-h * t), temperature / h * -np.expm1(-2.0 * h * t)


def ou_scheme_moments(x0: np.ndarray, h: np.ndarray, temperature: float, dt: float, n_steps: int,
                      scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and variance after `n_steps` of a discretisation of the OU process (see `ou_moments`).

    With z = h dt, b = sqrt(2 T) and xi ~ N(0, 1), one step is linear, x' = m x + s xi, so
    mean_n = m^n x0 and var_{n+1} = m^2 var_n + s^2, i.e. var_n = s^2 (1 - m^(2n)) / (1 - m^2):
    - "euler" (Euler-Maruyama, Kloeden & Platen 1992 sec. 10.2): m = 1 - z, s^2 = 2 T dt;
    - "heun" (explicit weak order-2 scheme for additive noise, Kloeden & Platen 1992 eq. 15.1.3):
      xbar = x + a(x) dt + b dW, x' = x + (a(x) + a(xbar)) dt / 2 + b dW with a(x) = -h x and the same dW,
      hence m = 1 - z + z^2 / 2 and s^2 = 2 T dt (1 - z / 2)^2.
    """
    x0, h = np.broadcast_arrays(np.asarray(x0, float), np.asarray(h, float))
    _check_ou(h, temperature)
    if dt <= 0 or int(n_steps) != n_steps or n_steps < 0:
        raise ParameterError(f"need dt > 0 and an integer n_steps >= 0, got dt={dt}, n_steps={n_steps}")
    z = h * dt
    if scheme == "euler":
        u, s2 = z, 2.0 * temperature * dt * np.ones_like(z)
    elif scheme == "heun":
        u, s2 = z * (1.0 - z / 2.0), 2.0 * temperature * dt * (1.0 - z / 2.0) ** 2
    else:
        raise ParameterError(f"unknown scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")
    m = 1.0 - u  # u = 1 - m is formed analytically so that small dt keeps full relative precision
    with np.errstate(divide="ignore", invalid="ignore"):
        log_m = np.log1p(-u)
        mean_factor = np.where(m > 0, np.exp(n_steps * log_m), m ** n_steps)
        one_minus_q = u * (2.0 - u)
        one_minus_qn = np.where(m > 0, -np.expm1(2 * n_steps * log_m), 1.0 - m ** (2 * n_steps))
        geometric = np.where(one_minus_q != 0, one_minus_qn / one_minus_q, float(n_steps))
    return mean_factor * x0, s2 * geometric


def _check_ou(h: np.ndarray, temperature: float) -> None:
    if np.any(h <= 0) or temperature < 0:
        raise ParameterError("need all curvatures h > 0 and temperature >= 0")


def gibbs_bin_probabilities(f: Callable[[np.ndarray], np.ndarray], edges: np.ndarray,
                            temperature: float) -> np.ndarray:
    """Probability of each bin [edges[i], edges[i+1]] under the Gibbs density exp(-f(x) / T) / Z.

    p_i = int_{bin i} exp(-f/T) dx / Z with Z = int_{edges[0]}^{edges[-1]} exp(-f/T) dx, i.e. the density is
    normalised on the grid's range only (the stationary law of the Langevin SDE, Gardiner 2009,
    conditioned on that range). Each bin is integrated with adaptive quadrature (scipy quad, rel. 1e-12)
    after shifting f by its minimum on a 16-point-per-bin sample, so exp never overflows or underflows wholesale.
    """
    edges = np.asarray(edges, float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0) or temperature <= 0:
        raise ParameterError("edges must be a strictly increasing 1-D grid of >= 2 points and temperature > 0")
    sample = (edges[:-1, None] + np.diff(edges)[:, None] * np.linspace(0.0, 1.0, 16)).ravel()
    shift = np.min(np.asarray(f(np.append(sample, edges[-1])), float))

    def weight(x: float) -> float:
        return float(np.exp(-(f(x) - shift) / temperature))

    mass = np.array([scipy.integrate.quad(weight, lo, hi, epsabs=0.0, epsrel=1e-12, limit=200)[0]
                     for lo, hi in zip(edges[:-1], edges[1:])])
    return mass / mass.sum()


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Kullback-Leibler divergence KL(p || q) = sum_i p_i log(p_i / q_i) of two probability vectors.

    Terms with p_i = 0 contribute 0; the result is +inf if some p_i > 0 has q_i = 0 (Kullback & Leibler 1951).
    """
    p, q = _probability_pair(p, q)
    support = p > 0
    if np.any(q[support] == 0):
        return float("inf")
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def l1_distance(p: np.ndarray, q: np.ndarray) -> float:
    """L1 distance sum_i |p_i - q_i| (twice the total-variation distance) of two probability vectors."""
    p, q = _probability_pair(p, q)
    return float(np.abs(p - q).sum())


def _probability_pair(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape or np.any(p < 0) or np.any(q < 0):
        raise ParameterError(f"need two non-negative vectors of one shape, got shapes {p.shape} and {q.shape}")
    return p, q


class LeastSquaresMoments(NamedTuple):
    """Minimiser, Hessian and per-example gradient covariance at the minimiser of a least-squares loss."""

    x_star: np.ndarray
    hessian: np.ndarray
    noise_covariance: np.ndarray


def least_squares_moments(A: np.ndarray, b: np.ndarray) -> LeastSquaresMoments:
    """Moments of f(x) = (1/N) sum_i f_i(x), f_i(x) = 1/2 (a_i . x - b_i)^2, for data A (N x d) and b (N).

    x* = argmin f (lstsq), H = A^T A / N, and C = (1/N) sum_i r_i^2 a_i a_i^T with r_i = a_i . x* - b_i:
    the covariance of the per-example gradients a_i r_i at x*, where their mean grad f(x*) = 0
    (Mandt, Hoffman & Blei 2017; Liu, Ziyin & Ueda 2021).
    """
    A, b = np.asarray(A, float), np.asarray(b, float)
    if A.ndim != 2 or b.shape != (A.shape[0],):
        raise ParameterError(f"need A of shape (N, d) and b of shape (N,), got {A.shape} and {b.shape}")
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]
    r = A @ x_star - b
    n = A.shape[0]
    return LeastSquaresMoments(x_star, A.T @ A / n, (A * r[:, None] ** 2).T @ A / n)


def lyapunov_continuous(H: np.ndarray, C: np.ndarray, lr: float, batch: int) -> np.ndarray:
    """Stationary covariance S of the OU approximation of SGD: H S + S H = (lr / batch) C.

    SGD near a minimum as dx = -H x dt + sqrt(lr C / batch) dW (Mandt, Hoffman & Blei 2017, "Stochastic
    gradient descent as approximate Bayesian inference", sec. 3: A Sigma + Sigma A^T = (eps / S) B B^T).
    Requires H positive definite.
    """
    H, C = _check_hc(H, C, lr, batch)
    if np.linalg.eigvalsh(H).min() <= 0:
        raise ParameterError("H must be positive definite for a stationary covariance")
    S = scipy.linalg.solve_continuous_lyapunov(H, lr / batch * C)
    return (S + S.T) / 2


def lyapunov_discrete(H: np.ndarray, C: np.ndarray, lr: float, batch: int) -> np.ndarray:
    """Stationary covariance of e' = (I - lr H) e - lr g with Cov(g) = C / batch (additive noise only).

    S = (I - lr H) S (I - lr H) + (lr^2 / batch) C, i.e. H S + S H - lr H S H = (lr / batch) C: the
    finite-lr correction of `lyapunov_continuous` (Liu, Ziyin & Ueda 2021, "Noise and fluctuation of finite
    learning rate SGD"; Yaida 2019). Requires the spectral radius of I - lr H below 1.
    """
    H, C = _check_hc(H, C, lr, batch)
    P = np.eye(len(H)) - lr * H
    if np.abs(np.linalg.eigvalsh(P)).max() >= 1:
        raise ParameterError(f"GD is unstable at lr={lr}: no stationary covariance")
    S = scipy.linalg.solve_discrete_lyapunov(P, lr ** 2 / batch * C)
    return (S + S.T) / 2


def _check_hc(H: np.ndarray, C: np.ndarray, lr: float, batch: int) -> tuple[np.ndarray, np.ndarray]:
    H, C = np.atleast_2d(np.asarray(H, float)), np.atleast_2d(np.asarray(C, float))
    if H.shape != C.shape or H.shape[0] != H.shape[1] or lr <= 0 or batch < 1:
        raise ParameterError(f"need square H and C of one shape, lr > 0, batch >= 1; got {H.shape}, {C.shape}")
    return H, C


def sgd_stationary_covariance(A: np.ndarray, b: np.ndarray, lr: float, batch: int,
                              replace: bool = True) -> np.ndarray:
    """Exact stationary covariance S of e = x - x* for minibatch SGD on least squares (see `least_squares_moments`).

    The batch gradient is Hb e + gb with Hb = (1/B) sum_{j in batch} a_j a_j^T, gb = (1/B) sum a_j r_j, so
    e' = (I - lr Hb) e - lr gb. The batch is independent of e, E[gb] = 0 and E[e] = 0 at stationarity, hence
    S = (I - lr H) S (I - lr H) + lr^2 k [(1/N) sum_i (a_i^T S a_i) a_i a_i^T - H S H] + lr^2 k C,
    with k = 1/B for B iid uniform indices (replace=True) and k = (N - B) / (B (N - 1)) for B distinct indices
    (replace=False; finite-population correction). The bracket is the multiplicative minibatch noise
    (Liu, Ziyin & Ueda 2021, "Noise and fluctuation of finite learning rate SGD"; Ziyin, Liu, Mori &
    Ueda 2022, "Strength of minibatch noise in SGD"). Solved as a d^2 x d^2 linear system.
    """
    A, b = np.asarray(A, float), np.asarray(b, float)
    moments = least_squares_moments(A, b)
    n, d = A.shape
    if lr <= 0 or int(batch) != batch or batch < 1 or (not replace and batch > n):
        raise ParameterError(f"need lr > 0 and an integer batch >= 1 (<= N={n} without replacement), "
                             f"got lr={lr}, batch={batch}")
    k = 1.0 / batch if replace else (0.0 if batch == n else (n - batch) / (batch * (n - 1)))
    H, eye = moments.hessian, np.eye(d)
    P = eye - lr * H
    K = (A[:, :, None] * A[:, None, :]).reshape(n, d * d)  # rows vec(a_i a_i^T)
    # vec(X S Y) = (Y^T kron X) vec(S); every term is symmetric, so the map L is a symmetric matrix.
    L = np.kron(P, P) + lr ** 2 * k * (K.T @ K / n - np.kron(H, H))
    swap = np.eye(d * d).reshape(d, d, d, d).transpose(1, 0, 2, 3).reshape(d * d, d * d)
    L_sym = L @ (np.eye(d * d) + swap) / 2  # L restricted to symmetric matrices (zero on antisymmetric ones)
    if np.abs(np.linalg.eigvalsh((L_sym + L_sym.T) / 2)).max() >= 1:
        raise ParameterError(f"SGD is unstable at lr={lr}, batch={batch}: no stationary covariance")
    vec_s = np.linalg.solve(np.eye(d * d) - L_sym, lr ** 2 * k * moments.noise_covariance.ravel())
    S = vec_s.reshape(d, d)
    return (S + S.T) / 2


def saddle_escape_steps(u1: np.ndarray, lr: float, threshold: float) -> np.ndarray:
    """Gradient-descent iterations to leave the strict saddle f(x) = x1^4/4 - x1^2/2 + |x_rest|^2/2.

    The x1 coordinate follows x1 <- x1 - lr (x1^3 - x1) whatever the other coordinates do; returns the
    first n with |x1_n| >= threshold (0 < threshold < 1) from x1_0 = u1, elementwise, and inf where u1 == 0
    (Jin, Ge, Netrapalli, Kakade & Jordan 2017, "How to escape saddle points efficiently").
    """
    if lr <= 0 or not 0 < threshold < 1:
        raise ParameterError(f"need lr > 0 and 0 < threshold < 1, got lr={lr}, threshold={threshold}")
    x = np.abs(np.asarray(u1, float))
    steps = np.where(x == 0, np.inf, 0.0).ravel()
    active = np.flatnonzero((x < threshold) & (x > 0))
    values = x.ravel()[active]
    n = 0
    while active.size:
        n += 1
        values = values * (1.0 + lr - lr * values ** 2)
        done = values >= threshold
        steps[active[done]] = n
        active, values = active[~done], values[~done]
    return steps.reshape(x.shape)


def ball_coordinate_density(u: np.ndarray, radius: float, d: int) -> np.ndarray:
    """Density of one coordinate of a point uniform in the d-dimensional ball of radius r.

    p(u) = (1 - u^2/r^2)^((d-1)/2) / (r B(1/2, (d+1)/2)) on |u| < r, 0 elsewhere
    (equivalently (u/r)^2 ~ Beta(1/2, (d+1)/2); e.g. Fang, Kotz & Ng 1990, Symmetric Multivariate and
    Related Distributions).
    """
    if radius <= 0 or int(d) != d or d < 1:
        raise ParameterError(f"need radius > 0 and an integer d >= 1, got radius={radius}, d={d}")
    s2 = (np.asarray(u, float) / radius) ** 2
    inside = s2 < 1
    with np.errstate(divide="ignore"):
        log_p = (d - 1) / 2 * np.log1p(-np.where(inside, s2, 0.0)) - scipy.special.betaln(0.5, (d + 1) / 2)
    return np.where(inside, np.exp(log_p) / radius, 0.0)


def pgd_escape_steps_mean(lr: float, radius: float, d: int, threshold: float) -> float:
    """Expected escape iterations E[N(u1)] of perturbed GD started at the saddle point of `saddle_escape_steps`.

    u1 is the first coordinate of one perturbation uniform in the d-ball of the given radius
    (`ball_coordinate_density`). Since x -> x (1 + lr - lr x^2) increases on [0, threshold] (needs
    3 lr threshold^2 < 1 + lr), N(u) >= n iff |u| < c_{n-1} with c_0 = threshold and c_n its preimage, so
    E[N] = sum_{n>=0} P(|u1| < c_n) with P(|u1| < c) the regularised incomplete Beta I_{(c/r)^2}(1/2, (d+1)/2):
    exact for the integer-valued N, summed until the terms (decaying like (1 + lr)^-n) are below 1e-17.
    As |u1| ~ r / sqrt(d), E[N] grows like (1/2) log(d) / log(1 + lr)
    (Jin, Ge, Netrapalli, Kakade & Jordan 2017, "How to escape saddle points efficiently").
    """
    if lr <= 0 or not 0 < threshold < 1 or 3 * lr * threshold ** 2 >= 1 + lr:
        raise ParameterError(f"need lr > 0, 0 < threshold < 1 and 3 lr threshold^2 < 1 + lr; "
                             f"got lr={lr}, threshold={threshold}")
    ball_coordinate_density(0.0, radius, d)  # validates radius and d
    total, c = 0.0, threshold
    while True:
        term = float(scipy.special.betainc(0.5, (d + 1) / 2, min(c / radius, 1.0) ** 2))
        total += term
        if term <= 1e-17 * total:
            return total
        x = c / (1.0 + lr)  # Newton for x (1 + lr - lr x^2) = c; concave, increasing: converges monotonically
        for _ in range(100):
            step = (x * (1.0 + lr - lr * x * x) - c) / (1.0 + lr - 3.0 * lr * x * x)
            x -= step
            if abs(step) <= 1e-16 * x:
                break
        c = x
