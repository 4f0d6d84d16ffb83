"""Order-parameter ODEs of online SGD on soft committee machines, g(x) = erf(x / sqrt 2).

Teacher y = sum_m v*_m g(nu_m) + sigma zeta, student f = sum_k v_k g(lambda_k), with pre-activations
lambda_k = w_k . x / sqrt(N), nu_m = w*_m . x / sqrt(N), x ~ N(0, I_N), zeta ~ N(0, 1). Online SGD on
(1/2)(f - y)^2 with a fresh sample every step:
    w_k <- w_k + (lr / sqrt N) v_k g'(lambda_k) Delta x,   v_k <- v_k + (lr_v / N) g(lambda_k) Delta,
    Delta = y - f.
Order parameters Q = W W^T / N, R = W W*^T / N, T = W* W*^T / N and v obey, in t = steps / N as N -> inf
(Saad & Solla, PRE 52, 4225 (1995), eqs. (9)-(10); Biehl & Schwarze, J. Phys. A 28, 643 (1995); Goldt,
Advani, Saxe, Krzakala & Zdeborova, NeurIPS 2019, eqs. (10)-(12) with the lr^2 and noise terms):
    dR_in/dt = lr v_i sum_a u_a I3(i, n, a)
    dQ_ik/dt = lr v_i sum_a u_a I3(i, k, a) + lr v_k sum_a u_a I3(k, i, a)
               + lr^2 v_i v_k [sum_ab u_a u_b I4(i, k, a, b) + sigma^2 J2(i, k)]
    dv_i/dt  = lr_v sum_a u_a I2(i, a)
where a, b run over the K student units (u_a = -v_a) and the M teacher units (u_a = v*_a), so that
Delta = sum_a u_a g(z_a) + sigma zeta, and with C the joint covariance of z = (lambda, nu) = [[Q, R], [R^T, T]]:
    I2(a, b)       = E g(z_a) g(z_b)          = (2/pi) arcsin(C_ab / sqrt((1 + C_aa)(1 + C_bb)))
    J2(a, b)       = E g'(z_a) g'(z_b)        = (2/pi) / sqrt((1 + C_aa)(1 + C_bb) - C_ab^2)
    I3(a, b, c)    = E g'(z_a) z_b g(z_c)     = (2/pi) (C_bc (1 + C_aa) - C_ab C_ac) / ((1 + C_aa) sqrt(L3)),
                     L3 = (1 + C_aa)(1 + C_cc) - C_ac^2
    I4(a, b, c, d) = E g'(z_a) g'(z_b) g(z_c) g(z_d) = (4/pi^2) arcsin(L0 / sqrt(L1 L2)) / sqrt(L4),
                     L4 = (1 + C_aa)(1 + C_bb) - C_ab^2,
                     L0 = L4 C_cd - C_bc C_bd (1 + C_aa) - C_ac C_ad (1 + C_bb) + C_ab C_ac C_bd + C_ab C_ad C_bc,
                     L1 = L4 (1 + C_cc) - C_bc^2 (1 + C_aa) - C_ac^2 (1 + C_bb) + 2 C_ab C_ac C_bc,
                     L2 = L4 (1 + C_dd) - C_bd^2 (1 + C_aa) - C_ad^2 (1 + C_bb) + 2 C_ab C_ad C_bd
(Saad & Solla 1995, appendix; Goldt et al. 2019, supplementary sec. A). The generalization error is
    eps_g = (1/2) E (f - y + sigma zeta)^2 = (1/2) sum_ab u_a u_b I2(a, b)      (Saad & Solla 1995, eq. (5)).

State of one student (`layout`): Q (K x K, row-major, full), R (K x M, row-major), v (K); S students are
stacked one after the other. `rhs` is compiled (loops, scalar closed forms); `rhs_numpy` is its twin (the
covariance matrix and the averages as NumPy array expressions).
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import jit

TWO_OVER_PI = 2.0 / math.pi


def layout(K: int, M: int) -> int:
    """Length of one student's state: K*K (Q) + K*M (R) + K (v)."""
    return K * K + K * M + K


@jit(inline="always")
def _i2(caa, cbb, cab):
    return TWO_OVER_PI * math.asin(cab / math.sqrt((1.0 + caa) * (1.0 + cbb)))


@jit(inline="always")
def _j2(caa, cbb, cab):
    return TWO_OVER_PI / math.sqrt((1.0 + caa) * (1.0 + cbb) - cab * cab)


@jit(inline="always")
def _i3(C, a, b, c):
    l3 = (1.0 + C[a, a]) * (1.0 + C[c, c]) - C[a, c] * C[a, c]
    return TWO_OVER_PI * (C[b, c] * (1.0 + C[a, a]) - C[a, b] * C[a, c]) / ((1.0 + C[a, a]) * math.sqrt(l3))


@jit(inline="always")
def _i4(C, a, b, c, d):
    l4 = (1.0 + C[a, a]) * (1.0 + C[b, b]) - C[a, b] * C[a, b]
    l0 = (l4 * C[c, d] - C[b, c] * C[b, d] * (1.0 + C[a, a]) - C[a, c] * C[a, d] * (1.0 + C[b, b])
          + C[a, b] * C[a, c] * C[b, d] + C[a, b] * C[a, d] * C[b, c])
    l1 = (l4 * (1.0 + C[c, c]) - C[b, c] * C[b, c] * (1.0 + C[a, a]) - C[a, c] * C[a, c] * (1.0 + C[b, b])
          + 2.0 * C[a, b] * C[a, c] * C[b, c])
    l2 = (l4 * (1.0 + C[d, d]) - C[b, d] * C[b, d] * (1.0 + C[a, a]) - C[a, d] * C[a, d] * (1.0 + C[b, b])
          + 2.0 * C[a, b] * C[a, d] * C[b, d])
    return TWO_OVER_PI * TWO_OVER_PI * math.asin(l0 / math.sqrt(l1 * l2)) / math.sqrt(l4)


@jit
def rhs(y, T, vstar, lr, lr_v, noise_var, K, M, out):
    """d/dt of the stacked states y (S * layout(K, M)) into out; equations in the module docstring."""
    n = K + M
    size = K * K + K * M + K
    C = np.empty((n, n))
    u = np.empty(n)
    for s in range(y.size // size):
        base = s * size
        for i in range(K):
            for k in range(K):
                C[i, k] = y[base + i * K + k]
            for m in range(M):
                C[i, K + m] = y[base + K * K + i * M + m]
                C[K + m, i] = C[i, K + m]
            u[i] = -y[base + K * K + K * M + i]
        for m in range(M):
            for l in range(M):
                C[K + m, K + l] = T[m, l]
            u[K + m] = vstar[m]
        for i in range(K):
            vi = -u[i]
            for k in range(K):
                vk = -u[k]
                first = 0.0
                for a in range(n):
                    first += u[a] * (vi * _i3(C, i, k, a) + vk * _i3(C, k, i, a))
                second = noise_var * _j2(C[i, i], C[k, k], C[i, k])
                for a in range(n):
                    for b in range(n):
                        second += u[a] * u[b] * _i4(C, i, k, a, b)
                out[base + i * K + k] = lr * first + lr * lr * vi * vk * second
            for m in range(M):
                acc = 0.0
                for a in range(n):
                    acc += u[a] * _i3(C, i, K + m, a)
                out[base + K * K + i * M + m] = lr * vi * acc
            acc = 0.0
            for a in range(n):
                acc += u[a] * _i2(C[i, i], C[a, a], C[i, a])
            out[base + K * K + K * M + i] = lr_v * acc


def unpack(y: np.ndarray, K: int, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stacked states (..., S * layout) -> Q (..., S, K, K), R (..., S, K, M), v (..., S, K)."""
    y = np.asarray(y, dtype=np.float64)
    y = y.reshape(y.shape[:-1] + (-1, layout(K, M)))
    Q = y[..., :K * K].reshape(y.shape[:-1] + (K, K))
    R = y[..., K * K:K * K + K * M].reshape(y.shape[:-1] + (K, M))
    return Q, R, y[..., K * K + K * M:]


def pack(Q: np.ndarray, R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Q (S, K, K), R (S, K, M), v (S, K) -> the stacked state (S * layout)."""
    Q, R, v = (np.asarray(a, dtype=np.float64) for a in (Q, R, v))
    S = Q.shape[0]
    return np.concatenate([Q.reshape(S, -1), R.reshape(S, -1), v.reshape(S, -1)], axis=1).ravel()


def covariance(Q: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """C = [[Q, R], [R^T, T]] (..., K+M, K+M): the covariance of (lambda, nu)."""
    T = np.broadcast_to(T, Q.shape[:-2] + T.shape)
    top = np.concatenate([Q, R], axis=-1)
    bottom = np.concatenate([np.swapaxes(R, -1, -2), T], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def averages(C: np.ndarray) -> dict[str, np.ndarray]:
    """Every I2[a, b], J2[a, b], I3[a, b, c], I4[a, b, c, d] of covariances C (..., n, n), as arrays."""
    d = np.diagonal(C, axis1=-2, axis2=-1)
    one = 1.0 + d
    oa, ob = one[..., :, None], one[..., None, :]
    out = {"I2": TWO_OVER_PI * np.arcsin(C / np.sqrt(oa * ob)),
           "J2": TWO_OVER_PI / np.sqrt(oa * ob - C * C)}
    A = (Ellipsis, slice(None), None, None)                     # index helpers for axes a and c
    Cc = (Ellipsis, None, None, slice(None))
    Caa, Ccc = one[A], one[Cc]
    Cab, Cac, Cbc = C[..., :, :, None], C[..., :, None, :], C[..., None, :, :]
    l3 = Caa * Ccc - Cac * Cac
    out["I3"] = TWO_OVER_PI * (Cbc * Caa - Cab * Cac) / (Caa * np.sqrt(l3))
    e = (Ellipsis, slice(None), slice(None), None, None)
    oa4, ob4 = one[(Ellipsis, slice(None), None, None, None)], one[(Ellipsis, None, slice(None), None, None)]
    oc4, od4 = one[(Ellipsis, None, None, slice(None), None)], one[(Ellipsis, None, None, None, slice(None))]
    Cab4 = C[e]
    Cac4, Cad4 = C[..., :, None, :, None], C[..., :, None, None, :]
    Cbc4, Cbd4 = C[..., None, :, :, None], C[..., None, :, None, :]
    Ccd4 = C[..., None, None, :, :]
    l4 = oa4 * ob4 - Cab4 ** 2
    l0 = l4 * Ccd4 - Cbc4 * Cbd4 * oa4 - Cac4 * Cad4 * ob4 + Cab4 * Cac4 * Cbd4 + Cab4 * Cad4 * Cbc4
    l1 = l4 * oc4 - Cbc4 ** 2 * oa4 - Cac4 ** 2 * ob4 + 2 * Cab4 * Cac4 * Cbc4
    l2 = l4 * od4 - Cbd4 ** 2 * oa4 - Cad4 ** 2 * ob4 + 2 * Cab4 * Cad4 * Cbd4
    out["I4"] = TWO_OVER_PI ** 2 * np.arcsin(l0 / np.sqrt(l1 * l2)) / np.sqrt(l4)
    return out


def weights(v: np.ndarray, vstar: np.ndarray) -> np.ndarray:
    """u = (-v, v*) (..., K+M): Delta = sum_a u_a g(z_a) + noise."""
    v = np.asarray(v, dtype=np.float64)
    return np.concatenate([-v, np.broadcast_to(vstar, v.shape[:-1] + np.shape(vstar))], axis=-1)


def rhs_numpy(y, T, vstar, lr, lr_v, noise_var, K, M) -> np.ndarray:
    """NumPy twin of `rhs`: the same equations as array expressions over all students at once."""
    Q, R, v = unpack(y, K, M)
    av = averages(covariance(Q, R, T))
    u = weights(v, vstar)
    drift = np.einsum("sa,sika->sik", u, av["I3"][:, :K])              # sum_a u_a I3(i, b, a), i < K, every b
    dQ = lr * (v[:, :, None] * drift[:, :, :K] + (v[:, :, None] * drift[:, :, :K]).transpose(0, 2, 1))
    quad = np.einsum("sa,sb,sikab->sik", u, u, av["I4"][:, :K, :K]) + noise_var * av["J2"][:, :K, :K]
    dQ += lr * lr * v[:, :, None] * v[:, None, :] * quad
    dR = lr * v[:, :, None] * drift[:, :, K:]
    dv = lr_v * np.einsum("sa,sia->si", u, av["I2"][:, :K, :])
    return pack(dQ, dR, dv)


def generalization_error(Q: np.ndarray, R: np.ndarray, T: np.ndarray, v: np.ndarray,
                         vstar: np.ndarray) -> np.ndarray:
    """eps_g = (1/2) sum_ab u_a u_b I2(a, b) = (1/pi) [sum_ik v_i v_k arcsin(Q_ik / sqrt((1+Q_ii)(1+Q_kk)))
    + sum_nm v*_n v*_m arcsin(T_nm / ...) - 2 sum_in v_i v*_n arcsin(R_in / sqrt((1+Q_ii)(1+T_nn)))]
    (Saad & Solla 1995, eq. (5)), for Q (..., K, K), R (..., K, M), v (..., K); the noise-free part of the
    expected loss (1/2) E (f - y)^2 = eps_g + sigma^2 / 2."""
    C = covariance(np.asarray(Q, float), np.asarray(R, float), np.asarray(T, float))
    d = np.diagonal(C, axis1=-2, axis2=-1)
    I2 = TWO_OVER_PI * np.arcsin(C / np.sqrt((1.0 + d[..., :, None]) * (1.0 + d[..., None, :])))
    u = weights(v, vstar)
    return 0.5 * np.einsum("...a,...ab,...b->...", u, I2, u)
