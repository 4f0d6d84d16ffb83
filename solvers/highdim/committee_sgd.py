"""Online teacher-student SGD on soft committee machines: S students at once, each with its own stream.

Every step each student draws a fresh input x ~ N(0, I_N) and label noise zeta ~ N(0, 1) from its own
xoshiro256++ stream (`solvers.rng`: N normals for x, then one for zeta), and takes
    lambda = W x / sqrt N,  nu = W* x / sqrt N,  Delta = v* . g(nu) + sigma zeta - v . g(lambda),
    w_k <- w_k + (lr / sqrt N) v_k g'(lambda_k) Delta x,   v_k <- v_k + (lr_v / N) g(lambda_k) Delta
with g(x) = erf(x / sqrt 2), g'(x) = sqrt(2/pi) exp(-x^2/2): SGD on (1/2)(f - y)^2 (Saad & Solla 1995;
Goldt et al. 2019, eq. (4)). The step is the ODE's dt = 1/N (see `committee_ode`). Students run in parallel
(prange); results depend only on the seed and the student index, not on threads or chunking.
`advance_numpy` is the kernel's twin (the same draws, NumPy array expressions).
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from .._jit import jit
from ..rng import next_normal, normals

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT2 = 1.0 / math.sqrt(2.0)


@jit(inline="always")
def _dot(a, b):
    """sum_i a_i b_i with eight interleaved partial sums (a fixed order: independent of threads and chunking)."""
    n = a.size
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    q = n - n % 8
    for i in range(0, q, 8):
        s0 += a[i] * b[i]
        s1 += a[i + 1] * b[i + 1]
        s2 += a[i + 2] * b[i + 2]
        s3 += a[i + 3] * b[i + 3]
        s4 += a[i + 4] * b[i + 4]
        s5 += a[i + 5] * b[i + 5]
        s6 += a[i + 6] * b[i + 6]
        s7 += a[i + 7] * b[i + 7]
    for i in range(q, n):
        s0 += a[i] * b[i]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@jit
def _student(W, v, Wstar, vstar, state, lr, lr_v, sigma, n_steps, x, pre):
    """n_steps of one student (W (K, N), v (K), state (4,)); scratch x (N,), pre-activations pre (K + M,)."""
    K, N = W.shape
    M = Wstar.shape[0]
    scale = 1.0 / math.sqrt(N)
    st = (state[0], state[1], state[2], state[3])
    for _ in range(n_steps):
        for i in range(N):
            x[i], st = next_normal(st)
        for k in range(K):
            pre[k] = _dot(W[k], x)
        for m in range(M):
            pre[K + m] = _dot(Wstar[m], x)
        zeta, st = next_normal(st)
        delta = sigma * zeta
        for m in range(M):
            delta += vstar[m] * math.erf(pre[K + m] * scale * INV_SQRT2)
        for k in range(K):
            pre[k] *= scale
            delta -= v[k] * math.erf(pre[k] * INV_SQRT2)
        for k in range(K):
            lam = pre[k]
            coef = lr * scale * v[k] * SQRT_2_OVER_PI * math.exp(-0.5 * lam * lam) * delta
            for i in range(N):
                W[k, i] += coef * x[i]
            v[k] += lr_v / N * math.erf(lam * INV_SQRT2) * delta
    state[0], state[1], state[2], state[3] = st


@jit(parallel=True)
def advance(W, v, Wstar, vstar, states, lr, lr_v, sigma, n_steps):
    """n_steps of online SGD for every student: W (S, K, N), v (S, K), states (S, 4) updated in place."""
    S, K, N = W.shape
    for s in prange(S):
        _student(W[s], v[s], Wstar, vstar, states[s], lr, lr_v, sigma, n_steps, np.empty(N),
                 np.empty(K + Wstar.shape[0]))


@jit(parallel=True)
def order_parameters(W, Wstar, Q, R):
    """Q = W W^T / N (S, K, K) and R = W W*^T / N (S, K, M) by plain loops (no BLAS: thread-count independent)."""
    S, K, N = W.shape
    M = Wstar.shape[0]
    for s in prange(S):
        for k in range(K):
            for l in range(k, K):
                acc = 0.0
                for i in range(N):
                    acc += W[s, k, i] * W[s, l, i]
                Q[s, k, l] = acc / N
                Q[s, l, k] = acc / N
            for m in range(M):
                acc = 0.0
                for i in range(N):
                    acc += W[s, k, i] * Wstar[m, i]
                R[s, k, m] = acc / N


def advance_numpy(W, v, Wstar, vstar, states, lr, lr_v, sigma, n_steps) -> None:
    """Twin of `advance` (same streams, same update) in NumPy, all students per step; in place."""
    from scipy.special import erf
    S, K, N = W.shape
    for _ in range(n_steps):
        draws = normals(states, N + 1)
        x, zeta = draws[:, :N], draws[:, N]
        lam = np.einsum("skn,sn->sk", W, x) / math.sqrt(N)
        nu = x @ Wstar.T / math.sqrt(N)
        delta = erf(nu / math.sqrt(2)) @ vstar + sigma * zeta - np.sum(v * erf(lam / math.sqrt(2)), axis=1)
        gprime = math.sqrt(2 / math.pi) * np.exp(-lam ** 2 / 2)
        W += (lr / math.sqrt(N)) * (v * gprime * delta[:, None])[:, :, None] * x[:, None, :]
        v += lr_v / N * erf(lam / math.sqrt(2)) * delta[:, None]
