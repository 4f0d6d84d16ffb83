"""Landscape kernels (value, gradient, Hessian-vector product), selected by an integer code so one compiled
stepper serves every landscape.

Numba keys its on-disk cache on argument types, and a jitted function passed as an argument is typed by its
identity: every process would recompile. An integer code keeps the stepper cacheable; a new landscape is a
new code, two small kernels here, and its readable NumPy twin in `sgdsim.particles.landscapes` (tested equal).

Every kernel has the signature (x, theta, data, ...) with x one particle (d,), theta the landscape's
parameters and data its finite-sum rows (N, k) (empty for smooth landscapes).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from .._jit import jit

QUADRATIC = 0       # f = 1/2 sum_k h_k x_k^2                         theta = h (d,)
DOUBLE_WELL = 1     # f = c sum_k (x_k^2 - 1)^2                        theta = [c]
STRICT_SADDLE = 2   # f = x_1^4/4 - x_1^2/2 + |x_rest|^2/2            theta = []
SHARP_WIDE = 3      # f = -sum_j a_j exp(-(x_1-m_j)^2/(2 s_j^2)) + c x_1^2 + |x_rest|^2/2
                    #                                                   theta = [a1, m1, s1, a2, m2, s2, c]
LEAST_SQUARES = 4   # f_i = 1/2 (a_i.x - b_i)^2, data = [A | b]       theta = []
LP_REGRESSION = 5   # f_i = |a_i.x - b_i|^p / p, data = [A | b]       theta = [p]
RIPPLE = 6          # f = c |x|^2 / 2 + a sum_k (1 - cos(2 pi x_k / w))  theta = [c, a, w]
RING = 7            # f = (|x|^2 - 1)^2 / 4: a ring (sphere) valley       theta = []

FINITE_SUM_CODES = (LEAST_SQUARES, LP_REGRESSION)


@jit(inline="always")
def separable_grad(code, xk, theta, k):
    """d f / d x_k for the landscapes that are sums over coordinates (QUADRATIC, DOUBLE_WELL)."""
    if code == QUADRATIC:
        return theta[k] * xk
    return 4.0 * theta[0] * xk * (xk * xk - 1.0)


@jit(inline="always")
def _sharp_wide_1d(x1, theta):
    value = theta[6] * x1 * x1
    slope = 2.0 * theta[6] * x1
    for j in range(2):
        a, m, s = theta[3 * j], theta[3 * j + 1], theta[3 * j + 2]
        u = (x1 - m) / s
        bump = a * np.exp(-0.5 * u * u)
        value -= bump
        slope += bump * u / s
    return value, slope


@jit(inline="always")
def _residual(x, data, i):
    d = x.shape[0]
    r = -data[i, d]
    for k in range(d):
        r += data[i, k] * x[k]
    return r


@jit(inline="always")
def _sharp_wide_curvature(x1, theta):
    """d^2 f / d x_1^2 of SHARP_WIDE: 2c + sum_j a_j e^{-u_j^2/2} (1 - u_j^2) / s_j^2, u_j = (x_1 - m_j)/s_j."""
    acc = 2.0 * theta[6]
    for j in range(2):
        a, m, s = theta[3 * j], theta[3 * j + 1], theta[3 * j + 2]
        u = (x1 - m) / s
        acc += a * np.exp(-0.5 * u * u) * (1.0 - u * u) / (s * s)
    return acc


@jit(inline="always")
def separable_curvature(code, xk, theta, k):
    """d^2 f / d x_k^2 for the landscapes that are sums over coordinates (QUADRATIC, DOUBLE_WELL, RIPPLE)."""
    if code == QUADRATIC:
        return theta[k]
    if code == DOUBLE_WELL:
        return theta[0] * (12.0 * xk * xk - 4.0)
    wave = 2.0 * np.pi / theta[2]
    return theta[0] + theta[1] * wave * wave * np.cos(wave * xk)


@jit(inline="always")
def _residual_loss_and_slope(code, r, theta):
    """Per-example loss phi(r) and phi'(r) of the regression losses."""
    if code == LEAST_SQUARES:
        return 0.5 * r * r, r
    p = theta[0]
    a = abs(r)
    return a ** p / p, np.sign(r) * a ** (p - 1.0)


@jit
def value(code, x, theta, data):
    """Full loss f(x) (the mean over examples for finite sums)."""
    d = x.shape[0]
    if code == QUADRATIC:
        acc = 0.0
        for k in range(d):
            acc += 0.5 * theta[k] * x[k] * x[k]
        return acc
    if code == DOUBLE_WELL:
        acc = 0.0
        for k in range(d):
            w = x[k] * x[k] - 1.0
            acc += w * w
        return theta[0] * acc
    if code == RIPPLE:
        acc = 0.0
        for k in range(d):
            acc += 0.5 * theta[0] * x[k] * x[k] + theta[1] * (1.0 - np.cos(2.0 * np.pi * x[k] / theta[2]))
        return acc
    if code == RING:
        r2 = 0.0
        for k in range(d):
            r2 += x[k] * x[k]
        return 0.25 * (r2 - 1.0) ** 2
    if code == STRICT_SADDLE or code == SHARP_WIDE:
        acc = 0.0
        for k in range(1, d):
            acc += 0.5 * x[k] * x[k]
        if code == STRICT_SADDLE:
            return acc + 0.25 * x[0] ** 4 - 0.5 * x[0] ** 2
        return acc + _sharp_wide_1d(x[0], theta)[0]
    n = data.shape[0]
    acc = 0.0
    for i in range(n):
        acc += _residual_loss_and_slope(code, _residual(x, data, i), theta)[0]
    return acc / n


@jit(inline="always")
def example_grad_add(code, x, theta, data, i, weight, out):
    """out += weight * grad f_i(x) for finite-sum (regression) landscapes."""
    d = x.shape[0]
    slope = weight * _residual_loss_and_slope(code, _residual(x, data, i), theta)[1]
    for k in range(d):
        out[k] += slope * data[i, k]


@jit(inline="always")
def grad(code, x, theta, data, out):
    """out = grad f(x) (the mean over examples for finite sums)."""
    d = x.shape[0]
    if code == QUADRATIC or code == DOUBLE_WELL:
        for k in range(d):
            out[k] = separable_grad(code, x[k], theta, k)
    elif code == RIPPLE:
        for k in range(d):
            out[k] = theta[0] * x[k] + theta[1] * (2.0 * np.pi / theta[2]) * np.sin(2.0 * np.pi * x[k] / theta[2])
    elif code == RING:
        r2 = 0.0
        for k in range(d):
            r2 += x[k] * x[k]
        for k in range(d):
            out[k] = (r2 - 1.0) * x[k]
    elif code == STRICT_SADDLE or code == SHARP_WIDE:
        for k in range(1, d):
            out[k] = x[k]
        if code == STRICT_SADDLE:
            out[0] = x[0] ** 3 - x[0]
        else:
            out[0] = _sharp_wide_1d(x[0], theta)[1]
    else:
        out[:] = 0.0
        n = data.shape[0]
        for i in range(n):
            example_grad_add(code, x, theta, data, i, 1.0 / n, out)


@jit(inline="always")
def hessian_vector(code, x, theta, data, v, out):
    """out = H(x) v with H the Hessian of f (the mean over examples for finite sums): diagonal for the
    separable landscapes; (|x|^2 - 1) v + 2 x (x . v) for RING; (1/N) sum_i phi''(r_i) (a_i . v) a_i for
    regression, phi''(r) = (p - 1)|r|^(p-2)."""
    d = x.shape[0]
    if code == QUADRATIC or code == DOUBLE_WELL or code == RIPPLE:
        for k in range(d):
            out[k] = separable_curvature(code, x[k], theta, k) * v[k]
    elif code == RING:
        r2 = 0.0
        xv = 0.0
        for k in range(d):
            r2 += x[k] * x[k]
            xv += x[k] * v[k]
        for k in range(d):
            out[k] = (r2 - 1.0) * v[k] + 2.0 * xv * x[k]
    elif code == STRICT_SADDLE or code == SHARP_WIDE:
        for k in range(1, d):
            out[k] = v[k]
        if code == STRICT_SADDLE:
            out[0] = (3.0 * x[0] * x[0] - 1.0) * v[0]
        else:
            out[0] = _sharp_wide_curvature(x[0], theta) * v[0]
    else:
        out[:] = 0.0
        n = data.shape[0]
        for i in range(n):
            r = _residual(x, data, i)
            curvature = 1.0 if code == LEAST_SQUARES else (theta[0] - 1.0) * abs(r) ** (theta[0] - 2.0)
            av = 0.0
            for k in range(d):
                av += data[i, k] * v[k]
            weight = curvature * av / n
            for k in range(d):
                out[k] += weight * data[i, k]


@jit(parallel=True)
def hessian_vectors(code, xs, theta, data, vs, out):
    """out[p] = H(xs[p]) vs[p] for every particle, in parallel (the compiled side of the twin tests)."""
    for p in prange(xs.shape[0]):
        hessian_vector(code, xs[p], theta, data, vs[p], out[p])


@jit(parallel=True)
def gradients(code, xs, theta, data, out):
    """out[p] = grad f(xs[p]) for every particle, in parallel."""
    for p in prange(xs.shape[0]):
        grad(code, xs[p], theta, data, out[p])


@jit(parallel=True)
def values(code, xs, theta, data, out):
    """f at every particle of xs (M, d), in parallel."""
    for p in prange(xs.shape[0]):
        out[p] = value(code, xs[p], theta, data)
