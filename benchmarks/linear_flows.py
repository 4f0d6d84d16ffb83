"""Time the deep-linear ODEs three ways, Dormand–Prince 5(4) on the same right-hand side, the same tolerances,
the same output times (the same run): sgdsim's compiled loop (`solvers.rk_kernel`, Numba, the right-hand side
compiled too), its NumPy twin (`solvers.rk.integrate` calling the NumPy right-hand side of `deep_linear.flows`), and
plain `scipy.integrate.solve_ivp(method="RK45")` on that NumPy right-hand side:

  (A) end-to-end ODE (Arora, Cohen & Hazan 2018 Thm 1), depth 3, l_4 loss, the deep-linear-acceleration data
      (X (256, 12), one output): the scenario's own ODE, small, where per-step overhead dominates;
  (B) end-to-end ODE, depth 3, l_4 loss, X (256, 16), Y (256, 8) (one SVD per call);
  (C) factor gradient flow of the network of (B) (widths 16, 16), balanced start;
  (D) factor flow with X (512, 64), Y (512, 32), widths 64: BLAS-bound, where the loop overhead matters less.

The three use the same error norm and step-size control (Hairer, Nørsett & Wanner II.4): the compiled loop
and its twin take the same steps; solve_ivp's count is close. The figure of merit is wall time (best of
--repeats), with steps and RHS calls beside it; the compile time (cold Numba cache: run with
NUMBA_CACHE_DIR=$(mktemp -d) to see it) is printed once, separately. Agreement: the largest relative
difference of the final W_e, compiled vs NumPy twin (rounding, ~1e-15) and compiled vs solve_ivp (~ rtol).

    python benchmarks/linear_flows.py [--repeats R] [--rtol 1e-8] [--only A|B|C|D]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from scipy.integrate import solve_ivp

from sgdsim.deep_linear import training as dl
from sgdsim.networks.datasets import load_or_default
from sgdsim.solvers.deep_linear import flows as lf
from sgdsim.solvers import rk
from sgdsim.solvers import rk_kernel
from timing import best_time

CASES = {
    "A": dict(title="end-to-end ODE, N=3, p=4, data/lp_regression.npz (d 12->1, n=256)", data="lp_regression.npz",
              width=12, p=4.0, t_end=100.0, kind="end-to-end"),
    "B": dict(title="end-to-end ODE, N=3, p=4, d 16->8, n=256", n=256, d_in=16, d_out=8, width=16, p=4.0,
              t_end=20.0, kind="end-to-end"),
    "C": dict(title="factor flow, N=3, p=4, d 16->16->16->8, n=256", n=256, d_in=16, d_out=8, width=16, p=4.0,
              t_end=20.0, kind="factors"),
    "D": dict(title="factor flow, N=3, p=2, d 64->64->64->32, n=512", n=512, d_in=64, d_out=32, width=64,
              p=2.0, t_end=5.0, kind="factors"),
}


def problem(case: dict, seed: int = 7):
    """(NumPy RHS, compiled RHS as (name, X, Y, fpar, ipar), y0, y -> W_e)."""
    rng = np.random.default_rng(seed)
    if "data" in case:
        X, Y, _ = load_or_default("", case["data"])
    else:
        X = rng.standard_normal((case["n"], case["d_in"])) * np.geomspace(1.0, 0.1, case["d_in"])
        Y = X @ rng.standard_normal((case["d_in"], case["d_out"])) / np.sqrt(case["d_in"])
    d_out, d_in = Y.shape[1], X.shape[1]
    We0 = 0.3 * rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)
    if case["kind"] == "end-to-end":
        flow = lf.EndToEndFlow(3, X, Y, case["p"])
        name = "single-output" if d_out == 1 else "end-to-end"
        return (flow.rhs, (name, X, Y, [case["p"], 0.0], [3, d_out, d_in]), We0.ravel(),
                lambda y: y.reshape(flow.shape))
    flow = lf.FactorFlow([(case["width"], d_in), (case["width"], case["width"]), (d_out, case["width"])],
                         X, Y, case["p"])
    y0 = flow.pack(dl.balanced_init(We0, 3, [case["width"]] * 2))
    ipar = [3] + [d for shape in flow.shapes for d in shape]
    return flow.rhs, ("factors", X, Y, [case["p"], 0.0], ipar), y0, lambda y: lf.end_to_end(flow.unpack(y))


def counted(f):
    calls = [0]

    def g(t, y):
        calls[0] += 1
        return f(t, y)
    return g, calls


def run_case(key: str, repeats: int, rtol: float) -> dict:
    case = CASES[key]
    rhs, (name, X, Y, fpar, ipar), y0, end_to_end = problem(case)
    atol = rtol * 1e-2
    t_eval = np.linspace(0.0, case["t_end"], 21)
    t_jit, jit = best_time(lambda: rk_kernel.integrate(name, y0, t_eval, X, Y, fpar, ipar, rtol=rtol,
                                                            atol=atol), repeats)
    f1, c1 = counted(rhs)
    t_numpy, sol = best_time(lambda: rk.integrate(f1, y0, t_eval, rtol=rtol, atol=atol), repeats)
    f2, c2 = counted(rhs)
    t_scipy, ref = best_time(lambda: solve_ivp(f2, (0.0, case["t_end"]), y0, method="RK45", t_eval=t_eval,
                                                   rtol=rtol, atol=atol), repeats)
    assert jit.status == sol.status == "complete" and ref.success, (jit.message, sol.message, ref.message)
    We_jit, We, We_ref = end_to_end(jit.y[-1]), end_to_end(sol.y[-1]), end_to_end(ref.y[:, -1])
    t_rhs = best_time(lambda: [rhs(0.0, y0) for _ in range(10)], 5)[0] / 10
    scale = np.abs(We_ref).max()
    return dict(key=key, title=case["title"], size=y0.size, jit=t_jit, numpy=t_numpy, scipy=t_scipy,
                steps=jit.n_steps, numpy_steps=sol.n_steps, evals=jit.n_evaluations, scipy_evals=c2[0] // repeats,
                rhs_us=t_rhs * 1e6, twin_diff=float(np.abs(We_jit - We).max() / scale),
                scipy_diff=float(np.abs(We_jit - We_ref).max() / scale))


def compile_time() -> float:
    """Seconds for the first call of the kernel in this process (compiling, or loading the on-disk cache)."""
    rhs, (name, X, Y, fpar, ipar), y0, _ = problem(CASES["B"])
    start = time.perf_counter()
    rk_kernel.integrate(name, y0, [0.0, 0.1], X, Y, fpar, ipar)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--only", choices=sorted(CASES))
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, numpy {np.__version__}; rtol={args.rtol:g}, "
          f"atol=rtol/100, best of {args.repeats}")
    print(f"# compiled kernel: first call {compile_time():.1f}s (compile, or load from the Numba cache)")
    print(f"{'case':<4} {'unknowns':>8} {'compiled':>9} {'numpy rk':>9} {'solve_ivp':>9} {'vs numpy':>8} "
          f"{'vs scipy':>8} {'steps (jit/np)':>14} {'RHS calls (ours/scipy)':>22} {'one RHS':>8} "
          f"{'diff twin':>9} {'diff scipy':>10}")
    for key in ([args.only] if args.only else sorted(CASES)):
        r = run_case(key, args.repeats, args.rtol)
        print(f"{key:<4} {r['size']:>8} {r['jit']:>8.4f}s {r['numpy']:>8.3f}s {r['scipy']:>8.3f}s "
              f"{r['numpy'] / r['jit']:>7.1f}x {r['scipy'] / r['jit']:>7.1f}x {r['steps']:>6}/{r['numpy_steps']:<7} "
              f"{r['evals']:>10}/{r['scipy_evals']:<11} {r['rhs_us']:>6.0f}us {r['twin_diff']:>9.1e} "
              f"{r['scipy_diff']:>10.1e}   {r['title']}")


if __name__ == "__main__":
    main()
