"""Throughput of the network trainer beside plain NumPy: an ensemble of two-layer ReLU networks trained by SGD.

Cases: inputs d = 20, hidden width h = 32 with minibatch B = 4, and h = 64 with B = 32; one output, square
loss, N = 2048 teacher examples, M = 32 members, lr = 0.02, momentum 0.9. The engine is
`sgdsim.solvers.network_kernel.train` (prange over members; inside a member the whole minibatch goes through
each layer at once, batch-major, forward against a transposed weight copy). The baseline is the same SGD in
plain NumPy with all members stacked, so every step is a few batched matrix products over (M, B, .) arrays:
    z = X_B W1^T + b1;  a = relu(z);  f = a w2 + c;  backprop;  v = mu v + g;  w -= lr v
with minibatches from `default_rng` (`argpartition` of uniforms: B distinct examples per member). Also timed,
on 1/20 of the steps: the generic NumPy twin `networks.reference.train`, member by member with the kernel's
own minibatches (its pure-Python xoshiro makes it slow at small B), whose weights must equal the engine's.
Throughput is member-examples per second (M * B * steps / wall); per core = engine / numba.get_num_threads()
(the NumPy loop runs on one core, or more inside BLAS; set OPENBLAS_NUM_THREADS=1 to pin it). Check: after
the run the mean training losses of the two ensembles agree within 4 standard errors of the member spread
(different random streams, same distribution), both are below the initial loss, and the engine equals the
twin.

    python benchmarks/training.py [--quick] [--threads N] [--width H --batch B] [--members M] [--no-cold]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np

from sgdsim.networks.training import Architecture, Loss, init_params, net_for, teacher_classification
from sgdsim.solvers.networks import kernel as nk
from sgdsim.solvers.networks import reference as R
from sgdsim.solvers.rng import seed_states

SEED = 20240601
Z_MAX = 4.0
LR, MOMENTUM = 0.02, 0.9
CASES = [(32, 4), (64, 32)]  # (width, minibatch): small batches (per-call overhead) and larger ones (BLAS)


def setup(width: int, n: int = 2048, dim: int = 20):
    data = teacher_classification(n, 10, dim, seed=SEED)
    arch = Architecture((dim, width, 1), "relu")
    return arch, net_for(arch, Loss("square"), data)


def engine_run(net: nk.Net, params: np.ndarray, steps: int, batch: int, seed: int) -> tuple[np.ndarray, float]:
    p, v = params.copy(), np.zeros_like(params)
    perm = np.tile(np.arange(len(net.X), dtype=np.int64), (len(p), 1))
    diverged = np.full(len(p), -1, dtype=np.int64)
    t0 = time.perf_counter()
    nk.train(net, p, v, seed_states(seed, len(p)), perm, np.full(steps, LR), batch, MOMENTUM, 0.0, 0, diverged)
    wall = time.perf_counter() - t0
    if np.any(diverged >= 0):
        raise SystemExit("engine run diverged")
    return p, wall


def numpy_run(net: nk.Net, params: np.ndarray, steps: int, batch: int, seed: int) -> tuple[np.ndarray, float]:
    """Stacked-member SGD for a two-layer ReLU net with square loss (see the module docstring)."""
    d, h = int(net.sizes[0]), int(net.sizes[1])
    m = len(params)
    W1 = params[:, :h * d].reshape(m, h, d).copy()
    b1 = params[:, h * d:h * d + h].copy()
    w2 = params[:, h * d + h:h * d + 2 * h].copy()
    c = params[:, -1].copy()
    vel = [np.zeros_like(x) for x in (W1, b1, w2, c)]
    rng = np.random.default_rng(seed)
    X, Y = net.X, net.Y[:, 0]
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = np.argpartition(rng.random((m, len(X))), batch, axis=1)[:, :batch]
        xb, yb = X[idx], Y[idx]                                   # (m, B, d), (m, B)
        z = np.einsum("mbd,mhd->mbh", xb, W1) + b1[:, None, :]
        a = np.maximum(z, 0.0)
        r = (np.einsum("mbh,mh->mb", a, w2) + c[:, None] - yb) / batch
        gz = r[:, :, None] * w2[:, None, :] * (z > 0)
        grads = (np.einsum("mbh,mbd->mhd", gz, xb), gz.sum(axis=1), np.einsum("mb,mbh->mh", r, a), r.sum(axis=1))
        for x, v, g in zip((W1, b1, w2, c), vel, grads):
            v *= MOMENTUM
            v += g
            x -= LR * v
    wall = time.perf_counter() - t0
    return np.hstack([W1.reshape(m, -1), b1, w2, c[:, None]]), wall


def cold_compile(threads: int) -> float:
    """First call in a fresh process with an empty NUMBA_CACHE_DIR (train_steps compiled from scratch)."""
    with tempfile.TemporaryDirectory(prefix="sgdsim-numba-cache-") as cache:
        proc = subprocess.run([sys.executable, __file__, "--first-call-only", "--threads", str(threads)],
                              env=dict(os.environ, NUMBA_CACHE_DIR=cache), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"first-call subprocess failed:\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


def first_call() -> float:
    _, net = setup(8, n=16, dim=20)
    t0 = time.perf_counter()
    engine_run(net, init_params(Architecture((20, 8, 1)), 2, SEED), 1, 4, SEED)
    return time.perf_counter() - t0


def run_case(width: int, batch: int, members: int, steps: int, threads: int) -> dict:
    arch, net = setup(width)
    params = init_params(arch, members, SEED)
    print(f"\ntwo-layer ReLU 20-{width}-1 ({arch.n_params} parameters), square loss, N={len(net.X)}, M={members} "
          f"members, B={batch}, {steps} steps, lr={LR}, momentum={MOMENTUM}")
    work = members * batch * steps
    p_engine, wall_engine = engine_run(net, params, steps, batch, SEED)
    p_numpy, wall_numpy = numpy_run(net, params, steps, batch, SEED)
    rate, rate_np = work / wall_engine, work / wall_numpy
    print(f"  engine: {wall_engine:.2f} s -> {rate / 1e3:.1f} k examples/s ({rate / threads / 1e3:.1f} k per thread)")
    print(f"  numpy : {wall_numpy:.2f} s -> {rate_np / 1e3:.1f} k examples/s")
    print(f"  engine / numpy per core: {rate / threads / rate_np:.2f}   (total: {rate / rate_np:.2f})")
    twin_steps = max(1, steps // 20)
    p_short, _ = engine_run(net, params, twin_steps, batch, SEED)
    t0 = time.perf_counter()
    p_twin = np.array([R.train(params[m], net.sizes, int(net.act), int(net.loss), net.X, net.Y,
                               np.full(twin_steps, LR), batch, MOMENTUM, 0.0, SEED, m) for m in range(members)])
    rate_twin = members * batch * twin_steps / (time.perf_counter() - t0)
    same = bool(np.allclose(p_short, p_twin, rtol=1e-9, atol=1e-12))
    print(f"  twin  : network_reference.train, member by member ({twin_steps} steps, same minibatches): "
          f"{rate_twin / 1e3:.1f} k examples/s; engine == twin to 1e-9: {'yes' if same else 'NO'}")
    initial = net.loss_grad(params)[0]
    le, ln = net.loss_grad(p_engine)[0], net.loss_grad(p_numpy)[0]
    se = np.sqrt(le.var(ddof=1) / len(le) + ln.var(ddof=1) / len(ln))
    z = (le.mean() - ln.mean()) / se
    ok = bool(abs(z) < Z_MAX and le.mean() < initial.mean() and ln.mean() < initial.mean() and same)
    print(f"  check: mean training loss initial {initial.mean():.4f}, engine {le.mean():.4f}, numpy {ln.mean():.4f} "
          f"(se {se:.2g}, z = {z:.2f}) -> {'ok' if ok else 'FAILED'}")
    return dict(width=width, batch=batch, engine=rate, numpy=rate_np, twin=rate_twin, ratio=rate / threads / rate_np,
                ok=ok)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10x fewer steps (smoke run)")
    ap.add_argument("--threads", type=int, default=None, help="Numba threads (default: numba's default)")
    ap.add_argument("--width", type=int, default=None, help="one case of this width (with --batch)")
    ap.add_argument("--batch", type=int, default=None, help="one case of this minibatch size (with --width)")
    ap.add_argument("--members", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--no-cold", action="store_true", help="skip the fresh-process compile timing")
    ap.add_argument("--first-call-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads is not None:
        numba.set_num_threads(args.threads)
    if args.first_call_only:
        print(json.dumps({"seconds": first_call()}))
        return 0
    threads = numba.get_num_threads()
    steps = args.steps // 10 if args.quick else args.steps
    cases = [(args.width or 64, args.batch or 32)] if args.width or args.batch else CASES
    print(f"sgdsim network trainer vs stacked-member NumPy; {threads} Numba threads; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"  first call in this process (compile or cache load): {first_call():.2f} s")
    rows = [run_case(w, b, args.members, steps, threads) for w, b in cases]
    print(f"\n{'width':>6} {'B':>4} {'engine k ex/s':>14} {'numpy k ex/s':>13} {'ratio/core':>11} {'twin k ex/s':>12}"
          f"  check")
    for r in rows:
        print(f"{r['width']:6d} {r['batch']:4d} {r['engine'] / 1e3:14.1f} {r['numpy'] / 1e3:13.1f} {r['ratio']:11.2f} "
              f"{r['twin'] / 1e3:12.1f}  {'ok' if r['ok'] else 'FAILED'}")
    if not args.no_cold:
        print(f"cold compile of the trainer (fresh process, empty NUMBA_CACHE_DIR): {cold_compile(threads):.1f} s")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
