"""Observables of a particle cloud reduced in compiled code: mean, covariance, mean loss and a histogram of one
coordinate, as partial sums over fixed blocks of BLOCK particles combined in block order.

The same inline reduction (`lanes_accumulate`, `lanes_finish`) runs in two places: in `Observer.observe` on a
cloud given as an array, and inside the block kernel (`particles.block`), which takes the records of the
steps a chunk crosses itself, from the positions it holds in its lanes, without another pass over the state.
Both see a block of particles as consecutive groups of `lanes_for(d)` particles (lane l of a group holds its
l-th particle) and accumulate per lane, so the loops over lanes compile to SIMD; a block's partial sums are
then the lane accumulators summed in lane order. Every sum therefore has a fixed order that depends only on
the number of particles and the dimension (never on the number of Numba threads, on how the steps are
chunked, and no BLAS anywhere): the observables are bit-identical for any NUMBA_NUM_THREADS,
OPENBLAS_NUM_THREADS and chunking, and equal whether the kernel or `observe` computed them.

Per block b (n_b particles, shifted by its first particle s_b, so that the second moments do not cancel):
first_b = sum_p y_p, second_b = sum_p y_p y_p^T (lower triangle) with y_p = x_p - s_b, loss_b = sum_p f(x_p),
counts_b[i] = #{p : edges[i] <= x_p[axis] < edges[i+1]} (the last bin closed, as np.histogram). Combined
in block order about s = s_0 (the first particle), with delta_b = s_b - s:

    S1 = sum_b first_b + n_b delta_b,   S2 = sum_b second_b + first_b delta_b^T + delta_b first_b^T + n_b delta_b delta_b^T
    mean = s + S1 / M,   covariance = (S2 - S1 S1^T / M) / (M - 1)   (as np.cov, ddof=1; 0 for M = 1)
    loss = (1/M) sum_b loss_b,   counts = sum_b counts_b

For least squares, f(x) = 1/2 x.Hx - c.x + e with H = A^T A / N, c = A^T b / N, e = |b|^2 / (2N) summed once
(in compiled code, in example order): O(d^2) per particle instead of O(N d), equal to the sum over examples
up to round-off.
"""
from __future__ import annotations

import numpy as np
from numba import literally, prange

from .._jit import LiteralDispatch, jit
from .landscapes import DOUBLE_WELL, LEAST_SQUARES, QUADRATIC, value

BLOCK = 4096  # particles per partial sum (a multiple of every lanes_for(d))


def lanes_for(dim: int) -> int:
    """Particles per group of lanes, the trip count of every inner loop of the block kernel and of the
    reduction: 256 in one or two dimensions, 64 above (a group's positions, gradients and gathered rows then
    stay in L1; measured)."""
    return 256 if dim <= 2 else 64


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
def lanes_loss(code, X, n, theta, data, h, c, e, W, out):
    """out[l] = f(x_l) for the lanes l < n of X (d, lanes): vectorized over lanes for the quadratic, the
    double well and least squares (per particle the same operations, in the same order, as `value`, or as
    the quadratic form of least squares); W (2, lanes) is scratch."""
    d = X.shape[0]
    if code == QUADRATIC or code == DOUBLE_WELL or code == LEAST_SQUARES:
        for l in range(n):
            out[l] = 0.0
    if code == QUADRATIC:
        for k in range(d):
            xk = X[k]
            for l in range(n):
                out[l] += 0.5 * theta[k] * xk[l] * xk[l]
    elif code == DOUBLE_WELL:
        for k in range(d):
            xk = X[k]
            for l in range(n):
                w = xk[l] * xk[l] - 1.0
                out[l] += w * w
        for l in range(n):
            out[l] = theta[0] * out[l]
    elif code == LEAST_SQUARES:  # 1/2 x.Hx - c.x + e
        lin, hx = W[0], W[1]
        for l in range(n):
            lin[l] = 0.0
        for a in range(d):
            xa = X[a]
            for l in range(n):
                hx[l] = 0.0
            for k in range(d):
                hak, xk = h[a, k], X[k]
                for l in range(n):
                    hx[l] += hak * xk[l]
            for l in range(n):
                out[l] += xa[l] * hx[l]
                lin[l] += c[a] * xa[l]
        for l in range(n):
            out[l] = 0.5 * out[l] - lin[l] + e
    else:
        one = np.empty(d)
        for l in range(n):
            for k in range(d):
                one[k] = X[k, l]
            out[l] = value(code, one, theta, data)


@jit(inline="always")
def lanes_accumulate(X, n, shift, covariance, loss, code, theta, data, h, c, e, axis, edges, scale, Y, F, W, B,
                     A1, A2, AL, counts):
    """Add the lanes l < n of X (d, lanes) to the per-lane accumulators: A1[k, l] += y_k, A2[q, l] += y_a y_k
    (q over the lower triangle a >= k, row by row), AL[l] += f(x_l), with y = x - shift; and the histogram
    of coordinate `axis` to counts. Y (d, lanes), F (lanes,), W (2, lanes) and B (lanes,) int64 are scratch."""
    d = X.shape[0]
    for k in range(d):
        xk, yk, ak, sk = X[k], Y[k], A1[k], shift[k]
        for l in range(n):
            yk[l] = xk[l] - sk
            ak[l] += yk[l]
    if covariance:
        q = 0
        for a in range(d):
            ya = Y[a]
            for k in range(a + 1):
                yk, aq = Y[k], A2[q]
                for l in range(n):
                    aq[l] += ya[l] * yk[l]
                q += 1
    if loss:
        lanes_loss(code, X, n, theta, data, h, c, e, W, F)
        for l in range(n):
            AL[l] += F[l]
    n_bins = counts.shape[0]
    if n_bins > 0:  # bin guesses for all lanes at once (SIMD), then corrected and counted lane by lane
        xa = X[axis]
        lo, hi = edges[0], edges[n_bins]
        for l in range(n):
            v = xa[l]
            clipped = min(max(v, lo), hi)
            guess = min(np.int64((clipped - lo) * scale), n_bins - 1)
            B[l] = guess if (lo <= v) & (v <= hi) else -1
        for l in range(n):
            b = B[l]
            if b >= 0:
                v = xa[l]
                while b > 0 and v < edges[b]:
                    b -= 1
                while b < n_bins - 1 and v >= edges[b + 1]:
                    b += 1
                counts[b] += 1


@jit(inline="always")
def lanes_finish(A1, A2, AL, first, second, loss_out):
    """A block's partial sums from its lane accumulators, summed in lane order: first (d,), second (d, d)
    (lower triangle), loss_out[0]."""
    d = A1.shape[0]
    lanes = A1.shape[1]
    for k in range(d):
        s = 0.0
        for l in range(lanes):
            s += A1[k, l]
        first[k] = s
    q = 0
    for a in range(d):
        for k in range(a + 1):
            s = 0.0
            if q < A2.shape[0]:
                for l in range(lanes):
                    s += A2[q, l]
            second[a, k] = s
            q += 1
    s = 0.0
    for l in range(lanes):
        s += AL[l]
    loss_out[0] = s


def histogram_scale(edges: np.ndarray) -> float:
    n_bins = len(edges) - 1
    return n_bins / (edges[-1] - edges[0]) if n_bins > 0 else 0.0


@jit(parallel=True)
def _block_sums(lanes, x, covariance, loss, code, theta, data, h, c, e, axis, edges, scale, sizes, shifts,
                firsts, seconds, losses, counts):
    """Per block of BLOCK particles: their partial sums (see module), through the kernel's lane reduction;
    `code` is a compile-time constant, so f is specialized to the landscape."""
    literally(code)
    m, d = x.shape
    pairs = d * (d + 1) // 2 if covariance else 0
    for blk in prange(sizes.shape[0]):
        X = np.empty((d, lanes))
        Y = np.empty((d, lanes))
        F = np.empty(lanes)
        W = np.empty((2, lanes))
        B = np.empty(lanes, np.int64)
        A1 = np.zeros((d, lanes))
        A2 = np.zeros((pairs, lanes))
        AL = np.zeros(lanes)
        cnt = counts[blk]
        cnt[:] = 0
        start, stop = blk * BLOCK, min(m, (blk + 1) * BLOCK)
        for k in range(d):
            shifts[blk, k] = x[start, k]
        for g in range(start, stop, lanes):
            n = min(stop, g + lanes) - g
            for k in range(d):
                for l in range(n):
                    X[k, l] = x[g + l, k]
            lanes_accumulate(X, n, shifts[blk], covariance, loss, code, theta, data, h, c, e, axis, edges, scale,
                             Y, F, W, B, A1, A2, AL, cnt)
        sizes[blk] = stop - start
        lanes_finish(A1, A2, AL, firsts[blk], seconds[blk], losses[blk:blk + 1])


_BLOCK_SUMS = LiteralDispatch(_block_sums, literal_positions=(4,))  # code


@jit
def combine(sizes, shifts, firsts, seconds, losses, counts):
    """(M, mean, covariance, loss, counts) of one record's partial sums, about s = shifts[0], the blocks added
    in block order."""
    n_blocks, d = firsts.shape
    s1 = np.zeros(d)
    s2 = np.zeros((d, d))
    delta = np.empty(d)
    total = 0.0
    m = 0
    cnt = np.zeros(counts.shape[1], np.int64)
    for b in range(n_blocks):
        nb = sizes[b]
        if nb == 0:
            continue
        for k in range(d):
            delta[k] = shifts[b, k] - shifts[0, k]
        for a in range(d):
            s1[a] += firsts[b, a] + nb * delta[a]
            for k in range(a + 1):
                s2[a, k] += (seconds[b, a, k] + firsts[b, a] * delta[k] + delta[a] * firsts[b, k]
                             + nb * delta[a] * delta[k])
        total += losses[b]
        m += nb
        for i in range(cnt.shape[0]):
            cnt[i] += counts[b, i]
    mean = np.empty(d)
    cov = np.zeros((d, d))
    for a in range(d):
        mean[a] = shifts[0, a] + s1[a] / max(m, 1)
        if m > 1:
            for k in range(a + 1):
                cov[a, k] = (s2[a, k] - s1[a] * (s1[k] / m)) / (m - 1)
                cov[k, a] = cov[a, k]
    return m, mean, cov, total / max(m, 1), cnt


class Observer:
    """The observables of clouds on one landscape: `observe(x)` returns what was asked for (see module);
    `slots` and `results` are the same reduction run inside the block kernel (`ParticleSolver.advance`
    with record steps)."""

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
        self.scale = histogram_scale(self.edges)
        if self.loss and self.code == LEAST_SQUARES:
            self.moments = least_squares_moments(self.data)
        else:
            self.moments = (np.zeros((0, 0)), np.zeros(0), 0.0)

    def _check(self, m: int, d: int) -> None:
        if m == 0:
            raise ValueError("no particles to observe")
        if len(self.edges) > 1 and not 0 <= self.axis < d:
            raise ValueError(f"histogram axis {self.axis} is not a coordinate of {d}-dimensional particles")

    def slots(self, n_records: int, m: int, d: int) -> dict:
        """Zeroed partial-sum arrays for n_records records of m particles: sizes (R, blocks), shifts, firsts
        (R, blocks, d), seconds (R, blocks, d, d), losses (R, blocks), counts (R, blocks, bins)."""
        self._check(m, d)
        n_blocks = (m + BLOCK - 1) // BLOCK
        return {"sizes": np.zeros((n_records, n_blocks), np.int64), "shifts": np.zeros((n_records, n_blocks, d)),
                "firsts": np.zeros((n_records, n_blocks, d)), "seconds": np.zeros((n_records, n_blocks, d, d)),
                "losses": np.zeros((n_records, n_blocks)),
                "counts": np.zeros((n_records, n_blocks, len(self.edges) - 1), np.int64)}

    def result(self, sizes, shifts, firsts, seconds, losses, counts) -> dict:
        """{"mean": (d,), "covariance": (d, d), "loss": float, "counts": (bins,) int64} from one record's
        partial sums, as requested."""
        _, mean, cov, loss, cnt = combine(sizes, shifts, firsts, seconds, losses, counts)
        out = {}
        if self.mean:
            out["mean"] = mean
        if self.covariance:
            out["covariance"] = cov
        if self.loss:
            out["loss"] = np.float64(loss)
        if len(self.edges) > 1:
            out["counts"] = cnt
        return out

    def results(self, slots: dict, n_records: int | None = None) -> list[dict]:
        n = len(slots["sizes"]) if n_records is None else n_records
        keys = ("sizes", "shifts", "firsts", "seconds", "losses", "counts")
        return [self.result(*(slots[k][r] for k in keys)) for r in range(n)]

    def block_sums(self, x: np.ndarray, slots: dict) -> None:
        """The partial sums of the cloud x into record 0 of `slots`."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        m, d = x.shape
        self._check(m, d)
        h, c, e = self.moments
        _BLOCK_SUMS(lanes_for(d), x, self.covariance, self.loss, self.code, self.theta, self.data, h, c, e,
                    self.axis, self.edges, self.scale, slots["sizes"][0], slots["shifts"][0], slots["firsts"][0],
                    slots["seconds"][0], slots["losses"][0], slots["counts"][0])

    def observe(self, x: np.ndarray) -> dict:
        """{"mean": (d,), "covariance": (d, d), "loss": float, "counts": (bins,) int64} as requested."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"x must have shape (particles, dimension), got {x.shape}")
        s = self.slots(1, *x.shape)
        self.block_sums(x, s)
        return self.results(s)[0]
