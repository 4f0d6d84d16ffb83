"""The adaptive Runge–Kutta loop of `rk.integrate`, compiled (Numba), for the deep-linear gradient flows.

One kernel, parameterized by data: the Butcher tableau enters as arrays (A, b, error weights b - b_hat, c,
dense-output matrix P) read from `rk.TABLEAUS`, the right-hand side as an integer code with the problem data
as float64/int64 arrays, so every tableau of `rk.TABLEAUS` runs through one compiled signature. Initial step,
error norm, step-size rule, fixed steps, dense output (Hermite without P), failure and divergence handling are
those of `rk.integrate` (Hairer, Nørsett & Wanner, "Solving ODEs I", sec. II.4), statement for statement, so
the two take the same steps and agree to rounding; `rk.integrate` with the NumPy right-hand sides of
`deep_linear.flows` (`EndToEndFlow.rhs`, `FactorFlow.rhs`: the readable formulas) is this kernel's twin in tests.
One difference: a non-finite W_e gives a NaN right-hand side here (the step control then reports the
divergence) where NumPy's SVD would raise.

Right-hand sides (codes, `RHS`), data X (n, d_in), Y (n, d_out), fpar = [p, weight_decay]:
  "single-output" (0)  dw/dt = -lambda N w - |w|^{2-2/N} (g + (N-1) u u^T g), u = w/|w|   (Arora, Cohen &
                       Hazan 2018, Claim 2; y = w = W_e^T, d_out = 1); ipar = [N, 1, d_in]
  "end-to-end"    (1)  dW_e/dt = -lambda N W_e - U [(U^T G V) o K] V^T, K_kl = sum_j s_k^{2(j-1)/N}
                       s_l^{2(N-j)/N}, W_e = U diag(s) V^T (their Theorem 1; y = W_e row-major); ipar = [N, d_out, d_in]
  "factors"       (2)  dW_j/dt = -(W_N..W_{j+1})^T G (W_{j-1}..W_1)^T - lambda W_j, the factors row-major one
                       after the other in y; ipar = [N, rows_1, cols_1, ..., rows_N, cols_N]
with G = grad L(W_e) = (1/n) (R o |R|^{p-2})^T X, R = X W_e^T - Y. Matrix products go through one np.dot
signature (C-contiguous 2-D, BLAS) and elementwise work through plain loops: each extra array-expression or
np.dot type costs Numba compile time (cold compile of the whole kernel: ~12-20 s on 2 cores).

The kernel can stop after a given number of steps and resume from its saved state (t, h, y, f(t, y),
counters) without changing a single operation: the driver uses that to call `callback` between chunks.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import rk
from ._jit import jit

RHS = {"single-output": 0, "end-to-end": 1, "factors": 2}
CHUNK = 200   # steps between callbacks

# kernel status codes
_COMPLETE, _PAUSED, _MAX_STEPS, _UNDERFLOW, _DIVERGED = 0, 1, 2, 3, 4
# state (float64): t, h, time named in a failure message; counters (int64): k_out, n_steps, n_rejected, n_eval
_T, _H, _T_FAIL = 0, 1, 2
_K_OUT, _STEPS, _REJECTED, _EVALS = 0, 1, 2, 3


@jit
def _mm(a, b):
    """a @ b for C-contiguous 2-D arrays: the only np.dot signature in the module (each one costs compile time)."""
    return np.dot(a, b)


@jit
def _t(a):
    """a.T as a new C-contiguous array."""
    out = np.empty((a.shape[1], a.shape[0]))
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j, i] = a[i, j]
    return out


@jit
def _lp_gradient(We, X, Y, p):
    """G = (1/n) (R o |R|^{p-2})^T X, R = X W_e^T - Y: the l_p loss gradient (d_out, d_in)."""
    R = _mm(X, _t(We))
    for i in range(R.shape[0]):
        for k in range(R.shape[1]):
            r = R[i, k] - Y[i, k]
            if p == 2.0:
                R[i, k] = r
            elif p == 4.0:                # the common case; pow() is most of this loop's time
                R[i, k] = r * r * r
            else:
                R[i, k] = r * abs(r) ** (p - 2.0)
    G = _mm(_t(R), X)
    for i in range(G.shape[0]):
        for k in range(G.shape[1]):
            G[i, k] /= X.shape[0]
    return G


@jit
def _single_output(y, X, Y, fpar, ipar, out):
    N, p, wd = ipar[0], fpar[0], fpar[1]
    w = y.reshape((1, y.size))
    g = _lp_gradient(w, X, Y, p)[0]
    norm, ug = 0.0, 0.0
    for k in range(y.size):
        norm += y[k] * y[k]
        ug += y[k] * g[k]
    norm = np.sqrt(norm)
    ug = ug / norm if norm > 0.0 else 0.0          # u^T g
    scale = norm ** (2.0 - 2.0 / N) if norm > 0.0 else (1.0 if N == 1 else 0.0)
    for k in range(y.size):
        v = scale * g[k] if norm == 0.0 else scale * (g[k] + (N - 1) * (y[k] / norm) * ug)
        out[k] = -(v + wd * N * y[k])


@jit
def _end_to_end(y, X, Y, fpar, ipar, out):
    N, d_out, d_in, p, wd = ipar[0], ipar[1], ipar[2], fpar[0], fpar[1]
    We = y.reshape((d_out, d_in))
    if not _all_finite(y):                # LAPACK refuses non-finite input: hand NaN to the step control
        out[:] = np.nan
        return
    G = _lp_gradient(We, X, Y, p)
    U, s, Vt = np.linalg.svd(We)
    U, Vt = _t(_t(U)), _t(_t(Vt))         # C order for _mm
    M = _mm(_mm(_t(U), G), _t(Vt))        # U^T G V
    left, right = np.zeros((d_out, N)), np.zeros((d_in, N))   # s padded with zeros; 0.0 ** 0.0 == 1: the
    for j in range(1, N + 1):                                 # identity factors at j = 1 and j = N
        for k in range(d_out):
            left[k, j - 1] = (s[k] if k < len(s) else 0.0) ** (2.0 * (j - 1) / N)
        for l in range(d_in):
            right[l, j - 1] = (s[l] if l < len(s) else 0.0) ** (2.0 * (N - j) / N)
    K = _mm(left, _t(right))
    for k in range(d_out):
        for l in range(d_in):
            M[k, l] *= K[k, l]
    v = _mm(_mm(U, M), Vt)
    for k in range(d_out):
        for l in range(d_in):
            out[k * d_in + l] = -(v[k, l] + wd * N * We[k, l])


@jit
def _factors(y, X, Y, fpar, ipar, out):
    N, p, wd = ipar[0], fpar[0], fpar[1]
    offsets = np.zeros(N + 1, dtype=np.int64)       # W_j = y[offsets[j]:offsets[j + 1]]
    prod_offsets = np.zeros(N + 1, dtype=np.int64)  # prods[j] = W_j ... W_1 (rows_j, d_in)
    for j in range(N):
        offsets[j + 1] = offsets[j] + ipar[1 + 2 * j] * ipar[2 + 2 * j]
        prod_offsets[j + 1] = prod_offsets[j] + ipar[1 + 2 * j] * X.shape[1]
    prods = np.empty(prod_offsets[N])
    for j in range(N):
        W = y[offsets[j]:offsets[j + 1]].reshape((ipar[1 + 2 * j], ipar[2 + 2 * j]))
        P = W if j == 0 else _mm(W, prods[prod_offsets[j - 1]:prod_offsets[j]].reshape((W.shape[1], X.shape[1])))
        _copy(P.ravel(), prods[prod_offsets[j]:prod_offsets[j + 1]])
    left = _lp_gradient(prods[prod_offsets[N - 1]:].reshape((Y.shape[1], X.shape[1])), X, Y, p)
    for j in range(N - 1, -1, -1):                  # left = (W_N..W_{j+1})^T G
        rows, cols = ipar[1 + 2 * j], ipar[2 + 2 * j]
        W = y[offsets[j]:offsets[j + 1]].reshape((rows, cols))
        grad = left if j == 0 else _mm(left, _t(prods[prod_offsets[j - 1]:prod_offsets[j]].reshape((cols, X.shape[1]))))
        for a in range(rows):
            for k in range(cols):
                out[offsets[j] + a * cols + k] = -(grad[a, k] + wd * W[a, k])
        if j:
            left = _mm(_t(W), left)


@jit
def _rhs(code, y, X, Y, fpar, ipar, out):
    if code == 0:
        _single_output(y, X, Y, fpar, ipar, out)
    elif code == 1:
        _end_to_end(y, X, Y, fpar, ipar, out)
    else:
        _factors(y, X, Y, fpar, ipar, out)


@jit
def _combine(w, K, m, h, y, out):
    """out = y + h sum_{i<m} w_i K_i (a stage, the step, or the dense output)."""
    for k in range(y.size):
        acc = 0.0
        for i in range(m):
            acc += w[i] * K[i, k]
        out[k] = y[k] + h * acc


@jit
def _copy(src, dst):
    """dst[:] = src."""
    for k in range(src.size):
        dst[k] = src[k]


@jit
def _rms(v, scale):
    """sqrt(mean((v / scale)^2))."""
    acc = 0.0
    for k in range(v.size):
        acc += (v[k] / scale[k]) ** 2
    return np.sqrt(acc / v.size)


@jit
def _all_finite(v):
    for x in v:
        if not np.isfinite(x):
            return False
    return True


@jit
def _kernel(A, b, e, c, P, order, expo, fsal, code, X, Y, fpar, ipar, t_eval, rtol, atol, step, max_steps,
            step_limit, out, y, K, state, counters):
    """Advance until t_eval[-1], a failure, or `step_limit` steps in this call (status _PAUSED); the state
    (t, h, y, K[0] = f(t, y), counters) is saved for the next call. step > 0: fixed steps (e unused)."""
    s, m = len(c), len(t_eval)
    adaptive = step <= 0.0
    stage, y_new, f_new = np.empty(y.size), np.empty(y.size), np.empty(y.size)
    t_end = t_eval[-1]
    if counters[_K_OUT] == 0:                       # first call: f(t0, y0) and the initial step
        _copy(y, out[0])
        counters[_K_OUT], counters[_EVALS] = 1, 1
        t = t_eval[0]
        _rhs(code, y, X, Y, fpar, ipar, K[0])
        if adaptive:                                # rk._initial_step
            scale = np.empty(y.size)
            for k in range(y.size):
                scale[k] = atol + rtol * abs(y[k])
            d0, d1 = _rms(y, scale), _rms(K[0], scale)
            h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
            for k in range(y.size):
                stage[k] = y[k] + h0 * K[0, k]
            _rhs(code, stage, X, Y, fpar, ipar, y_new)
            for k in range(y.size):
                y_new[k] -= K[0, k]
            d2 = _rms(y_new, scale) / h0
            h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
            state[_H] = min(100 * h0, h1)
            counters[_EVALS] += 1
        else:
            state[_H] = step
        state[_T] = t
    t, h = state[_T], state[_H]
    k_out = counters[_K_OUT]
    n_steps, n_rejected, n_eval = counters[_STEPS], counters[_REJECTED], counters[_EVALS]
    status, taken, factor = _COMPLETE, 0, 1.0
    while k_out < m and t_end > t:
        while k_out < m and t_eval[k_out] <= t:     # repeated times
            _copy(y, out[k_out])
            k_out += 1
        if k_out == m:
            break
        if taken >= step_limit:
            status = _PAUSED
            break
        if n_steps >= max_steps:
            status = _MAX_STEPS
            state[_T_FAIL] = t
            break
        if t_end - t <= 1e-13 * max(1.0, abs(t_end)):
            break
        h = min(h, t_end - t) if t_end - t > 1.000001 * h else t_end - t
        if h <= 1e-14 * max(1.0, abs(t)):
            status = _UNDERFLOW
            state[_T_FAIL] = t
            break
        for i in range(1, s):
            _combine(A[i], K, i, h, y, stage)
            _rhs(code, stage, X, Y, fpar, ipar, K[i])
        n_eval += s - 1
        _combine(b, K, s, h, y, y_new)
        if adaptive:
            err = 0.0
            for k in range(y.size):
                d = 0.0
                for i in range(s):
                    d += e[i] * K[i, k]
                err += (h * d / (atol + rtol * max(abs(y[k]), abs(y_new[k])))) ** 2
            err = np.sqrt(err / y.size)
            if not np.isfinite(err):
                if not _all_finite(y_new) and h < 1e-10:
                    status = _DIVERGED
                    state[_T_FAIL] = t
                    break
                h *= 0.2
                n_rejected += 1
                continue
            if err > 1.0:
                h *= max(0.2, 0.9 * err ** expo)
                n_rejected += 1
                continue
            factor = 5.0 if err == 0 else min(5.0, max(0.2, 0.9 * err ** expo))
        elif not _all_finite(y_new):
            status = _DIVERGED
            state[_T_FAIL] = t + h
            break
        t_new = t + h
        if fsal:
            _copy(K[s - 1], f_new)
        else:
            _rhs(code, y_new, X, Y, fpar, ipar, f_new)
            n_eval += 1
        while k_out < m and t_eval[k_out] <= t_new:
            theta = (t_eval[k_out] - t) / h
            if theta == 1.0:
                _copy(y_new, out[k_out])
            elif P.shape[1] > 0:                    # the tableau's dense output
                q = np.zeros(s)
                for i in range(s):
                    power = 1.0
                    for j in range(P.shape[1]):
                        power *= theta
                        q[i] += P[i, j] * power
                _combine(q, K, s, h, y, out[k_out])
            else:                                   # cubic Hermite
                t2, t3 = theta * theta, theta * theta * theta
                h00, h10, h01, h11 = 2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + theta, -2 * t3 + 3 * t2, t3 - t2
                for k in range(y.size):
                    out[k_out, k] = h00 * y[k] + h10 * h * K[0, k] + h01 * y_new[k] + h11 * h * f_new[k]
            k_out += 1
        n_steps += 1
        taken += 1
        t = t_new
        _copy(y_new, y)
        _copy(f_new, K[0])
        h = h * factor if adaptive else step
    if status == _COMPLETE:
        for k in range(k_out, m):                   # times equal to the last one reached
            _copy(y, out[k])
        k_out = m
    state[_T], state[_H] = t, h
    counters[_K_OUT], counters[_STEPS], counters[_REJECTED], counters[_EVALS] = k_out, n_steps, n_rejected, n_eval
    return status


def integrate(rhs: str, y0: np.ndarray, t_eval, X: np.ndarray, Y: np.ndarray, fpar, ipar, *,
              method: str = "dopri5", rtol: float = 1e-8, atol: float = 1e-10, step: float | None = None,
              max_steps: int = 1_000_000, callback: Callable[[float], None] | None = None) -> rk.Solution:
    """`rk.integrate` for the right-hand side named `rhs` (a key of `RHS`; data X, Y, fpar = [p, weight_decay],
    ipar as in the module docstring), compiled. Same arguments and result; `callback(t)` is called after every
    `CHUNK` steps and at the end instead of after every step."""
    tab, t_eval = rk.check_arguments(method, t_eval, step)
    if rhs not in RHS:
        raise ValueError(f"unknown right-hand side {rhs!r} (valid: {', '.join(RHS)})")
    y = np.array(y0, dtype=np.float64).ravel()
    n, s = y.size, tab.stages
    e = tab.b - tab.b_hat if tab.adaptive else np.zeros(s)
    P = tab.P if tab.P is not None else np.zeros((s, 0))
    expo = -1.0 / (tab.error_order + 1) if tab.adaptive else 0.0
    out, K = np.empty((len(t_eval), n)), np.empty((s, n))
    state, counters = np.zeros(3), np.zeros(4, dtype=np.int64)
    args = (tab.A, tab.b, e, tab.c, P, np.int64(tab.order), expo, tab.fsal, np.int64(RHS[rhs]),
            np.ascontiguousarray(X, np.float64), np.ascontiguousarray(Y, np.float64),
            np.asarray(fpar, np.float64), np.asarray(ipar, np.int64), t_eval, float(rtol), float(atol),
            float(step) if step is not None else 0.0, np.int64(max_steps),
            np.int64(CHUNK if callback is not None else max_steps + 1))
    while True:
        status = _kernel(*args, out, y, K, state, counters)
        if callback is not None:
            callback(float(state[_T]))
        if status != _PAUSED:
            break
    k_out, n_steps, n_rejected, n_eval = (int(x) for x in counters)
    t = state[_T_FAIL]
    if status == _COMPLETE:
        return rk.Solution(t_eval, out, "complete", "", n_steps, n_rejected, n_eval)
    status_name, message = {_MAX_STEPS: ("failed", f"max_steps={max_steps} reached at t={t:.6g}"),
                            _UNDERFLOW: ("failed", f"step size underflow at t={t:.6g}"),
                            _DIVERGED: ("diverged", f"non-finite state at t={t:.6g}")}[status]
    return rk.Solution(t_eval, out[:k_out], status_name, message, n_steps, n_rejected, n_eval)
