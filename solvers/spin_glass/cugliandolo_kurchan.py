"""The Cugliandolo-Kurchan equations of Langevin dynamics in spherical mixed p-spin models, on a two-time grid.

For ds/dt = -grad H - z(t) s + eta, <eta eta> = 2 T delta, |s|^2 = N, E[H(s) H(s')] = N xi(s.s'/N), and a
random start (C(t, 0) -> 0 at t = 0), the N -> infinity correlation C(t,t') = s(t).s(t')/N and response
R(t,t') = (1/N) sum_i ds_i(t)/dh_i(t') obey, for t > t' (Cugliandolo & Kurchan 1993, eqs. 2.14-2.16 with
their xi(q) = q^p/2 replaced by a general xi; Crisanti, Horner & Sommers 1993):
    dC(t,t')/dt = -z(t) C + int_0^t' xi'(C(t,s)) R(t',s) ds + int_0^t xi''(C(t,s)) R(t,s) C(s,t') ds
    dR(t,t')/dt = -z(t) R + int_t'^t xi''(C(t,s)) R(t,s) R(s,t') ds,          C(t,t) = 1, R(t^+,t) = 1
    z(t) = T + int_0^t [xi'(C(t,s)) + xi''(C(t,s)) C(t,s)] R(t,s) ds
    e(t) = E[H]/N = -int_0^t xi'(C(t,s)) R(t,s) ds
Scheme: uniform grid t_i = i h; rows of the lower triangle advanced by Heun's predictor-corrector (explicit
Euler, then the trapezoidal rule in t) with every s-integral by the trapezoidal rule: second order in h.
Cost O(n^3) for n steps, memory two (n+1)^2 arrays.
"""
from __future__ import annotations

import numpy as np

from .._jit import jit


@jit
def _xi_derivatives(q, ps, coef):
    d1 = 0.0
    d2 = 0.0
    for m in range(len(ps)):
        p = ps[m]
        d1 += coef[m] * p * q ** (p - 1)
        d2 += coef[m] * p * (p - 1) * q ** (p - 2)
    return d1, d2


@jit
def _row_rates(C, R, i, h, T, ps, coef, xp, xpp, FC, FR):
    """Fill xp, xpp (xi', xi'' on row i) and the rates FC[j], FR[j] = d/dt C, R at (t_i, t_j), j <= i;
    return z(t_i) and e(t_i)."""
    for s in range(i + 1):
        xp[s], xpp[s] = _xi_derivatives(C[i, s], ps, coef)
    z = 0.0
    e = 0.0
    for s in range(i + 1):
        w = h if 0 < s < i else 0.5 * h
        z += w * (xp[s] + xpp[s] * C[i, s]) * R[i, s]
        e -= w * xp[s] * R[i, s]
    if i == 0:
        z = 0.0
        e = 0.0
    z += T
    for j in range(i + 1):
        a1 = 0.0
        for s in range(j + 1):
            w = h if 0 < s < j else 0.5 * h
            a1 += w * xp[s] * R[j, s]
        if j == 0:
            a1 = 0.0
        a2 = 0.0
        ar = 0.0
        for s in range(i + 1):
            w = h if 0 < s < i else 0.5 * h
            c_sj = C[s, j] if s >= j else C[j, s]
            a2 += w * xpp[s] * R[i, s] * c_sj
            if s >= j:
                wr = h if j < s < i else 0.5 * h
                ar += wr * xpp[s] * R[i, s] * R[s, j]
        if i == 0:
            a2 = 0.0
        if i == j:
            ar = 0.0
        FC[j] = -z * C[i, j] + a1 + a2
        FR[j] = -z * R[i, j] + ar
    return z, e


@jit
def ck_integrate(n, h, T, ps, coef):
    """(C, R, z, e) on t_i = i h, i = 0..n (lower triangles of C and R filled). Heun in t, trapezoid in s."""
    C = np.zeros((n + 1, n + 1))
    R = np.zeros((n + 1, n + 1))
    z = np.zeros(n + 1)
    e = np.zeros(n + 1)
    xp = np.zeros(n + 1)
    xpp = np.zeros(n + 1)
    FC = np.zeros(n + 1)
    FR = np.zeros(n + 1)
    GC = np.zeros(n + 1)
    GR = np.zeros(n + 1)
    C[0, 0] = 1.0
    R[0, 0] = 1.0
    z[0], e[0] = _row_rates(C, R, 0, h, T, ps, coef, xp, xpp, FC, FR)
    for i in range(n):
        for j in range(i + 1):
            C[i + 1, j] = C[i, j] + h * FC[j]
            R[i + 1, j] = R[i, j] + h * FR[j]
        C[i + 1, i + 1] = 1.0
        R[i + 1, i + 1] = 1.0
        _row_rates(C, R, i + 1, h, T, ps, coef, xp, xpp, GC, GR)
        for j in range(i + 1):
            C[i + 1, j] = C[i, j] + 0.5 * h * (FC[j] + GC[j])
            R[i + 1, j] = R[i, j] + 0.5 * h * (FR[j] + GR[j])
        z[i + 1], e[i + 1] = _row_rates(C, R, i + 1, h, T, ps, coef, xp, xpp, FC, FR)
    return C, R, z, e


def ck_integrate_numpy(n: int, h: float, T: float, ps: np.ndarray, coef: np.ndarray):
    """Plain NumPy twin of `ck_integrate` (same scheme, each row's integrals as matrix-vector products)."""
    ps = np.asarray(ps, np.int64)
    coef = np.asarray(coef, np.float64)
    C = np.zeros((n + 1, n + 1))
    R = np.zeros((n + 1, n + 1))
    z = np.zeros(n + 1)
    e = np.zeros(n + 1)
    idx = np.arange(n + 1)

    def trapezoid(m):  # weights of int_0^{t_m} on nodes 0..m
        w = np.full(m + 1, h)
        w[0] = w[m] = 0.5 * h
        return w if m > 0 else np.zeros(1)

    def rates(i):
        q = C[i, :i + 1]
        xp = np.sum(coef * ps * q[:, None] ** (ps - 1), axis=1)
        xpp = np.sum(coef * ps * (ps - 1) * q[:, None] ** (ps - 2), axis=1)
        w = trapezoid(i)
        zi = T + w @ ((xp + xpp * q) * R[i, :i + 1])
        ei = -w @ (xp * R[i, :i + 1])
        Rt = R[:i + 1, :i + 1]
        lower = idx[:i + 1, None] >= idx[None, :i + 1]
        Wj = np.where(lower, h, 0.0)                      # row j: trapezoid weights of int_0^{t_j}
        Wj[:, 0] *= 0.5
        Wj[idx[:i + 1], idx[:i + 1]] *= 0.5
        Wj[0, 0] = 0.0
        a1 = (Wj * Rt) @ xp
        Csym = np.where(lower, C[:i + 1, :i + 1], C[:i + 1, :i + 1].T)
        a2 = (w * xpp * R[i, :i + 1]) @ Csym
        Ws = np.where(lower, h, 0.0)                      # column j: trapezoid weights of int_{t_j}^{t_i}
        Ws[idx[:i + 1], idx[:i + 1]] *= 0.5
        Ws[i, :] *= 0.5
        Ws[i, i] = 0.0
        ar = (xpp * R[i, :i + 1]) @ (Ws * Rt)
        return zi, ei, -zi * C[i, :i + 1] + a1 + a2, -zi * R[i, :i + 1] + ar

    C[0, 0] = R[0, 0] = 1.0
    z[0], e[0], FC, FR = rates(0)
    for i in range(n):
        C[i + 1, :i + 1] = C[i, :i + 1] + h * FC
        R[i + 1, :i + 1] = R[i, :i + 1] + h * FR
        C[i + 1, i + 1] = R[i + 1, i + 1] = 1.0
        _, _, GC, GR = rates(i + 1)
        C[i + 1, :i + 1] = C[i, :i + 1] + 0.5 * h * (FC + GC[:i + 1])
        R[i + 1, :i + 1] = R[i, :i + 1] + 0.5 * h * (FR + GR[:i + 1])
        z[i + 1], e[i + 1], FC, FR = rates(i + 1)
    return C, R, z, e
