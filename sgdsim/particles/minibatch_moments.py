"""Exact moments of one minibatch SGD step on least squares, beyond the covariance.

One step is linear in e = x - x*: e' = M e - lr g_B with M = I - lr H_B random. The p-th moment map
E[M^(x p)] decides whether E|e|^p stays finite at stationarity (spectral radius < 1): p = 2 gives the
stability edge lr_c(B) of the covariance (the map of `theory.sgd_stationary_covariance`), p = 4 whether a
standard error of the covariance exists (heavy tails: Kesten 1973; Gurbuzbalaban, Simsekli & Zhu 2021).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from . import theory
from ..errors import ParameterError


def _set_partitions(items: list):
    """Every partition of `items` into non-empty blocks (lists), each exactly once."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        yield [[first]] + part
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]


def _falling(n: int, k: int) -> int:
    return math.prod(range(n - k + 1, n + 1))


def block_means(A: np.ndarray, lr: float, order: int) -> list[np.ndarray]:
    """G_m = (1/N) sum_i Z_i^(x m) for m = 1..order (order <= 4), Z_i = I - lr a_i a_i^T, index order
    (a_1, e_1, ..., a_m, e_m): the mean of m slots that share one example. One pass over the examples per m:
    G_2 from the per-example products F_i = Z_i (x) Z_i (N, d^4), G_3 = F^T Z / N and G_4 = F^T F / N as matrix
    products, O(N d^(2m)) time and O(N d^4) memory (never an N x N object)."""
    n, d = A.shape
    Z = np.eye(d)[None] - lr * A[:, :, None] * A[:, None, :]
    flat1 = Z.reshape(n, d * d)
    out = [flat1.sum(axis=0).reshape(d, d) / n]
    if order >= 2:
        flat2 = (flat1[:, :, None] * flat1[:, None, :]).reshape(n, d ** 4)
        out.append(flat2.sum(axis=0).reshape((d,) * 4) / n)
    if order >= 3:
        out.append((flat2.T @ flat1).reshape((d,) * 6) / n)
    if order >= 4:
        out.append((flat2.T @ flat2).reshape((d,) * 8) / n)
    return out


def moment_map(A: np.ndarray, lr: float, batch: int, replace: bool, order: int) -> np.ndarray:
    """E[M^(x order)] as a (d^order, d^order) matrix, M = I - lr H_B the random linear part of one SGD step
    on least squares (e' = M e - lr g_B), restricted to symmetric tensors (zero on the rest); order 1..4.

    M = (1/B) sum_j Z_{i_j} with Z_i = I - lr a_i a_i^T, so E[M^(x p)] = B^-p sum over the p slots' batch
    positions, grouped by which slots share a position (a set partition with K blocks, (B)_K ways). With
    replacement the K positions hold independent uniform examples: the product of block means
    G_|beta| = (1/N) sum_i Z_i^(x |beta|) (`block_means`). Without, they hold K distinct examples: the sum over
    distinct tuples by Moebius inversion on the partition lattice,
    sum_distinct = sum_sigma prod_beta (-1)^(|beta|-1) (|beta|-1)! sum_{tuples constant on sigma's blocks},
    divided by (N)_K, again a product of block means of the merged blocks. Every term is an outer product
    of block means, so the cost is O(N d^(2p)) for the means plus O(d^(2p)) per partition, linear in N.
    The moment E[e^(x p)] stays finite iff the spectral radius is below 1 (for p = 2 this is the map of
    `theory.sgd_stationary_covariance`; for p = 4 it decides whether a standard error exists).
    """
    n, d = A.shape
    if not 1 <= order <= 4:
        raise ParameterError(f"moment_map order must be 1..4, got {order}")
    coefficients: dict = {}
    for part in _set_partitions(list(range(order))):
        k = len(part)
        ways = _falling(batch, k)
        if ways == 0:
            continue
        if replace:
            terms = [(part, 1.0)]
        else:
            terms = [([sorted(s for block in merge for s in part[block]) for merge in sigma],
                      math.prod((-1) ** (len(m) - 1) * math.factorial(len(m) - 1) for m in sigma)
                      * float(n) ** len(sigma) / _falling(n, k))
                     for sigma in _set_partitions(list(range(k)))]
        for blocks, c in terms:
            key = tuple(sorted(tuple(sorted(block)) for block in blocks))
            coefficients[key] = coefficients.get(key, 0.0) + ways * c / batch ** order
    means = block_means(A, lr, order)
    rows, cols = "abcd"[:order], "efgh"[:order]
    total = np.zeros((d,) * (2 * order))
    for blocks, c in coefficients.items():
        if c == 0.0:
            continue
        subs = ["".join(rows[s] + cols[s] for s in block) for block in blocks]
        total += c * np.einsum(",".join(subs) + "->" + rows + cols, *[means[len(block) - 1] for block in blocks])
    T = total.reshape(d ** order, d ** order)
    eye = np.eye(d ** order).reshape((d,) * order + (d ** order,))
    sym = sum(np.transpose(eye, (*perm, order)).reshape(d ** order, d ** order)
              for perm in itertools.permutations(range(order))) / math.factorial(order)
    return T @ sym


def spectral_radius(T: np.ndarray) -> float:
    """Largest |eigenvalue| of a symmetric moment map (E[M^(x p)] is symmetric and commutes with slot swaps)."""
    return float(np.abs(np.linalg.eigvalsh((T + T.T) / 2)).max())


def stability_edge(A, b, batch, replace, hi: float) -> float:
    """lr_c(B): the largest lr with a stationary covariance (bisection on the exact prediction, rel. 1e-6)."""
    lo = hi * 1e-6
    try:
        theory.sgd_stationary_covariance(A, b, hi, batch, replace)
        return hi
    except ParameterError:
        pass
    while hi / lo > 1 + 1e-6:
        mid = math.sqrt(lo * hi)
        try:
            theory.sgd_stationary_covariance(A, b, mid, batch, replace)
            lo = mid
        except ParameterError:
            hi = mid
    return lo
