"""Closed-form learning dynamics of linear networks.

Saxe, McClelland & Ganguli 2014 ("Exact solutions to the nonlinear dynamics of learning in deep linear
neural networks"): whitened inputs (Sigma_xx = X^T X / n = I), Sigma_yx = Y^T X / n = U diag(s) V^T, square
loss L = (1/2n) sum |W_e x - y|^2, gradient flow on N balanced factors started decoupled (W_e(0) = U diag(u0)
V^T). Each mode strength u = U_k^T W_e V_k then obeys du/dt = N u^{2-2/N} (s - u), which for N = 2 is
the sigmoid (their exact two-layer solution, time constant tau = 1)
    u(t) = s e^{2 s t} / (e^{2 s t} - 1 + s / u0),
learning time from u0 to u_f: t = ln(u_f (s - u0) / (u0 (s - u_f))) / (2 s) (their learning time). For N != 2, t(u) =
int_{u0}^{u} dv / (N v^{2-2/N} (s - v)) (their deep-network analogue) is computed by quadrature and inverted.
N = 1 gives u = s + (u0 - s) e^{-t}. The loss is L = L_min + (1/2) sum_k (s_k - u_k)^2 (+ the Sigma_yx modes
outside the learned subspace; L_min = tr(Sigma_yy)/2 - sum s_k^2 / 2).

Advani & Saxe 2017 ("High-dimensional dynamics of generalization error in neural networks"): teacher
y = w_bar . x + eps, x ~ N(0, I_P), w_bar ~ N(0, sigma_w^2 I/P), eps ~ N(0, sigma^2); student w(0) ~ N(0,
sigma_0^2 I/P) trained by gradient flow on E_train = (1/2N) sum_i (y_i - w . x_i)^2 with N = alpha P examples.
The eigenvalues of X^T X / N follow Marchenko–Pastur with ratio c = 1/alpha (mass min(1, alpha) off zero):
    E_train(t) = (1/2)[sigma^2 max(0, 1 - 1/alpha) + int rho(l) e^{-2lt} ((sigma_w^2 + sigma_0^2) l
                 + sigma^2 / alpha) dl],
    E_gen(t)   = (1/2)[sigma^2 + (sigma_w^2 + sigma_0^2)(max(0, 1 - alpha) + int rho(l) e^{-2lt} dl)
                 + (sigma^2 / alpha) int rho(l) (1 - e^{-lt})^2 / l dl]
(derived in this normalization from their eigenmode solution; E_gen = (1/2)(|w - w_bar|^2 + sigma^2) is the
population error).
Discrete GD with step lr replaces e^{-lt} by (1 - lr l)^k at step k. As t -> inf, E_gen -> (1/2)[sigma^2
(1 + 1/(alpha - 1))] for alpha > 1 and diverges as alpha -> 1 (the double-descent peak).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, special

from ..errors import ParameterError

# --------------------------------------------------------------------------------------------- Saxe et al.


def _check_mode(s: float, u0: float) -> None:
    if not (s > 0 and 0 < u0 < s):
        raise ParameterError(f"mode needs 0 < u0 < s, got u0={u0!r}, s={s!r}")


def _logit(u, s):
    return np.log(u) - np.log(s - u)


def _dt_dw(w: float, s: float, depth: int) -> float:
    """dt/dw of the deep mode in w = ln(u / (s - u)): u^{2/N - 1} / (N s), smooth and positive."""
    return (s * special.expit(w)) ** (2.0 / depth - 1.0) / (depth * s)


def _time_between(w_a: float, w_b: float, s: float, depth: int) -> float:
    return integrate.quad(_dt_dw, w_a, w_b, args=(s, depth), epsabs=0, epsrel=1e-13, limit=200)[0]


def saxe_time(u, s: float, u0: float, depth: int = 2) -> np.ndarray:
    """Time for a mode of strength s to grow from u0 to u (Saxe et al. 2014's learning time for depth 2; for any depth
    t = int dw u^{2/N-1} / (N s) in w = ln(u / (s - u)), by quadrature)."""
    _check_mode(s, u0)
    u = np.asarray(u, np.float64)
    if depth == 2:
        return np.log(u * (s - u0) / (u0 * (s - u))) / (2 * s)
    if depth == 1:
        return np.log((s - u0) / (s - u))
    w0 = float(_logit(u0, s))
    return np.vectorize(lambda x: _time_between(w0, float(_logit(x, s)), s, depth))(u)


def saxe_mode(t, s: float, u0: float, depth: int = 2) -> np.ndarray:
    """Mode strength u(t) (Saxe et al. 2014): the sigmoid for depth 2, exp relaxation for depth 1,
    for other depths the quadrature t(w) inverted by safeguarded Newton steps (dt/dw is known) in increasing t."""
    _check_mode(s, u0)
    t = np.asarray(t, np.float64)
    if depth == 2:
        e = np.exp(-2 * s * t)
        return s / (1.0 - e + e * s / u0)
    if depth == 1:
        return s + (u0 - s) * np.exp(-t)
    flat = t.ravel()
    out = np.empty_like(flat)
    w_prev, t_prev = float(_logit(u0, s)), 0.0
    for i in np.argsort(flat, kind="stable"):
        if flat[i] < 0:
            raise ParameterError(f"times must be non-negative, got {flat[i]}")
        w = w_prev
        for _ in range(100):
            gap = t_prev + _time_between(w_prev, w, s, depth) - flat[i]
            dw = -gap / _dt_dw(w, s, depth)
            w += max(min(dw, 5.0), -5.0)
            if abs(dw) <= 1e-13 * (1.0 + abs(w)):
                break
        t_prev += _time_between(w_prev, w, s, depth)
        w_prev = w
        out[i] = s * special.expit(w)
    return out.reshape(t.shape)


def saxe_half_time(s: float, u0: float, depth: int = 2) -> float:
    """Learning time of a mode: from u0 to s/2 (Saxe et al. 2014's learning time with u_f = s/2)."""
    return float(saxe_time(s / 2, s, u0, depth))


def whitened_modes(X: np.ndarray, Y: np.ndarray):
    """(U, s, Vt) of Sigma_yx = Y^T X / n; raises if Sigma_xx = X^T X / n is not the identity to 1e-8."""
    n = len(X)
    cxx = X.T @ X / n
    if not np.allclose(cxx, np.eye(X.shape[1]), atol=1e-8):
        raise ParameterError("Saxe's solution needs whitened inputs (X^T X / n = I); whiten X first")
    return np.linalg.svd(Y.T @ X / n, full_matrices=False)


def saxe_loss_curve(X: np.ndarray, Y: np.ndarray, times, u0: float, depth: int = 2) -> np.ndarray:
    """L(t) = (1/(2n)) |Y|^2 - sum_k s_k^2 / 2 + (1/2) sum_k (s_k - u_k(t))^2 for whitened X and the decoupled
    balanced start W_e(0) = u0 U V^T (every mode at strength u0 < s_k)."""
    U, s, Vt = whitened_modes(np.asarray(X, float), np.asarray(Y, float).reshape(len(X), -1))
    base = float(np.sum(np.asarray(Y, float) ** 2)) / (2 * len(X)) - 0.5 * float(np.sum(s ** 2))
    out = np.full(len(np.atleast_1d(times)), base)
    for sk in s:
        if sk > u0:
            out += 0.5 * (sk - saxe_mode(times, sk, u0, depth)) ** 2
        else:  # a mode weaker than u0 does not follow the sigmoid; its exact balanced flow is used instead
            out += 0.5 * (sk - _shrinking_mode(np.atleast_1d(times), sk, u0, depth)) ** 2
    return out


def _shrinking_mode(t, s, u0, depth):
    """du/dt = N u^{2-2/N}(s - u) for u0 >= s (decays to s), by the adaptive integrator."""
    from ..solvers import rk
    sol = rk.integrate(lambda _, u: depth * np.abs(u) ** (2.0 - 2.0 / depth) * (s - u), np.array([u0]),
                       np.asarray(t, float), rtol=1e-12, atol=1e-14)
    return sol.y[:, 0]


# --------------------------------------------------------------------------------------------- Advani & Saxe


def marchenko_pastur(alpha: float, points: int = 4001):
    """Nodes and weights of int rho(l) f(l) dl over the non-zero part of the MP law of X^T X / N (ratio
    c = P/N = 1/alpha): rho(l) = sqrt((l+ - l)(l - l-)) / (2 pi c l), l_pm = (1 +- sqrt c)^2, mass min(1, alpha).
    Substituting l = m + r cos(theta) (m = 1 + c, r = 2 sqrt c) gives a smooth integrand, integrated by the
    midpoint rule in theta (spectrally accurate for smooth f)."""
    if alpha <= 0:
        raise ParameterError(f"sample ratio alpha must be positive, got {alpha}")
    c = 1.0 / alpha
    theta = (np.arange(points) + 0.5) * np.pi / points
    lam = (1 + c) + 2 * math.sqrt(c) * np.cos(theta)
    # rho dl = sqrt((l+ - l)(l - l-)) / (2 pi c l) * r sin(theta) dtheta, sqrt(...) = r sin(theta)
    weights = (2 * math.sqrt(c) * np.sin(theta)) ** 2 / (2 * np.pi * c * lam) * (np.pi / points)
    return lam, weights


def _decay(lam, t, lr):
    """e^{-lam t} (flow) or (1 - lr lam)^{t/lr} (GD at step t/lr)."""
    t = np.asarray(t, np.float64)[:, None]
    if lr is None or lr == 0:
        return np.exp(-lam[None, :] * t)
    base = 1.0 - lr * lam[None, :]
    return np.sign(base) ** np.rint(t / lr) * np.abs(base) ** (t / lr)


def advani_saxe_errors(t, alpha: float, noise: float, teacher: float = 1.0, init: float = 0.0,
                       lr: float | None = None, points: int = 4001) -> tuple[np.ndarray, np.ndarray]:
    """(E_train(t), E_gen(t)) of Advani & Saxe 2017 for sample ratio alpha = N/P, label noise std `noise`,
    teacher norm^2 `teacher` (sigma_w^2), initial student norm^2 `init` (sigma_0^2); `lr` gives discrete GD
    at steps t / lr. At alpha = 1 the MP density reaches 0 and the late-time test error grows without bound."""
    lam, wts = marchenko_pastur(alpha, points)
    d = _decay(lam, np.atleast_1d(t), lr)
    sig2, w2 = noise ** 2, teacher + init
    train = 0.5 * (sig2 * max(0.0, 1.0 - 1.0 / alpha) + (d ** 2 * (w2 * lam + sig2 / alpha)) @ wts)
    gen = 0.5 * (sig2 + w2 * (max(0.0, 1.0 - alpha) + (d ** 2) @ wts) + sig2 / alpha * ((1 - d) ** 2 / lam) @ wts)
    return train, gen


def advani_saxe_asymptote(alpha: float, noise: float, teacher: float = 1.0, init: float = 0.0) -> float:
    """E_gen(t -> inf): (1/2)[sigma^2 + sigma^2 / (alpha - 1)] for alpha > 1; (1/2)[sigma^2 + (sigma_w^2 +
    sigma_0^2)(1 - alpha) + sigma^2 alpha / (1 - alpha)] for alpha < 1 (means of the inverse MP law); inf at 1."""
    s2 = noise ** 2
    if alpha == 1:
        return math.inf
    if alpha > 1:
        return 0.5 * (s2 + s2 / (alpha - 1))
    return 0.5 * (s2 + (teacher + init) * (1 - alpha) + s2 * alpha / (1 - alpha))


def optimal_stopping_time(alpha: float, noise: float, teacher: float = 1.0, init: float = 0.0,
                          t_max: float = 1e4, points: int = 2001) -> tuple[float, float]:
    """(t*, E_gen(t*)): the minimum of the test-error curve over [0, t_max] (a log grid, then a bounded
    scalar minimization); t* = t_max when the error still decreases there (no early stopping needed)."""
    grid = np.concatenate([[0.0], np.geomspace(1e-3, t_max, 160)])
    gen = advani_saxe_errors(grid, alpha, noise, teacher, init, points=points)[1]
    k = int(np.argmin(gen))
    if k == len(grid) - 1 or k == 0:
        return float(grid[k]), float(gen[k])
    res = optimize.minimize_scalar(lambda x: float(advani_saxe_errors([math.exp(x)], alpha, noise, teacher,
                                                                      init, points=points)[1][0]),
                                   bounds=(math.log(grid[max(k - 1, 1)]), math.log(grid[k + 1])),
                                   method="bounded", options={"xatol": 1e-7})
    return float(math.exp(res.x)), float(res.fun)
