"""Time the exact high-dimensional SGD engines, each against plain NumPy in the same run, on one core
(numba.set_num_threads(1); NumPy's BLAS is whatever the machine has, usually also one thread for these sizes):

  (A) online teacher-student SGD on a soft committee machine (erf units, K = M = 2, N = 1000): the compiled
      kernel (`solvers.highdim.committee_sgd.advance`, 16 students, each its own stream) in student-steps per
      second, against a plain NumPy loop of the same update for one student (np.random.Generator draws,
      W @ x, np.outer), and against NumPy stepping all 16 students at once (batched draws and einsum).
      The network trainer's kernel does not fit: its activations are ReLU/tanh/linear and it trains on a
      fixed data set, while online teacher-student needs erf and a fresh Gaussian input every step.
  (B) the discrete Volterra equation for the risk, 10^4 time points and d = 1000 modes: building F and K
      (O(n d)) plus the O(n^2) solve, compiled, against the NumPy twin's solve; and the trapezoidal rule.
  (C) the committee-machine ODE (K = M = 3, t in [0, 100], one student, dopri5 rtol 1e-8) through
      `solvers.rk.integrate` with the compiled right-hand side against its NumPy twin.

    python benchmarks/highdim.py [--repeats R] [--N 1000]
"""
from __future__ import annotations

import argparse
import math
import platform

import numba
import numpy as np
from scipy.special import erf

from sgdsim.highdim import committee as hd
from sgdsim.highdim import risk as hr
from sgdsim.solvers.highdim import committee_sgd as cs
from sgdsim.solvers.highdim import volterra as vo
from sgdsim.solvers.rng import seed_states
from timing import best_time


def numpy_loop(W, v, Wstar, vstar, lr, steps, rng):
    """One student, one step at a time: the plain NumPy version of `committee_sgd.advance`."""
    N = W.shape[1]
    scale = 1 / math.sqrt(N)
    for _ in range(steps):
        x = rng.standard_normal(N)
        zeta = rng.standard_normal()
        lam, nu = W @ x * scale, Wstar @ x * scale
        delta = vstar @ erf(nu / math.sqrt(2)) + 0.0 * zeta - v @ erf(lam / math.sqrt(2))
        W += np.outer(lr * scale * v * math.sqrt(2 / math.pi) * np.exp(-lam * lam / 2) * delta, x)


def numpy_batched(W, v, Wstar, vstar, lr, steps, rng):
    """All students per step, batched NumPy."""
    S, K, N = W.shape
    scale = 1 / math.sqrt(N)
    for _ in range(steps):
        x = rng.standard_normal((S, N))
        lam, nu = np.einsum("skn,sn->sk", W, x) * scale, x @ Wstar.T * scale
        delta = erf(nu / math.sqrt(2)) @ vstar - np.sum(v * erf(lam / math.sqrt(2)), axis=1)
        W += (lr * scale * v * math.sqrt(2 / math.pi) * np.exp(-lam * lam / 2) * delta[:, None])[:, :, None] \
            * x[:, None, :]


def bench_sgd(N: int, repeats: int) -> None:
    K = M = 2
    S, steps = 16, 400
    t = hd.teacher(N, M, 0)
    rng = np.random.default_rng(0)
    W0 = hd.initial_students(t, K, S, 0.3, 0.05, 0)
    v = np.ones((S, K))
    states = seed_states(0, S)
    cs.advance(W0.copy(), v.copy(), t.W, t.v, states.copy(), 1.0, 0.0, 0.0, 1)   # compile / load the cache
    kernel = best_time(lambda: cs.advance(W0.copy(), v.copy(), t.W, t.v, states.copy(), 1.0, 0.0, 0.0, steps),
                       repeats)[0] / (S * steps)
    loop = best_time(lambda: numpy_loop(W0[0].copy(), v[0], t.W, t.v, 1.0, steps, rng), repeats)[0] / steps
    batched = best_time(lambda: numpy_batched(W0.copy(), v, t.W, t.v, 1.0, steps // 4, rng), repeats)[0] / (S * steps // 4)
    print(f"(A) online SGD, committee K=M=2, N={N}: student-steps per second, one core")
    print(f"    compiled kernel      {1 / kernel:12,.0f}")
    print(f"    NumPy loop, 1 student {1 / loop:11,.0f}   kernel / loop    = {loop / kernel:5.1f}x")
    print(f"    NumPy, 16 batched    {1 / batched:12,.0f}   kernel / batched = {batched / kernel:5.1f}x")


def bench_volterra(repeats: int) -> None:
    n, d = 10_000, 1000
    lam, xstar = hr.power_law(d, 2.0, 0.25)
    lr = 0.5 * hr.critical_lr(lam, 4)
    hr.risk_curve(lam, xstar ** 2, lr=lr, batch=4, steps=10)
    compiled = best_time(lambda: hr.risk_curve(lam, xstar ** 2, lr=lr, batch=4, steps=n - 1), repeats)[0]
    F, K = np.empty(n), np.empty(n)
    vo.discrete_terms(lam, xstar ** 2, lr, 4.0, 0.0, n, F, K)
    twin = best_time(lambda: vo.solve_discrete_numpy(F, K), 1)[0]
    trap = best_time(lambda: hr.risk_curve_continuous(lam, xstar ** 2, lr=lr, batch=4, t_max=(n - 1) * lr, h=lr),
                     repeats)[0]
    print(f"(B) Volterra equation, {n:,} time points, d = {d} modes")
    print(f"    discrete, compiled (terms + solve) {compiled:7.3f} s   (target < 1 s)")
    print(f"    discrete solve, NumPy twin          {twin:7.3f} s   ({twin / compiled:.1f}x the compiled total)")
    print(f"    continuous, trapezoidal rule        {trap:7.3f} s")


def bench_ode(repeats: int) -> None:
    t = hd.teacher(500, 3, 0)
    W0 = hd.initial_students(t, 3, 1, 0.3, 0.02, 0)
    Q0, R0 = hd.order_parameters(W0, t)
    times = np.linspace(0, 100, 101)
    hd.ode(Q0, R0, np.ones((1, 3)), t, [0, 1], lr=1.0)
    fast = best_time(lambda: hd.ode(Q0, R0, np.ones((1, 3)), t, times, lr=1.0), repeats)[0]
    slow = best_time(lambda: hd.ode(Q0, R0, np.ones((1, 3)), t, times, lr=1.0, engine="numpy"), 1)[0]
    print("(C) committee ODE K=M=3, t in [0, 100], dopri5 (solvers.rk.integrate)")
    print(f"    compiled right-hand side {fast:7.3f} s;  NumPy twin {slow:7.3f} s  ({slow / fast:.1f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--N", type=int, default=1000)
    args = ap.parse_args()
    numba.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, numba {numba.__version__}, numpy {np.__version__}, "
          f"one Numba thread")
    bench_sgd(args.N, args.repeats)
    bench_volterra(args.repeats)
    bench_ode(args.repeats)


if __name__ == "__main__":
    main()
