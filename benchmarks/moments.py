"""The fourth-moment map of one minibatch SGD step (`sgdsim.particles.minibatch_moments.moment_map(order=4)`), against the
plain NumPy einsum it replaced.

Both compute E[(I - lr H_B)^(x 4)] on least squares as a sum over set partitions of the four slots of products
of per-example tensors Z_i = I - lr a_i a_i^T:
  engine   block means G_m = (1/N) sum_i Z_i^(x m) once per block size m (matrix products, O(N d^8)), then an
           outer product per partition (`minibatch_moments.block_means`)
  einsum   one np.einsum(optimize=True) per partition over the (N, d, d) stack of the Z_i (the previous
           implementation). For the partition {3 slots, 1 slot} NumPy's path finder keeps the naive
           contraction, a loop over N^2 pairs of examples (N^2 d^8 flops): the cliff of issue 17 (0.8 s per
           term at N = 800, about 30 s at N = 5000 for d = 2).
Results are checked equal (rel 1e-10) where the einsum is run. The load average is printed (shared machine).

    python benchmarks/moments.py [--ns 1000,5000] [--dim 2] [--batch 4] [--without-replacement] [--einsum-max 5000]
"""
from __future__ import annotations

import argparse
import itertools
import math
import os

import numpy as np

from sgdsim.particles.minibatch_moments import moment_map
from sgdsim.scenarios.temperature import make_data
from timing import best_time

SEED = 20240601


def partitions(items: list):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in partitions(rest):
        yield [[first]] + part
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]


def falling(n: int, k: int) -> int:
    return math.prod(range(n - k + 1, n + 1))


def einsum_moment_map(A: np.ndarray, lr: float, batch: int, replace: bool, order: int) -> np.ndarray:
    """The previous implementation: one einsum over the stack of Z_i per set partition of the slots."""
    n, d = A.shape
    Z = np.eye(d)[None] - lr * A[:, :, None] * A[:, None, :]
    coefficients: dict = {}
    for part in partitions(list(range(order))):
        k = len(part)
        ways = falling(batch, k)
        if ways == 0:
            continue
        if replace:
            terms = [(part, 1.0 / n ** k)]
        else:
            terms = [([sorted(s for block in merge for s in part[block]) for merge in sigma],
                      math.prod((-1) ** (len(m) - 1) * math.factorial(len(m) - 1) for m in sigma) / falling(n, k))
                     for sigma in partitions(list(range(k)))]
        for blocks, c in terms:
            key = tuple(sorted(tuple(sorted(block)) for block in blocks))
            coefficients[key] = coefficients.get(key, 0.0) + ways * c / batch ** order
    rows, cols = "abcd"[:order], "efgh"[:order]
    total = np.zeros((d,) * (2 * order))
    for blocks, c in coefficients.items():
        if c == 0.0:
            continue
        subs = ["wxyz"[i] + rows[s] + cols[s] for i, block in enumerate(blocks) for s in block]
        total += c * np.einsum(",".join(subs) + "->" + rows + cols, *[Z] * order, optimize=True)
    T = total.reshape(d ** order, d ** order)
    eye = np.eye(d ** order).reshape((d,) * order + (d ** order,))
    sym = sum(np.transpose(eye, (*perm, order)).reshape(d ** order, d ** order)
              for perm in itertools.permutations(range(order))) / math.factorial(order)
    return T @ sym


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns", default="1000,5000")
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--without-replacement", action="store_true")
    ap.add_argument("--einsum-max", type=int, default=5000, help="largest N for which the einsum is run")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    replace = not args.without_replacement
    print(f"fourth-moment map, d = {args.dim}, B = {args.batch}, lr = {args.lr}, "
          f"{'with' if replace else 'without'} replacement; load average {os.getloadavg()[0]:.2f}")
    print(f"{'N':>6} {'engine s':>10} {'einsum s':>10} {'ratio':>8}  check")
    status = 0
    for n in (int(v) for v in args.ns.split(",")):
        A, _ = make_data(n, args.dim, 4.0, 0.5, SEED)
        t_new, new = best_time(lambda: moment_map(A, args.lr, args.batch, replace, 4), args.repeats, give_up_after=20)
        if n <= args.einsum_max:
            t_old, old = best_time(lambda: einsum_moment_map(A, args.lr, args.batch, replace, 4), 1, give_up_after=20)
            ok = np.allclose(new, old, rtol=1e-10, atol=1e-12 * np.abs(old).max())
            status |= not ok
            print(f"{n:6d} {t_new:10.4f} {t_old:10.2f} {t_old / t_new:8.0f}  {'equal' if ok else 'DIFFERENT'}")
        else:
            print(f"{n:6d} {t_new:10.4f} {'-':>10} {'-':>8}  (einsum skipped)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
