"""Observables of a particle cloud reduced in compiled code: mean, covariance, mean loss and a histogram of one
coordinate, parallel over fixed blocks of BLOCK particles whose partial sums are combined in block order.

Every sum has a fixed order that depends only on the number of particles (never on the number of Numba
threads, and no BLAS anywhere), so the observables are bit-identical for any NUMBA_NUM_THREADS and
OPENBLAS_NUM_THREADS. One pass, with sums of y_p = x_p - x_0 (shifted by the first particle, so that
the second moments do not cancel: |x_0 - mean| is a few standard deviations):

    mean       = x_0 + (1/M) sum_p y_p
    covariance = (1/(M-1)) (sum_p y_p y_p^T - (sum_p y_p)(sum_p y_p)^T / M)   (as np.cov, ddof=1; 0 for M = 1)
    loss       = (1/M) sum_p f(x_p)
    counts[b]  = #{p : edges[b] <= x_p[axis] < edges[b+1]}, the last bin closed (as np.histogram)

For least squares, f(x) = 1/2 x.Hx - c.x + e with H = A^T A / N, c = A^T b / N, e = |b|^2 / (2N) summed once
(in compiled code, in example order): O(d^2) per particle instead of O(N d), equal to the sum over examples
up to round-off.
"""
from __future__ import annotations

import numpy as np
from numba import literally, prange

from .._jit import LiteralDispatch, jit
from .landscapes import LEAST_SQUARES, value

BLOCK = 4096  # particles per partial sum


@jit
def least_squares_moments(data):
    """H = A^T A / N, c = A^T b / N, e = |b|^2 / (2N) of data = [A | b], summed in example order."""
    n, d = data.shape[0], data.shape[1] - 1
    h = np.zeros((d, d))
    c = np.zeros(d)
    e = 0.0
    for i in range(n):
        b = data[i, d]
        for a in range(d):
            c[a] += data[i, a] * b
            for k in range(d):
                h[a, k] += data[i, a] * data[i, k]
        e += b * b
    return h / n, c / n, e / (2.0 * n)


@jit(inline="always")
def _loss(code, xp, theta, data, h, c, e):
    if code == LEAST_SQUARES:
        d = xp.shape[0]
        quad = 0.0
        lin = 0.0
        for a in range(d):
            acc = 0.0
            for k in range(d):
                acc += h[a, k] * xp[k]
            quad += xp[a] * acc
            lin += c[a] * xp[a]
        return 0.5 * quad - lin + e
    return value(code, xp, theta, data)


@jit(inline="always")
def _bin(v, edges, scale):
    """b with edges[b] <= v < edges[b+1] (the last bin closed), for edges[0] <= v <= edges[-1]: a guess
    (v - edges[0]) * scale, exact for uniform bins, then moved until the edges agree."""
    n_bins = edges.shape[0] - 1
    b = min(int((v - edges[0]) * scale), n_bins - 1)
    while b > 0 and v < edges[b]:
        b -= 1
    while b < n_bins - 1 and v >= edges[b + 1]:
        b += 1
    return b


@jit(parallel=True)
def _block_sums(x, shift, covariance, loss, code, theta, data, h, c, e, axis, edges, firsts, seconds, losses,
                counts):
    """Per block of particles: sums of x - shift and of its products (lower triangle), of f(x), and the
    histogram counts; `code` is a compile-time constant, so f is specialized to the landscape."""
    literally(code)
    n, d = x.shape
    n_bins = counts.shape[1]
    scale = n_bins / (edges[n_bins] - edges[0]) if n_bins > 0 else 0.0
    for blk in prange(firsts.shape[0]):
        first = np.zeros(d)
        second = np.zeros((d, d))
        cnt = np.zeros(n_bins, np.int64)
        total = 0.0
        xp = np.empty(d)
        dev = np.empty(d)
        for p in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
            for k in range(d):
                xp[k] = x[p, k]
                dev[k] = xp[k] - shift[k]
                first[k] += dev[k]
            if covariance:
                for a in range(d):
                    for k in range(a + 1):
                        second[a, k] += dev[a] * dev[k]
            if loss:
                total += _loss(code, xp, theta, data, h, c, e)
            if n_bins > 0:
                v = xp[axis]
                if edges[0] <= v <= edges[n_bins]:
                    cnt[_bin(v, edges, scale)] += 1
        firsts[blk] = first
        seconds[blk] = second
        losses[blk] = total
        counts[blk] = cnt


_BLOCK_SUMS = LiteralDispatch(_block_sums, literal_positions=(4,))  # code


@jit
def _combine(part):
    """Sum of part over its first axis, in block order."""
    out = np.zeros_like(part[0])
    for b in range(part.shape[0]):
        out += part[b]
    return out


class Observer:
    """The observables of clouds on one landscape: `observe(x)` returns what was asked for (see module)."""

    def __init__(self, *, code: int, theta: np.ndarray, data: np.ndarray, mean: bool = True,
                 covariance: bool = True, loss: bool = True, histogram: tuple | None = None):
        self.code = int(code)
        self.theta = np.ascontiguousarray(theta, dtype=np.float64)
        self.data = np.ascontiguousarray(data, dtype=np.float64)
        self.mean, self.covariance, self.loss = bool(mean), bool(covariance), bool(loss)
        self.axis = 0 if histogram is None else int(histogram[0])
        self.edges = np.zeros(1) if histogram is None else np.asarray(histogram[1], dtype=np.float64)
        if histogram is not None and (self.edges.ndim != 1 or len(self.edges) < 2
                                      or not np.all(np.diff(self.edges) > 0)):
            raise ValueError("histogram edges must be an increasing sequence of at least two values")
        if self.loss and self.code == LEAST_SQUARES:
            self.moments = least_squares_moments(self.data)
        else:
            self.moments = (np.zeros((0, 0)), np.zeros(0), 0.0)

    def observe(self, x: np.ndarray) -> dict:
        """{"mean": (d,), "covariance": (d, d), "loss": float, "counts": (bins,) int64} as requested."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        m, d = x.shape
        if m == 0:
            raise ValueError("no particles to observe")
        if len(self.edges) > 1 and not 0 <= self.axis < d:
            raise ValueError(f"histogram axis {self.axis} is not a coordinate of {d}-dimensional particles")
        n_blocks = (m + BLOCK - 1) // BLOCK
        n_bins = len(self.edges) - 1
        firsts, seconds = np.empty((n_blocks, d)), np.empty((n_blocks, d, d))
        losses, counts = np.empty(n_blocks), np.empty((n_blocks, n_bins), np.int64)
        h, c, e = self.moments
        shift = x[0].copy()
        _BLOCK_SUMS(x, shift, self.covariance, self.loss, self.code, self.theta, self.data, h, c, e, self.axis,
                    self.edges, firsts, seconds, losses, counts)
        first = _combine(firsts)
        out = {}
        if self.mean:
            out["mean"] = shift + first / m
        if self.covariance:
            if m > 1:
                lower = np.tril(_combine(seconds) - np.outer(first, first / m)) / (m - 1)
            else:
                lower = np.zeros((d, d))
            out["covariance"] = lower + np.tril(lower, -1).T
        if self.loss:
            out["loss"] = np.float64(_combine(losses[:, None])[0] / m)
        if n_bins > 0:
            out["counts"] = _combine(counts)
        return out
