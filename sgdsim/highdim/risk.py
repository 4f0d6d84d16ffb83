"""Risk curves of SGD on least squares in high dimension: the Volterra equation, power laws, the critical lr.

Model (`sgdsim.solvers.highdim.volterra` writes the equations): data covariance with eigenvalues lambda_j, the
target's coordinates x*_j in that eigenbasis, label noise sigma, batch B, step lr, start x_0 (nu_j(0) =
(x_0 - x*)_j^2). The expected risk R_k = E (1/2)(a . x_k - y)^2 after k steps solves the discrete renewal
equation R_k = F_k + sum_{s<k} K_{k-1-s} R_s: exact for online SGD on Gaussian data and the high-dimensional
(homogenized) limit for finite sums with delocalized rows (Paquette, Lee, Pedregosa & Paquette, COLT 2021;
Paquette, Paquette, Adlam & Pennington 2022). `risk_curve_continuous` solves the lr -> 0 version in
t = k lr.

Power laws lambda_j = j^-alpha, x*_j = j^-beta, x_0 = 0 (Paquette, Paquette, Xiao & Pennington, NeurIPS
2024, in these variables): the gradient-flow part decays as F(t) ~ t^-(alpha + 2 beta - 1)/alpha and the
kernel as K(t) ~ t^-(2 - 1/alpha); the risk decays with the slower of the two, for 1 << t << d^alpha.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from .. import runloop
from ..errors import ParameterError
from ..solvers.highdim import volterra as vo

SOURCE = ("Paquette, Lee, Pedregosa & Paquette, 'SGD in the large', COLT 2021 (Thm. 1.1); Paquette, Paquette, "
          "Adlam & Pennington, 'Homogenization of SGD in high-dimensions' 2022, eqs. (10)-(12)")
EXPONENT_SOURCE = ("Paquette, Paquette, Xiao & Pennington, '4+3 phases of compute-optimal neural scaling laws', "
                   "NeurIPS 2024 (forcing and kernel power laws)")


def _spectrum(lam, nu0) -> tuple[np.ndarray, np.ndarray]:
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    nu0 = np.ascontiguousarray(np.broadcast_to(nu0, lam.shape), dtype=np.float64)
    if lam.ndim != 1 or lam.size < 1 or np.any(~np.isfinite(lam)) or np.any(lam < 0):
        raise ParameterError("the spectrum must be a non-empty 1-D array of non-negative eigenvalues")
    if np.any(~np.isfinite(nu0)) or np.any(nu0 < 0):
        raise ParameterError("the initial errors nu_j(0) must be finite and non-negative")
    return lam, nu0


def _check(lr, batch, noise):
    if not (lr > 0 and math.isfinite(lr)):
        raise ParameterError(f"lr must be positive, got {lr}")
    if not (isinstance(batch, (int, np.integer)) and batch >= 1):
        raise ParameterError(f"batch must be an integer >= 1, got {batch}")
    if not noise >= 0:
        raise ParameterError(f"noise must be non-negative, got {noise}")


def risk_curve(lam, nu0, *, lr: float, batch: int, noise: float = 0.0, steps: int) -> np.ndarray:
    """R_k for k = 0..steps (discrete Volterra equation, exact for online SGD on Gaussian data); inf once it
    overflows (above the critical lr)."""
    lam, nu0 = _spectrum(lam, nu0)
    _check(lr, batch, noise)
    n = int(steps) + 1
    F, K, R = np.empty(n), np.empty(n), np.empty(n)
    with np.errstate(over="ignore", invalid="ignore"):
        vo.discrete_terms(lam, nu0, float(lr), float(batch), float(noise) ** 2, n, F, K)
        vo.solve_discrete(F, K, R)
    return R


def gd_risk(lam, nu0, *, lr: float, noise: float = 0.0, steps: int) -> np.ndarray:
    """Full-batch gradient descent on the same problem: R_k = sigma^2/2 + (1/2) sum_j lambda_j nu_j(0)
    (1 - lr lambda_j)^(2k) (no SGD noise: the theory SGD's kernel term corrects)."""
    lam, nu0 = _spectrum(lam, nu0)
    k = np.arange(int(steps) + 1)
    return 0.5 * noise ** 2 + 0.5 * ((1.0 - lr * lam)[None, :] ** (2 * k[:, None])) @ (lam * nu0)


def risk_curve_continuous(lam, nu0, *, lr: float, batch: int, noise: float = 0.0, t_max: float,
                          h: float) -> tuple[np.ndarray, np.ndarray]:
    """(t, R(t)) on t = 0, h, ..., >= t_max: the continuous equation (t = step x lr) by the trapezoidal rule."""
    lam, nu0 = _spectrum(lam, nu0)
    _check(lr, batch, noise)
    t = np.arange(int(math.ceil(t_max / h)) + 1) * h
    F, K, R = np.empty(len(t)), np.empty(len(t)), np.empty(len(t))
    vo.continuous_terms(lam, nu0, float(lr), float(batch), float(noise) ** 2, t, F, K)
    vo.solve_trapezoid(F, K, float(h), R)
    return t, R


def kernel_norm(lam, lr: float, batch: int) -> float:
    """sum_m K_m = (lr / B) sum_j lambda_j / (2 - lr lambda_j (1 + 1/B)) (inf if some c_j >= 1): the risk
    stays bounded iff this is < 1 (renewal theorem for a non-negative kernel)."""
    lam = np.asarray(lam, float)
    denom = 2.0 - lr * lam * (1.0 + 1.0 / batch)
    if np.any(denom[lam > 0] <= 0):
        return math.inf
    return float(lr / batch * np.sum(lam / denom))


def critical_lr(lam, batch: int) -> float:
    """The largest stable lr: root of kernel_norm(lr) = 1 below 2 / (lambda_max (1 + 1/B)) (where c_1 = 1);
    for many small eigenvalues ~ 2B / tr(H) (Paquette et al. 2021)."""
    lam = np.asarray(lam, float)
    edge = 2.0 / (lam.max() * (1.0 + 1.0 / batch))
    top = edge * (1 - 1e-12)
    if kernel_norm(lam, top, batch) < 1.0:
        return float(edge)
    return float(brentq(lambda lr: kernel_norm(lam, lr, batch) - 1.0, 0.0, top, xtol=1e-14, rtol=1e-12))


def power_law(d: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """lambda_j = j^-alpha, x*_j = j^-beta (j = 1..d)."""
    if d < 1 or not alpha > 0:
        raise ParameterError(f"power_law needs d >= 1 and alpha > 0, got d={d}, alpha={alpha}")
    j = np.arange(1, d + 1, dtype=float)
    return j ** -alpha, j ** -beta


def risk_exponent(alpha: float, beta: float) -> float:
    """Exponent of R(t) ~ t^e for 1 << t << d^alpha, x_0 = 0, no label noise:
    e = -min(alpha + 2 beta - 1, 2 alpha - 1) / alpha: the forcing exponent when 2 beta < alpha (signal
    dominated), the kernel exponent -(2 - 1/alpha) otherwise (SGD-noise dominated). Needs alpha > 1 (finite
    trace) and alpha + 2 beta > 1 (finite initial risk)."""
    if not (alpha > 1 and alpha + 2 * beta > 1):
        raise ParameterError(f"risk_exponent needs alpha > 1 and alpha + 2 beta > 1, got alpha={alpha}, beta={beta}")
    return -min(alpha + 2 * beta - 1, 2 * alpha - 1) / alpha


def fit_exponent(t, R, lo: float, hi: float) -> tuple[float, np.ndarray]:
    """Least-squares slope of log R against log t over lo <= t <= hi, and the mask of the points used."""
    t, R = np.asarray(t, float), np.asarray(R, float)
    mask = (t >= lo) & (t <= hi) & (R > 0) & np.isfinite(R)
    if mask.sum() < 2:
        raise ParameterError(f"fit_exponent needs at least two points in [{lo:g}, {hi:g}]")
    return float(np.polyfit(np.log(t[mask]), np.log(R[mask]), 1)[0]), mask


def orthogonal_design(lam, xstar, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite-sum least-squares data with the exact spectrum: A = sqrt(n) U diag(sqrt(lambda)), U (n, d) with
    orthonormal columns (QR of a Gaussian matrix, so rows are delocalized), b = A x*: A^T A / n = diag(lambda)
    and the minimizer x* has zero loss."""
    lam = np.asarray(lam, float)
    if n < len(lam):
        raise ParameterError(f"orthogonal_design needs n >= d examples, got n={n}, d={len(lam)}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    U, _ = np.linalg.qr(rng.standard_normal((n, len(lam))))
    A = math.sqrt(n) * U * np.sqrt(lam)
    return A, A @ np.asarray(xstar, float)


def simulate_risk(A: np.ndarray, b: np.ndarray, lam, xstar, *, lr: float, batch: int, particles: int,
                  record_steps, seed: int, progress: bool = False, on_record=None) -> tuple[np.ndarray, str, str]:
    """Minibatch SGD (B examples drawn with replacement each step) on f(x) = (1/2n)|A x - b|^2 from x = 0 by the
    particle engine, `particles` independent chains; returns (risk (T, particles), status, message) with the
    risk (1/2)(x - x*)^T diag(lambda) (x - x*) = f(x) of the `orthogonal_design` data at the increasing
    `record_steps`. A chain that exceeds |x| > 1e10 stops there (its risk stays huge and finite); status
    "diverged" says so. Runs on `sgdsim.runloop.drive` (chunks of measured time, progress bar, SIGINT/SIGTERM
    under `sgdsim run`: status "interrupted" with the risks recorded so far); `on_record(step, risk)` is called
    with each record as it is taken (e.g. to stream it to a run file)."""
    from ..particles.dynamics import SGD
    from ..particles.landscapes import Regression
    from ..solvers import get_solver
    steps = np.asarray(record_steps, dtype=np.int64)
    if steps.ndim != 1 or len(steps) < 1 or steps[0] < 0 or np.any(np.diff(steps) <= 0):
        raise ParameterError("record_steps must be a non-empty increasing list of non-negative steps")
    landscape, dynamics = Regression(A, b), SGD(lr=float(lr), batch=int(batch))
    solver = get_solver(dynamics.solver)(landscape=landscape.code, theta=landscape.theta, data=landscape.data,
                                         x0=np.zeros((particles, A.shape[1])), seed=seed,
                                         **dynamics.solver_arguments(landscape))
    lam, xstar = np.asarray(lam, float), np.asarray(xstar, float)
    wanted, out = set(int(s) for s in steps), []

    def record(step: int) -> None:
        if step in wanted:
            e = solver.x - xstar
            out.append(0.5 * np.einsum("pj,j,pj->p", e, lam, e))
            if on_record is not None:
                on_record(step, out[-1])

    result = runloop.drive(solver.advance, int(steps[-1]), runloop.Schedule(steps=tuple(int(s) for s in steps)),
                           record, progress=progress, unit="step")
    if result.status is runloop.Status.INTERRUPTED:
        return np.array(out), str(result.status), result.message
    diverged = solver.first_divergence()
    message = "" if diverged is None else f"chain {diverged[1]} diverged at step {diverged[0]}"
    return np.array(out), ("diverged" if diverged else "complete"), message
