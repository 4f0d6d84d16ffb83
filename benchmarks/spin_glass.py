"""Replica-gradient throughput of the spherical p = 3 spin glass (`sgdsim.solvers.pspin`), against plain NumPy.

The gradient g_r = 3 w Jsym (s_r, s_r, .) of R replicas at once is computed three ways on the same couplings:
  engine      one BLAS product  Jsym_(N x N^2) @ (s (x) s)_(N^2 x R)           (`pspin.gradient`)
  tensordot2  batched: tensordot(Jsym, S) -> (N, N, R), then contract with S    (NumPy, one pass, no Khatri-Rao)
  per-replica tensordot twice per replica (`pspin.gradient_tensordot`, the kernels' plain NumPy twin)
All three do 2 N^3 R flops (plus O(N^2 R)); the achieved rate is compared with the machine's matrix-multiply
rate measured in the same run (np.dot of two square float64 matrices). Results are checked equal (rel 1e-12).
Memory: the dense symmetric tensor, 8 N^3 bytes (N = 1000: 8 GB), is estimated and printed before allocating.
Compile time (the only Numba kernel on this path, the in-place symmetrization) is timed on its first call.

    python benchmarks/spin_glass.py [--n 150] [--replicas 1,8,32] [--repeats 3] [--large]
    --large: N = 1000 (8 GB of couplings plus 8 N^2 R bytes of workspace; opt-in, needs a quiet 24 GiB machine)
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from sgdsim.spin_glass import descent as sg
from sgdsim.solvers.spin_glass import pspin
from timing import best_time

SEED = 20240601


def matmul_rate(size: int, repeats: int) -> float:
    """Flop/s of np.dot on two (size, size) float64 matrices."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    np.dot(A, B)
    return 2 * size ** 3 / best_time(lambda: np.dot(A, B), repeats)[0]


def batched_tensordot(J: np.ndarray, w: float, S: np.ndarray) -> np.ndarray:
    T = np.tensordot(J, S, axes=([2], [0]))             # (N, N, R): sum_k J_ijk s_k
    return 3 * w * np.einsum("ijr,jr->ir", T, S)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--replicas", default="1,8,32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--matmul-size", type=int, default=1500)
    ap.add_argument("--large", action="store_true", help="N = 1000 (8 GB of couplings)")
    args = ap.parse_args(argv)
    n = 1000 if args.large else args.n
    replicas = [int(r) for r in args.replicas.split(",")]
    print(f"load average {os.getloadavg()}, BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    need = sg.memory_estimate(n, {3: 1.0}, max(replicas))
    print(f"p = 3, N = {n}: couplings + workspace {need / 1e9:.2f} GB (dense symmetric tensor 8 N^3 bytes)")
    sg.check_memory(n, {3: 1.0}, max(replicas), max_bytes=int(1.5 * need) if args.large else None)

    t0 = time.perf_counter()
    pspin.symmetrize3_inplace(np.zeros((2, 2, 2)))
    print(f"first call of the Numba symmetrization (compile or cache load): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    model = sg.spherical_pspin(n, 3, seed=SEED, max_bytes=int(1.5 * need) if args.large else None)
    print(f"draw + symmetrize couplings: {time.perf_counter() - t0:.2f} s")
    J, w = model.couplings[0], model.weights[0]

    peak = matmul_rate(args.matmul_size, args.repeats)
    print(f"machine matmul rate (np.dot {args.matmul_size}^2 float64): {peak / 1e9:.2f} GFlop/s "
          f"(re-measured after each R; the % column uses the best so far)\n")
    print(f"{'R':>4} {'method':>12} {'time/call':>11} {'grad/s':>10} {'GFlop/s':>8} {'% matmul':>8} {'engine x':>9}")
    failed = False
    for r in replicas:
        S = sg.random_starts(n, r, seed=SEED)
        flops = 2 * n ** 3 * r
        ref = model.energy_gradient(S)[1]
        methods = {"engine": lambda: model.energy_gradient(S),
                   "tensordot2": lambda: batched_tensordot(J, w, S),
                   "per-replica": lambda: pspin.gradient_tensordot(model.couplings, model.weights, S)}
        for name, fn in (("tensordot2", methods["tensordot2"]), ("per-replica", methods["per-replica"])):
            out = fn()
            g = out[1] if isinstance(out, tuple) else out
            if not np.allclose(g, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max()):
                print(f"  CHECK FAILED: {name} differs from the engine at R = {r}")
                failed = True
        times = {name: best_time(fn, args.repeats)[0] for name, fn in methods.items()}
        peak = max(peak, matmul_rate(args.matmul_size, args.repeats))
        for name, t in times.items():
            print(f"{r:>4} {name:>12} {t * 1e3:>9.2f}ms {r / t:>10.1f} {flops / t / 1e9:>8.2f} "
                  f"{100 * flops / t / peak:>7.1f}% {t / times['engine']:>8.2f}x")
    print(f"\nbest machine matmul rate in this run: {peak / 1e9:.2f} GFlop/s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
