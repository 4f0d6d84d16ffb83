"""The Volterra equation for the expected risk of SGD on least squares, and its solvers.

Discrete steps (exact for online SGD on Gaussian data; the high-dimensional limit for finite sums): data
a ~ N(0, diag(lambda)) in the eigenbasis, y = a . x* + sigma xi, batch B, step lr, risk
R_k = E (1/2)(a . x_k - y)^2 = sigma^2/2 + (1/2) sum_j lambda_j nu_j(k) with nu_j(k) = E (x_k - x*)_j^2. One
step gives, by the Gaussian fourth moment E[(a.e)^2 a a^T] = (e^T H e) H + 2 H e e^T H,
    nu_j(k+1) = c_j nu_j(k) + (2 lr^2 lambda_j / B) R_k,   c_j = (1 - lr lambda_j)^2 + lr^2 lambda_j^2 / B,
so that (Paquette, Lee, Pedregosa & Paquette, "SGD in the large", COLT 2021, Thm. 1.1 in discrete form;
Paquette, Paquette, Adlam & Pennington, "Homogenization of SGD in high-dimensions", 2022, eq. (12)):
    R_k = F_k + sum_{s=0}^{k-1} K_{k-1-s} R_s,
    F_k = sigma^2/2 + (1/2) sum_j lambda_j nu_j(0) c_j^k,      K_m = (lr^2 / B) sum_j lambda_j^2 c_j^m.
Continuous time t = k lr (lr -> 0 at fixed t, the homogenized SGD of Paquette et al. 2022, eq. (10)):
    R(t) = F(t) + int_0^t K(t - s) R(s) ds,
    F(t) = sigma^2/2 + (1/2) sum_j lambda_j nu_j(0) e^{-2 lambda_j t},
    K(t) = (lr / B) sum_j lambda_j^2 e^{-2 lambda_j t}.

`solve_discrete` (exact recursion, O(n^2)) and `solve_trapezoid` (trapezoidal convolution quadrature of the
continuous equation on a uniform grid, second order; Linz, "Analytical and numerical methods for Volterra
equations", 1985, sec. 7.2) are compiled; `*_numpy` are their twins. `discrete_terms` / `continuous_terms`
build F and K from a spectrum in O(n d).
"""
from __future__ import annotations

import numpy as np

from .._jit import jit


@jit
def discrete_terms(lam, nu0, lr, batch, noise_var, n, F, K):
    """F_k and K_k (k < n) of the discrete equation into F, K (module docstring)."""
    F[:] = 0.5 * noise_var
    K[:] = 0.0
    for j in range(lam.size):
        c = (1.0 - lr * lam[j]) ** 2 + lr * lr * lam[j] * lam[j] / batch
        f = 0.5 * lam[j] * nu0[j]
        k = lr * lr * lam[j] * lam[j] / batch
        for m in range(n):
            F[m] += f
            K[m] += k
            f *= c
            k *= c


def discrete_terms_numpy(lam, nu0, lr, batch, noise_var, n):
    """Twin of `discrete_terms`: (F, K) from powers c^m."""
    c = (1.0 - lr * lam) ** 2 + lr * lr * lam * lam / batch
    powers = c[None, :] ** np.arange(n)[:, None]
    return 0.5 * noise_var + 0.5 * powers @ (lam * nu0), (lr * lr / batch) * powers @ (lam * lam)


@jit
def continuous_terms(lam, nu0, lr, batch, noise_var, times, F, K):
    """F(t) and K(t) of the continuous equation at the given times into F, K (module docstring)."""
    F[:] = 0.5 * noise_var
    K[:] = 0.0
    for j in range(lam.size):
        for m in range(times.size):
            e = np.exp(-2.0 * lam[j] * times[m])
            F[m] += 0.5 * lam[j] * nu0[j] * e
            K[m] += lr / batch * lam[j] * lam[j] * e


@jit
def solve_discrete(F, K, R):
    """R_k = F_k + sum_{s<k} K_{k-1-s} R_s into R (overflow gives inf: a diverging run)."""
    for k in range(F.size):
        acc = F[k]
        for s in range(k):
            acc += K[k - 1 - s] * R[s]
        R[k] = acc


def solve_discrete_numpy(F, K):
    """Twin of `solve_discrete` (one dot product per step)."""
    R = np.empty_like(F)
    for k in range(len(F)):
        R[k] = F[k] + R[:k] @ K[k - 1::-1] if k else F[0]
    return R


@jit
def solve_trapezoid(F, K, h, R):
    """R(t_n) on t_n = n h by the trapezoidal rule:
    R_n (1 - h K_0 / 2) = F_n + h (K_n R_0 / 2 + sum_{m=1}^{n-1} K_{n-m} R_m)."""
    R[0] = F[0]
    for n in range(1, F.size):
        acc = 0.5 * K[n] * R[0]
        for m in range(1, n):
            acc += K[n - m] * R[m]
        R[n] = (F[n] + h * acc) / (1.0 - 0.5 * h * K[0])


def solve_trapezoid_numpy(F, K, h):
    """Twin of `solve_trapezoid`."""
    R = np.empty_like(F)
    R[0] = F[0]
    for n in range(1, len(F)):
        R[n] = (F[n] + h * (0.5 * K[n] * R[0] + R[1:n] @ K[n - 1:0:-1])) / (1.0 - 0.5 * h * K[0])
    return R
