"""Throughput of the particle engine beside plain vectorized NumPy:

  (A) Langevin (Euler–Maruyama), d = 10 anisotropic quadratic f = 1/2 sum_k h_k x_k^2, h log-spaced in
      [0.1, 10], T = 0.05, dt = 0.01, M = 100 000 particles from x = 1, 1000 steps;
  (B) Langevin, 1-D double well f = (x^2 - 1)^2 (DoubleWell(1)), T = 0.2, dt = 1e-3, M = 1 000 000 particles
      from x = -1, 2000 steps;
  (C) true minibatch SGD on the finite-sum double well of the main job, f_i = (x^2 - 1)^2 + a_i x,
      N = 256 tilts (`finite_sum_double_well(256, spread=7, seed=1)`), B = 2, lr = 0.02, M = 1 000 000 from
      x = -1, 2000 steps, with replacement (C) and without (C-distinct);
  (D) true minibatch SGD on least squares f_i = 1/2 (a_i.x - b_i)^2, d = 10, n = 1000 (A, x*, b standard
      normal draws, b = A x* + noise), B = 8, lr = 0.02, M = 1 000 000 from x = 0, 200 steps, with (D) and
      without (D-distinct) replacement.

The engine is `sgdsim.solvers.ParticleSolver` with the arguments the dynamics gives it (the block-vectorized
kernel for every case here), timed in one `advance` call; then the public `sgdsim.simulate` on the same run
without recording (steps 0 and the last only: mean, covariance, loss) and recording every 10 steps (mean,
covariance, loss, and a 60-bin histogram in 1-D; the kernel takes these records itself as its chunks cross
them), each after a first call on a tiny cloud (compilation / cache load excluded, as for the engine), best of
--repeats, against the raw solver's construction (seeding M streams, which simulate does too) plus its run.
The baseline is the same run in NumPy (float64, `default_rng`), timed as the engine is (best of --repeats),
e.g. for (C):
    idx = rng.integers(0, N, (M, B));  x -= lr * (grad f(x) + a[idx].mean(axis=1))
(without replacement: Floyd's algorithm, B vectorized draws). Throughputs are particle-steps per second
(Mps/s = 10^6 of them). Per core = engine / numba.get_num_threads(); the ratio is per core because the NumPy
loop runs on one core.

Each run is also checked: (A) the per-coordinate mean and variance of engine and NumPy against each other and
against the exact Euler–Maruyama OU moments (`sgdsim.particles.theory.ou_scheme_moments`), in standard errors;
(B), (C) engine against NumPy (mean, <x^2>, fraction past the barrier); (D) per-coordinate mean and variance,
engine against NumPy; every simulate run ends bit-identical to the raw solver. A failed check exits 1.

    python benchmarks/particles.py [--quick] [--threads N] [--only A|B|C|C-distinct|D|D-distinct]
                                   [--repeats R] [--no-cold] [--no-simulate]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace

import numba
import numpy as np

from sgdsim.particles.dynamics import SGD, Dynamics, Langevin
from sgdsim.particles.landscapes import DoubleWell, Landscape, Quadratic, Regression, finite_sum_double_well
from sgdsim.particles.simulate import Recorder, simulate
from sgdsim.solvers import ParticleSolver
from sgdsim.solvers.particles import block as particle_block, kernel as particle_kernel
from sgdsim.particles.theory import ou_scheme_moments

SEED = 20240601
Z_MAX = 4.0                 # a check fails when any |difference| exceeds this many standard errors
LONG_RUN_S = 20.0           # an engine run longer than this is timed once, not best of --repeats
CHECK_PARTICLES = 100_000   # NumPy particles for the (untimed) check run when the timed run is shortened
TINY = 8                    # particles of the first call that measures compilation
NUMPY_SLICE = 1 << 12       # particles per slice of the NumPy least-squares step


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    landscape: Landscape
    dynamics: Dynamics
    particles: int
    steps: int
    x0: float
    numpy_steps: int        # steps of the timed NumPy run (throughput scaled to the full run if fewer)


def _regression(n: int = 1000, d: int = 10, seed: int = 3) -> Regression:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d))
    return Regression(a, a @ rng.standard_normal(d) + rng.standard_normal(n))


DOUBLE_WELL_SUM = finite_sum_double_well(256, spread=7.0, seed=1)
LEAST_SQUARES = _regression()
CASES = {
    "A": Case("A", "Langevin EM, d=10 quadratic h=logspace(-1,1), T=0.05, dt=0.01",
              Quadratic(np.logspace(-1.0, 1.0, 10)), Langevin(lr=0.01, temperature=0.05),
              particles=100_000, steps=1000, x0=1.0, numpy_steps=1000),
    "B": Case("B", "Langevin EM, 1-D double well (x^2-1)^2, T=0.2, dt=1e-3", DoubleWell(1),
              Langevin(lr=1e-3, temperature=0.2), particles=1_000_000, steps=2000, x0=-1.0, numpy_steps=200),
    "C": Case("C", "SGD, finite-sum double well N=256, B=2, lr=0.02, with replacement", DOUBLE_WELL_SUM,
              SGD(lr=0.02, batch=2), particles=1_000_000, steps=2000, x0=-1.0, numpy_steps=200),
    "C-distinct": Case("C-distinct", "SGD, finite-sum double well N=256, B=2, lr=0.02, without replacement",
                       DOUBLE_WELL_SUM, SGD(lr=0.02, batch=2, replace=False), particles=1_000_000, steps=2000,
                       x0=-1.0, numpy_steps=200),
    "D": Case("D", "SGD, least squares d=10, n=1000, B=8, lr=0.02, with replacement", LEAST_SQUARES,
              SGD(lr=0.02, batch=8), particles=1_000_000, steps=200, x0=0.0, numpy_steps=10),
    "D-distinct": Case("D-distinct", "SGD, least squares d=10, n=1000, B=8, lr=0.02, without replacement",
                       LEAST_SQUARES, SGD(lr=0.02, batch=8, replace=False), particles=1_000_000, steps=200,
                       x0=0.0, numpy_steps=10),
}


def make_solver(case: Case, particles: int) -> ParticleSolver:
    land = case.landscape
    return ParticleSolver(landscape=land.code, theta=land.theta, data=land.data,
                          x0=np.full((particles, land.dim), case.x0), seed=SEED,
                          **case.dynamics.solver_arguments(land))


def first_call(case: Case) -> dict:
    """Time the first `advance` on a tiny cloud (compilation or cache load) and read the kernel's cache stats.

    `advance` forces its codes to literals, so every first call also logs one cache *miss* for the
    non-literal signature; whether the compiled kernel came from the cache shows in `cache_hits` only (a
    kernel variant already loaded by an earlier case logs neither, and counts as a hit).
    """
    solver = make_solver(case, TINY)
    kernel = particle_block.advance_block if solver.vectorized else particle_kernel.advance
    stats = kernel.stats
    hits0, misses0 = sum(stats.cache_hits.values()), sum(stats.cache_misses.values())
    t0 = time.perf_counter()
    solver.advance(1)
    seconds = time.perf_counter() - t0
    stats = kernel.stats
    hits, misses = sum(stats.cache_hits.values()) - hits0, sum(stats.cache_misses.values()) - misses0
    return dict(seconds=seconds, cache_hit=hits > 0 or misses == 0,
                misses=misses, cache_dir=stats.cache_path,
                kernel="block" if solver.vectorized else "scalar")


def time_engine(case: Case, particles: int, repeats: int) -> dict:
    """Best wall time of up to `repeats` full runs (fresh cloud, same seed; once if a run is long); the NumPy
    baseline is timed the same way (`best_numpy_run`)."""
    walls, cpus, builds, final, identical = [], [], [], None, True
    for _ in range(repeats):
        t0 = time.perf_counter()
        solver = make_solver(case, particles)
        builds.append(time.perf_counter() - t0)
        c0, t0 = time.process_time(), time.perf_counter()
        solver.advance(case.steps)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if solver.first_divergence() is not None:
            raise SystemExit(f"({case.key}) engine run diverged at (step, particle) {solver.first_divergence()}")
        if final is not None:
            identical &= bool(np.array_equal(final, solver.x))
        final = solver.x
        if walls[-1] > LONG_RUN_S:
            break
    best = int(np.argmin(walls))
    return dict(x=final, wall=walls[best], cpu=cpus[best], build=builds[best], runs=len(walls), identical=identical)


def _floyd(rng, n: int, batch: int, m: int) -> np.ndarray:
    """(m, batch) minibatches of distinct indices in [0, n), Floyd's algorithm vectorized over particles."""
    idx = np.empty((m, batch), dtype=np.int64)
    for c, j in enumerate(range(n - batch, n)):
        t = rng.integers(0, j + 1, m)
        seen = np.any(idx[:, :c] == t[:, None], axis=1)
        idx[:, c] = np.where(seen, j, t)
    return idx


def numpy_step(case: Case, rng):
    """The case's update x -> x' in plain vectorized NumPy (a closure over the landscape's arrays)."""
    land, dyn = case.landscape, case.dynamics
    if isinstance(dyn, Langevin):
        dt, noise = dyn.lr, math.sqrt(2.0 * dyn.temperature * dyn.lr)

        def step(x):
            x -= dt * land.grad(x)
            x += noise * rng.standard_normal(x.shape)
        return step
    n, b, lr = land.n_examples, dyn.batch, dyn.lr

    def batch(m):
        return rng.integers(0, n, (m, b)) if dyn.replace else _floyd(rng, n, b, m)
    if isinstance(land, Regression):
        a, y = land.A, land.b

        def step(x):  # in slices of particles, so the gathered rows (slice, B, d) stay in cache
            for lo in range(0, len(x), NUMPY_SLICE):
                xs = x[lo:lo + NUMPY_SLICE]
                idx = batch(len(xs))
                rows = a[idx]
                r = np.einsum("mbk,mk->mb", rows, xs) - y[idx]
                xs -= lr * np.einsum("mb,mbk->mk", r, rows) / b
        return step
    tilts = land.tilts

    def step(x):
        x -= lr * (land.grad(x) + tilts[batch(len(x))].mean(axis=1))
    return step


def numpy_run(case: Case, particles: int, steps: int, seed: int) -> tuple[np.ndarray, float, float]:
    """The same run in plain vectorized NumPy; returns the cloud, the wall and the CPU time."""
    rng = np.random.default_rng(seed)
    step = numpy_step(case, rng)
    x = np.full((particles, case.landscape.dim), case.x0)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step(x)
    return x, time.perf_counter() - t0, time.process_time() - c0


def best_numpy_run(case: Case, particles: int, steps: int, repeats: int):
    """The NumPy run timed as the engine is: best wall time of up to `repeats` runs (same seed, so the same
    cloud; once if a run is long). Returns the cloud, the best wall and its CPU time, and the runs made."""
    best = None
    for runs in range(1, repeats + 1):
        x, wall, cpu = numpy_run(case, particles, steps, SEED)
        if best is None or wall < best[1]:
            best = (x, wall, cpu)
        if wall > LONG_RUN_S:
            break
    return (*best, runs)


def _z(a, b, se):
    return (np.asarray(a) - np.asarray(b)) / np.asarray(se)


def check_A(case: Case, engine: np.ndarray, ref: np.ndarray) -> bool:
    """Per-coordinate mean and variance against the exact Euler–Maruyama OU moments (Gaussian: the scheme is
    linear with Gaussian noise, so se(mean) = sqrt(var/M), se(var) = var sqrt(2/(M-1)))."""
    h = case.landscape.theta
    mean_x, var_x = ou_scheme_moments(np.full(h.shape, case.x0), h, case.dynamics.temperature, case.dynamics.lr,
                                      case.steps, "euler")
    rows = []
    for name, xs in (("engine", engine), ("numpy", ref)):
        m = len(xs)
        rows.append(dict(name=name, m=m, mean=xs.mean(axis=0), var=xs.var(axis=0, ddof=1),
                         se_mean=np.sqrt(var_x / m), se_var=var_x * math.sqrt(2.0 / (m - 1))))
    e, n = rows
    z = {"mean e-x": _z(e["mean"], mean_x, e["se_mean"]), "mean n-x": _z(n["mean"], mean_x, n["se_mean"]),
         "mean e-n": _z(e["mean"], n["mean"], np.hypot(e["se_mean"], n["se_mean"])),
         "var e-x": _z(e["var"], var_x, e["se_var"]), "var n-x": _z(n["var"], var_x, n["se_var"]),
         "var e-n": _z(e["var"], n["var"], np.hypot(e["se_var"], n["se_var"]))}
    print(f"  check (A) after {case.steps} steps: sample variance per coordinate vs the exact Euler–Maruyama OU "
          f"variance; z = difference / standard error (engine M={e['m']}, numpy M={n['m']})")
    print(f"    {'h':>7} {'var exact':>11} {'var engine':>11} {'var numpy':>11} {'z(e-x)':>7} {'z(n-x)':>7} "
          f"{'z(e-n)':>7}")
    for k in range(len(h)):
        print(f"    {h[k]:7.4f} {var_x[k]:11.6f} {e['var'][k]:11.6f} {n['var'][k]:11.6f} "
              f"{z['var e-x'][k]:7.2f} {z['var n-x'][k]:7.2f} {z['var e-n'][k]:7.2f}")
    print(f"    means (exact (1-h dt)^n x0 from {mean_x.min():.3g} to {mean_x.max():.3g}): max |z| "
          f"engine-exact {np.abs(z['mean e-x']).max():.2f}, numpy-exact {np.abs(z['mean n-x']).max():.2f}, "
          f"engine-numpy {np.abs(z['mean e-n']).max():.2f}")
    worst = max(np.abs(v).max() for v in z.values())
    ok = worst < Z_MAX and np.all(np.isfinite(engine)) and np.all(np.isfinite(ref))
    print(f"    max |z| over all {sum(v.size for v in z.values())} comparisons: {worst:.2f} "
          f"(limit {Z_MAX:g}) -> {'ok' if ok else 'FAILED'}")
    return ok


def check_1d(case: Case, engine: np.ndarray, ref: np.ndarray) -> bool:
    """Engine against NumPy after the run (no closed form at finite time): mean, <x^2>, fraction with x > 0."""
    e, n = engine[:, 0], ref[:, 0]
    print(f"  check ({case.key}) after {case.steps} steps: engine (M={len(e)}) vs numpy (M={len(n)}); z = difference / "
          f"standard error")
    ok = bool(np.all(np.isfinite(e)) and np.all(np.isfinite(n)))
    for label, fe, fn in (("mean x", e, n), ("<x^2>", e * e, n * n), ("P(x > 0)", (e > 0) * 1.0, (n > 0) * 1.0)):
        se = math.sqrt(fe.var(ddof=1) / len(fe) + fn.var(ddof=1) / len(fn))
        z = (fe.mean() - fn.mean()) / se
        ok &= abs(z) < Z_MAX
        print(f"    {label:>9}: engine {fe.mean():.6f}  numpy {fn.mean():.6f}  (se {se:.2g})  z = {z:6.2f}")
    print(f"    -> {'ok' if ok else 'FAILED'} (limit |z| < {Z_MAX:g})")
    return ok


def check_moments(case: Case, engine: np.ndarray, ref: np.ndarray) -> bool:
    """Per-coordinate mean and variance, engine against NumPy (se of a variance from the fourth moment)."""
    rows = []
    for xs in (engine, ref):
        c = xs - xs.mean(axis=0)
        var = np.mean(c ** 2, axis=0)
        se_var = np.sqrt((np.mean(c ** 4, axis=0) - var ** 2) / len(xs))
        rows.append((xs.mean(axis=0), np.sqrt(var / len(xs)), var, se_var))
    (me, sme, ve, sve), (mn, smn, vn, svn) = rows
    z_mean, z_var = _z(me, mn, np.hypot(sme, smn)), _z(ve, vn, np.hypot(sve, svn))
    worst = max(np.abs(z_mean).max(), np.abs(z_var).max())
    ok = bool(worst < Z_MAX and np.all(np.isfinite(engine)) and np.all(np.isfinite(ref)))
    print(f"  check ({case.key}) after {case.steps} steps: per-coordinate mean and variance, engine (M={len(engine)}) "
          f"vs numpy (M={len(ref)})")
    print(f"    mean engine {np.array2string(me, precision=4, max_line_width=200)}\n    mean numpy  {np.array2string(mn, precision=4, max_line_width=200)}")
    print(f"    var  engine {np.array2string(ve, precision=5, max_line_width=200)}\n    var  numpy  {np.array2string(vn, precision=5, max_line_width=200)}")
    print(f"    max |z| over {2 * len(me)} comparisons: {worst:.2f} (limit {Z_MAX:g}) -> {'ok' if ok else 'FAILED'}")
    return ok


def time_simulate(case: Case, particles: int, raw: dict, repeats: int) -> dict:
    """The public `simulate` on the same run, without recording and recording every 10 steps (best of
    `repeats`, as the engine); each must end bit-identical to the raw solver. Its overhead is against the raw
    solver's construction (seeding M streams) plus its run, which `simulate` does too."""
    land = case.landscape
    histogram = (0, np.linspace(-2.5, 2.5, 61)) if land.dim == 1 else None
    recorders = {"simulate, no recording": Recorder(every=10 ** 9),
                 "simulate, recording every 10 steps": Recorder(every=10, histogram=histogram)}
    out = {}
    for recorder in recorders.values():  # first calls (cache loads) excluded, as for the raw solver
        simulate(land, case.dynamics, np.full((TINY, land.dim), case.x0), n_steps=20, seed=SEED, recorder=recorder,
                 progress=False)
    base = raw["build"] + raw["wall"]
    for label, recorder in recorders.items():
        walls = []
        for _ in range(repeats):
            x0 = np.full((particles, land.dim), case.x0)
            t0 = time.perf_counter()
            res = simulate(land, case.dynamics, x0, n_steps=case.steps, seed=SEED, recorder=recorder,
                           progress=False)
            walls.append(time.perf_counter() - t0)
            if walls[-1] > LONG_RUN_S:
                break
        wall = min(walls)
        same = bool(np.array_equal(res.positions, raw["x"]))
        records = len(next(iter(res.observables.values()))[0]) if res.observables else 0
        out[label] = dict(wall=wall, same=same, slowdown=wall / base - 1.0)
        print(f"  {label}: best of {len(walls)} {wall:.3f} s wall -> {particles * case.steps / wall / 1e6:.2f} Mps/s, "
              f"{100 * (wall / base - 1):+.1f}% vs the raw solver's construction + run ({raw['build']:.3f} + "
              f"{raw['wall']:.3f} s; {records} records); final cloud bit-identical to the raw solver: "
              f"{'yes' if same else 'NO'}")
    if len(out) == 2:
        walls = [v["wall"] for v in out.values()]
        print(f"  recording every 10 steps costs {100 * (walls[1] / walls[0] - 1):+.1f}% over simulate without "
              f"recording; simulate without recording is {100 * (walls[0] / raw['wall'] - 1):+.1f}% over the raw "
              f"run alone (construction excluded)")
    return out


def cold_first_call(case: Case, threads: int) -> dict:
    """First call in fresh processes with NUMBA_CACHE_DIR at an empty temp dir (compile), then again (cache)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="sgdsim-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            proc = subprocess.run([sys.executable, __file__, "--first-call-only", case.key, "--threads", str(threads)],
                                  env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"first-call subprocess failed:\n{proc.stderr}")
            out[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def run_case(case: Case, threads: int, repeats: int, with_simulate: bool) -> dict:
    m = case.particles
    print(f"\n({case.key}) {case.title}: M={m}, {case.steps} steps, x0={case.x0:g}")
    fc = first_call(case)
    print(f"  first call ({TINY} particles, 1 step, {fc['kernel']} kernel): {fc['seconds']:.3f} s, "
          f"{'cache hit' if fc['cache_hit'] else 'cache miss (compiled)'} [{fc['cache_dir']}]")

    eng = time_engine(case, m, repeats)
    work = m * case.steps
    rate = work / eng["wall"]
    print(f"  engine: {case.steps} steps in one advance(), best of {eng['runs']}: {eng['wall']:.3f} s wall, "
          f"{eng['cpu']:.3f} s CPU -> {rate / 1e6:.2f} Mps/s, {rate / threads / 1e6:.2f} Mps/s per thread "
          f"({threads} threads), {work / eng['cpu'] / 1e6:.2f} Mps per CPU-s"
          + ("" if eng["runs"] == 1 else f"; repeats bit-identical: {'yes' if eng['identical'] else 'NO'}"))
    sim = time_simulate(case, m, eng, repeats) if with_simulate else {}

    n_np = min(case.numpy_steps, case.steps)
    ref, wall, np_cpu, np_runs = best_numpy_run(case, m, n_np, repeats)
    np_rate = m * n_np / wall
    scaled = "" if n_np == case.steps else f" (timed {n_np} of {case.steps} steps, throughput scaled)"
    print(f"  numpy : {n_np} steps, best of {np_runs}: {wall:.3f} s wall, {np_cpu:.3f} s CPU -> "
          f"{np_rate / 1e6:.2f} Mps/s, {m * n_np / np_cpu / 1e6:.2f} Mps per CPU-s{scaled}")
    print(f"  engine / numpy per core: {rate / threads / np_rate:.2f} by wall time, "
          f"{(work / eng['cpu']) / (m * n_np / np_cpu):.2f} by CPU time")
    if n_np != case.steps:
        m_check = min(m, CHECK_PARTICLES)
        ref, wall, _ = numpy_run(case, m_check, case.steps, SEED + 1)
        print(f"  numpy check run (untimed for the table): {m_check} particles x {case.steps} steps, {wall:.1f} s")

    check = check_A if case.key == "A" else check_1d if case.landscape.dim == 1 else check_moments
    ok = check(case, eng["x"], ref) and eng["identical"] and all(v["same"] for v in sim.values())
    return dict(case=case.key, engine=rate, per_core=rate / threads, per_cpu=work / eng["cpu"], numpy=np_rate,
                ratio=rate / threads / np_rate, first=fc["seconds"], hit=fc["cache_hit"], ok=ok,
                scaled=bool(scaled), simulate={k: v["slowdown"] for k, v in sim.items()})


def _first_call_only(key: str) -> None:
    fc = first_call(CASES[key])
    print(json.dumps(dict(seconds=fc["seconds"], cache_hit=fc["cache_hit"])))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10x fewer particles (smoke run)")
    ap.add_argument("--threads", type=int, default=None, help="Numba threads (default: numba's default)")
    ap.add_argument("--only", choices=sorted(CASES), help="run one case")
    ap.add_argument("--repeats", type=int, default=3,
                    help=f"engine runs timed, best kept (default 3; once when a run exceeds {LONG_RUN_S:g} s)")
    ap.add_argument("--no-cold", action="store_true",
                    help="skip the fresh-process compile timing with an empty NUMBA_CACHE_DIR")
    ap.add_argument("--no-simulate", action="store_true", help="skip the timing of the public simulate API")
    ap.add_argument("--first-call-only", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.threads is not None:
        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            ap.error(f"--threads must be in [1, {numba.config.NUMBA_NUM_THREADS}] (NUMBA_NUM_THREADS), "
                     f"got {args.threads}")
        numba.set_num_threads(args.threads)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.first_call_only:
        _first_call_only(args.first_call_only)
        return 0

    threads = numba.get_num_threads()
    cases = [CASES[args.only]] if args.only else list(CASES.values())
    if args.quick:
        cases = [replace(c, particles=c.particles // 10) for c in cases]
    load0 = os.getloadavg()[0]
    print(f"sgdsim particle benchmark: numpy {np.__version__}, numba {numba.__version__}, python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, {threads} numba threads"
          f"{' (quick: 10x fewer particles)' if args.quick else ''}; load average (1 min) {load0:.2f}")
    if load0 > 0.5:
        print("  note: load above 0.5 means other processes are (or were, the average decays over a minute) "
              "using the CPUs; timings are then lower bounds")

    results = [run_case(c, threads, args.repeats, not args.no_simulate) for c in cases]
    cold = {} if args.no_cold else {c.key: cold_first_call(c, threads) for c in cases}
    for key, cc in cold.items():
        print(f"\n({key}) first call in a fresh process, NUMBA_CACHE_DIR empty: {cc['cold']['seconds']:.2f} s "
              f"(cache {'hit' if cc['cold']['cache_hit'] else 'miss'}); again with that cache filled: "
              f"{cc['warm']['seconds']:.2f} s (cache {'hit' if cc['warm']['cache_hit'] else 'miss'})")
        if not cc["warm"]["cache_hit"]:
            print("    (a miss with a filled cache: the kernel sources changed between the two processes, or "
                  "Numba could not use the cache)")

    print(f"\nMps/s = million particle-steps per second (wall); per-core = engine / {threads} numba threads; "
          f"per CPU-s = per second of process CPU time;\nratio/core = engine per-core / numpy (single-threaded)")
    print(f"{'case':<11}{'engine Mps/s':>13}{'per-core':>10}{'per CPU-s':>10}{'numpy Mps/s':>13}{'ratio/core':>11}"
          f"{'sim/raw':>9}{'rec10/raw':>10}{'compile s':>11}{'':<7}{'cold s':>8}  check")
    for r in results:
        cold_s = f"{cold[r['case']]['cold']['seconds']:8.2f}" if r["case"] in cold else f"{'-':>8}"
        sim = [r["simulate"].get(k) for k in ("simulate, no recording", "simulate, recording every 10 steps")]
        sim_s = "".join(f"{'-':>{w}}" if v is None else f"{100 * v:+{w - 1}.0f}%" for v, w in zip(sim, (9, 10)))
        print(f"{r['case']:<11}{r['engine'] / 1e6:13.2f}{r['per_core'] / 1e6:10.2f}{r['per_cpu'] / 1e6:10.2f}"
              f"{r['numpy'] / 1e6:12.2f}{'*' if r['scaled'] else ' '}{r['ratio']:11.2f}{sim_s}"
              f"{r['first']:11.3f} {'(hit) ' if r['hit'] else '(miss)'}{cold_s}  {'ok' if r['ok'] else 'FAILED'}")
    print("sim/raw, rec10/raw: wall time of simulate (no recording; recording every 10 steps) over the raw solver's "
          "construction + run")
    print("compile s: first call in this process (tiny cloud), (hit) = kernel loaded from Numba's cache; "
          "cold s: fresh process, empty cache")
    if any(r["scaled"] for r in results):
        print("* numpy timed on fewer steps and scaled (see the case's lines above)")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
