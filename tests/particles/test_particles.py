"""The particle engine (solvers/particles/kernel.py, solvers/particles/solver.py) driven through `simulate`, tested
against what it did not compute itself: exact OU moments (continuous and exactly discrete), weak orders of
convergence, exact stationary covariances of SGD, closed-form linear recursions, analytic divergence and
first-passage steps, the perturbed-GD escape law, and bit-identity across threads and chunkings.

Statistical tests use fixed seeds and tolerances of 4 standard errors estimated from the sample; each one
also checks that the nearest wrong answer would have been rejected.

Numba compiles each (landscape, gradient source, noise, scheme) combination once; the tests reuse seven:
quadratic/full/isotropic/{heun, euler}, quadratic/full/none/euler, quadratic/tilt/none/euler,
least-squares/minibatch/none/euler, least-squares/full/gradient/euler, strict-saddle/full/none/euler.
"""
import math
import os
import subprocess
import sys
import textwrap
from itertools import combinations

import numpy as np
import pytest
import scipy.stats

from sgdsim.particles import dynamics as D
from sgdsim.particles import landscapes as L
from sgdsim.particles import theory
from sgdsim.io.runfile import RunWriter
from sgdsim.io.runread import open_run
from sgdsim.particles.simulate import Recorder, simulate
from sgdsim.solvers import ParticleSolver, Target

# Every recording interval is one call into the compiled kernel plus NumPy reductions over the cloud, so the
# tests record at few steps.
NOTHING = Recorder(every=10 ** 9, mean=False, covariance=False, loss=False)  # only steps 0 and n_steps


def _run(landscape, dynamics, x0, n_steps, seed, recorder=NOTHING, **kw):
    return simulate(landscape, dynamics, np.asarray(x0, float), n_steps=n_steps, seed=seed,
                    recorder=recorder, progress=False, **kw)


def _moments(x):
    """Per-coordinate mean and variance with their standard errors estimated from the sample."""
    m = len(x)
    mean = x.mean(axis=0)
    c = x - mean
    var = np.mean(c ** 2, axis=0)
    m4 = np.mean(c ** 4, axis=0)
    return mean, np.sqrt(var / m), var, np.sqrt((m4 - var ** 2) / m)


def _solver(landscape, dynamics, x0, seed, **kw):
    return ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data,
                          x0=np.asarray(x0, float), seed=seed, **dynamics.solver_arguments(landscape), **kw)


# ---------------------------------------------------------------------------------------------------------
# Ornstein-Uhlenbeck: f = 1/2 sum h_k x_k^2, dx = -h x dt + sqrt(2T) dW

H = np.array([0.5, 2.0])
OU = L.Quadratic(H)
TEMP = 0.5


def test_ou_heun_small_dt_matches_continuous_moments():
    dt, n, m = 0.01, 50, 40_000
    out = _run(OU, D.Langevin(lr=dt, temperature=TEMP, scheme="heun"), np.ones((m, 2)), n, seed=1)
    mean, se_mean, var, se_var = _moments(out.positions)
    exact_mean, exact_var = theory.ou_moments(np.ones(2), H, TEMP, n * dt)
    assert np.all(np.abs(mean - exact_mean) < 4 * se_mean)
    assert np.all(np.abs(var - exact_var) < 4 * se_var)
    # a wrong noise amplitude (sqrt(T dt) instead of sqrt(2 T dt)) would be rejected by far
    assert np.all(np.abs(var - exact_var / 2) > 20 * se_var)


@pytest.mark.parametrize("scheme", ["euler", "heun"])
def test_ou_large_dt_matches_exactly_discrete_moments(scheme):
    """At dt = 0.2 the scheme's exact discrete moments are right and the continuous ones visibly wrong."""
    dt, n, m = 0.2, 10, 100_000
    out = _run(OU, D.Langevin(lr=dt, temperature=TEMP, scheme=scheme), np.ones((m, 2)), n, seed=2)
    mean, se_mean, var, se_var = _moments(out.positions)
    disc_mean, disc_var = theory.ou_scheme_moments(np.ones(2), H, TEMP, dt, n, scheme)
    assert np.all(np.abs(mean - disc_mean) < 4 * se_mean)
    assert np.all(np.abs(var - disc_var) < 4 * se_var)
    cont_mean, cont_var = theory.ou_moments(np.ones(2), H, TEMP, n * dt)
    z_cont = np.concatenate([np.abs(mean - cont_mean) / se_mean, np.abs(var - cont_var) / se_var])
    assert z_cont.max() > 8  # the continuous-time prediction is rejected
    other = {"euler": "heun", "heun": "euler"}[scheme]
    other_mean, other_var = theory.ou_scheme_moments(np.ones(2), H, TEMP, dt, n, other)
    assert np.max(np.abs(var - other_var) / se_var) > 8  # and so is the other scheme's


def _weighted_slope(dts, errors, ses):
    """Least-squares slope of log|error| on log dt weighted by the propagated MC error SE/|error|."""
    x, y = np.log(dts), np.log(np.abs(errors))
    w = (np.abs(errors) / ses) ** 2
    xbar = np.sum(w * x) / np.sum(w)
    sxx = np.sum(w * (x - xbar) ** 2)
    return np.sum(w * (x - xbar) * y) / sxx, 1.0 / np.sqrt(sxx)


@pytest.mark.parametrize("scheme, order, dts, m", [
    ("heun", 2.0, [1.0, 0.5, 0.25], 1_000_000),
    ("euler", 1.0, [0.25, 0.125, 0.0625], 400_000),
])
def test_weak_order(scheme, order, dts, m):
    """E[x^2] at t = 2 for dx = -x dt + sqrt(2 T) dW, T = 0.5, x0 = 1 against its exact value.

    The dt ranges are chosen so that every error is many standard errors large: Heun's error at dt = 0.125
    would be only ~3 SE at a million particles, so its range is dt = 1, 0.5, 0.25 (errors ~250, 50, 11 SE;
    z = h dt = 1 is close enough to the asymptotic regime: the exact discrete errors fall by 3.8 and 4.3
    per halving). Euler's errors are ~50, 25, 11 SE. The slope is fitted by least squares on log-log axes
    with the MC standard errors propagated, and the other scheme's order must be rejected."""
    t, x0 = 2.0, 1.0
    exact_mean, exact_var = theory.ou_moments(x0, 1.0, TEMP, t)
    exact = exact_mean ** 2 + exact_var
    errors, ses = [], []
    for dt in dts:
        n = int(round(t / dt))
        out = _run(L.Quadratic([1.0]), D.Langevin(lr=dt, temperature=TEMP, scheme=scheme),
                   np.full((m, 1), x0), n, seed=3)
        x2 = out.positions[:, 0] ** 2
        errors.append(x2.mean() - exact)
        ses.append(x2.std() / np.sqrt(m))
        # the exact discrete value of the same scheme is matched at every dt
        dm, dv = theory.ou_scheme_moments(x0, 1.0, TEMP, dt, n, scheme)
        assert abs(x2.mean() - (dm ** 2 + dv)) < 4 * ses[-1]
    errors, ses = np.array(errors), np.array(ses)
    assert np.all(np.abs(errors) > 8 * ses), (errors, ses)  # errors are resolved, not noise
    slope, slope_se = _weighted_slope(np.array(dts), errors, ses)
    assert abs(slope - order) < max(0.25, 3 * slope_se), (slope, slope_se)
    wrong = 3.0 - order  # 1 for Heun, 2 for Euler
    assert abs(slope - wrong) > max(0.25, 3 * slope_se)


# ---------------------------------------------------------------------------------------------------------
# Minibatch SGD on least squares

_rng = np.random.default_rng(3)
A_LS = _rng.standard_normal((16, 2))
B_LS = A_LS @ np.array([0.5, -1.0]) + 0.7 * _rng.standard_normal(16)
LSQ = L.Regression(A_LS, B_LS)
MOMENTS = theory.least_squares_moments(A_LS, B_LS)


@pytest.mark.parametrize("replace", [True, False])
def test_sgd_stationary_covariance_least_squares(replace):
    """Start at x*, burn in 120 steps (the second-moment map of these data contracts by 0.76 per step, so
    the covariance is within 1e-14 of stationary; the mean stays exactly x*), compare the cloud's covariance
    about x* with the exact finite-lr stationary covariance (multiplicative minibatch noise included)."""
    lr, batch, m = 0.2, 4, 50_000
    out = _run(LSQ, D.SGD(lr=lr, batch=batch, replace=replace), np.tile(MOMENTS.x_star, (m, 1)), 120, seed=4)
    e = out.positions - MOMENTS.x_star
    se_mean = e.std(axis=0) / np.sqrt(m)
    assert np.all(np.abs(e.mean(axis=0)) < 4 * se_mean)
    prods = e[:, :, None] * e[:, None, :]
    S_hat = prods.mean(axis=0)
    se = prods.std(axis=0) / np.sqrt(m)
    S = theory.sgd_stationary_covariance(A_LS, B_LS, lr, batch, replace=replace)
    assert np.all(np.abs(S_hat - S) < 4 * se), ((S_hat - S) / se)
    # the wrong answers are rejected: the continuous-time (small-lr) Lyapunov solution and the covariance
    # of the other sampling scheme differ from the measurement by many standard errors
    S_cont = theory.lyapunov_continuous(MOMENTS.hessian, MOMENTS.noise_covariance, lr, batch)
    assert np.max(np.abs(S_hat - S_cont) / se) > 10
    S_other = theory.sgd_stationary_covariance(A_LS, B_LS, lr, batch, replace=not replace)
    assert np.max(np.abs(S_hat - S_other) / se) > 10


def test_sgd_full_batch_without_replacement_is_gradient_descent():
    """B = N distinct examples: the minibatch mean is the full gradient (summed in another order)."""
    lr, n = 0.2, 30
    x0 = np.array([[2.0, -1.0], [0.0, 3.0]])
    out = _run(LSQ, D.SGD(lr=lr, batch=16, replace=False), x0, n, seed=5)
    x = x0.copy()
    for _ in range(n):
        x = x - lr * LSQ.grad(x)
    np.testing.assert_allclose(out.positions, x, rtol=1e-12, atol=1e-13)
    out_r = _run(LSQ, D.SGD(lr=lr, batch=16, replace=True), x0, n, seed=5)
    assert np.max(np.abs(out_r.positions - x)) > 1e-3  # with replacement there is noise


# ---------------------------------------------------------------------------------------------------------
# State-dependent gradient-noise Langevin: one step has covariance lr 2T C(x0)

def test_gradient_noise_langevin_one_step_covariance():
    rng = np.random.default_rng(8)
    A = rng.standard_normal((12, 3)) @ np.array([[1.0, 0.9, 0.2], [0.0, 0.5, -0.7], [0.0, 0.0, 0.4]])
    ls = L.Regression(A, rng.standard_normal(12))
    x0 = np.array([0.8, -0.5, 1.2])
    lr, m = 0.1, 100_000
    out = _run(ls, D.Langevin(lr=lr, temperature=TEMP, diffusion="gradient"), np.tile(x0, (m, 1)), 1, seed=6)
    mu = x0 - lr * ls.grad(x0[None])[0]  # the drift is deterministic: the mean is exact
    e = out.positions - mu
    se_mean = e.std(axis=0) / np.sqrt(m)
    assert np.all(np.abs(e.mean(axis=0)) < 4 * se_mean)
    prods = e[:, :, None] * e[:, None, :]
    cov, se = prods.mean(axis=0), prods.std(axis=0) / np.sqrt(m)
    C = ls.noise_covariance(x0)  # NumPy, from the per-example gradients
    expected = lr * 2 * TEMP * C
    assert np.all(np.abs(cov - expected) < 4 * se), (cov - expected) / se
    # a transposed factor (L^T L) or dropping the correlations would have been rejected
    chol = np.linalg.cholesky(C)
    assert np.max(np.abs(cov - lr * 2 * TEMP * chol.T @ chol) / se) > 10
    assert np.max(np.abs(cov - lr * 2 * TEMP * np.diag(np.diag(C))) / se) > 10


# ---------------------------------------------------------------------------------------------------------
# Deterministic dynamics against closed forms

def test_heavy_ball_matches_linear_recursion():
    lr, beta, n = 0.1, 0.9, 60
    x0 = np.array([[1.0, -2.0]])
    out = _run(OU, D.GradientDescent(lr=lr, momentum=beta), x0, n, seed=0, recorder=Recorder(every=25))
    steps, _, means = out.observables["mean"]
    assert steps == [0, 25, 50, 60]
    for step, mean in zip(steps, means):
        for k, h in enumerate(H):
            T_k = np.array([[1 - lr * h, beta], [-lr * h, beta]])  # (x, v) -> (x', v')
            x_exact = (np.linalg.matrix_power(T_k, step) @ np.array([x0[0, k], 0.0]))[0]
            assert abs(mean[k] - x_exact) < 1e-12
    # momentum changes the trajectory (the closed form is not plain GD's)
    plain = _run(OU, D.GradientDescent(lr=lr), x0, n, seed=0)
    assert np.max(np.abs(plain.positions - out.positions)) > 1e-2


@pytest.mark.parametrize("schedule", [D.Schedule("step", decay=0.5, every=7),
                                      D.Schedule("cosine", every=30, lr_min=0.01)])
def test_schedules_on_gradient_descent(schedule):
    lr, n = 0.3, 40
    x0 = np.array([[1.0, -1.5]])
    out = _run(OU, D.GradientDescent(lr=lr, schedule=schedule), x0, n, seed=0, recorder=Recorder(every=17))
    rates = schedule.rates(lr, np.arange(n))
    # the NumPy twin of the rates against the schedule formulas written out here
    if schedule.kind == "step":
        by_hand = [lr * 0.5 ** (k // 7) for k in range(n)]
    else:
        by_hand = [0.01 + 0.5 * (lr - 0.01) * (1 + math.cos(math.pi * min(k / 30, 1.0))) for k in range(n)]
    np.testing.assert_allclose(rates, by_hand, rtol=1e-14)
    steps, times, means = out.observables["mean"]
    for step, t, mean in zip(steps, times, means):
        factor = np.prod(1 - rates[:step, None] * H, axis=0)
        np.testing.assert_allclose(mean, factor * x0[0], rtol=1e-12, atol=1e-15)
        assert t == pytest.approx(rates[:step].sum(), rel=1e-14, abs=0)  # time = sum of past rates
    constant = _run(OU, D.GradientDescent(lr=lr), x0, n, seed=0)
    assert np.max(np.abs(constant.positions - out.positions)) > 1e-6


# ---------------------------------------------------------------------------------------------------------
# Minibatch sampling: one-hot tilts reveal the batch

def _batch_counts(batch, replace, m, seed):
    """Tilts a_i = 3 e_i (centred) in d = N = 6: one SGD step from 0 with lr = 1 gives x1 = -(c - B/6) 3/B,
    with c the number of times each example was drawn."""
    n = 6
    ls = L.Tilted(L.Quadratic(np.ones(n)), 3.0 * np.eye(n))
    out = _run(ls, D.SGD(lr=1.0, batch=batch, replace=replace), np.zeros((m, n)), 1, seed=seed)
    c = batch / n - out.positions * batch / 3.0
    counts = np.round(c)
    assert np.max(np.abs(c - counts)) < 1e-9
    assert np.all(counts.sum(axis=1) == batch)
    return counts.astype(int)


def test_batches_without_replacement_are_uniform_subsets():
    m, batch = 20_000, 3
    counts = _batch_counts(batch, False, m, seed=7)
    assert counts.min() == 0 and counts.max() == 1  # distinct indices in every batch
    subsets = list(combinations(range(6), 3))
    code = {s: k for k, s in enumerate(subsets)}
    observed = np.bincount([code[tuple(np.flatnonzero(row))] for row in counts], minlength=len(subsets))
    assert scipy.stats.chisquare(observed).pvalue > 1e-3  # all 20 subsets equally likely (Floyd)


def test_batches_with_replacement_are_independent_draws():
    m, batch = 20_000, 3
    counts = _batch_counts(batch, True, m, seed=7)
    freq = counts.mean(axis=0)  # E[c_i] = B / N = 0.5, Var[c_i] = B (1/N)(1 - 1/N)
    assert np.all(np.abs(freq - 0.5) < 4 * np.sqrt(batch * (1 / 6) * (5 / 6) / m))
    p_repeat = 1 - 6 * 5 * 4 / 6 ** 3  # some example drawn twice or more
    frac = np.mean(counts.max(axis=1) >= 2)
    assert abs(frac - p_repeat) < 4 * np.sqrt(p_repeat * (1 - p_repeat) / m)


def test_full_batch_tilt_without_replacement_equals_gd():
    rng = np.random.default_rng(9)
    ls = L.Tilted(OU, rng.standard_normal((10, 2)))
    x0 = rng.standard_normal((50, 2))
    gd = _run(OU, D.GradientDescent(lr=0.1), x0, 40, seed=1)
    sgd = _run(ls, D.SGD(lr=0.1, batch=10, replace=False), x0, 40, seed=1)
    np.testing.assert_allclose(sgd.positions, gd.positions, rtol=0, atol=1e-13)
    sgd_r = _run(ls, D.SGD(lr=0.1, batch=10, replace=True), x0, 40, seed=1)
    assert np.max(np.abs(sgd_r.positions - gd.positions)) > 1e-2


# ---------------------------------------------------------------------------------------------------------
# Perturbed gradient descent on the strict saddle

SADDLE = L.StrictSaddle(10)
INF = float("inf")
ESCAPE_BOX = Target(lo=(-0.5,) + (-INF,) * 9, hi=(0.5,) + (INF,) * 9, mode="exit")


def test_gd_stays_on_stable_manifold_pgd_escapes():
    x0 = np.concatenate([[0.0], np.full(9, 0.5)])
    rec = Recorder(every=1000, mean=False, covariance=False, loss=False, target=ESCAPE_BOX)
    gd = _run(SADDLE, D.GradientDescent(lr=0.1), np.tile(x0, (4, 1)), 2000, seed=0, recorder=rec)
    assert np.all(gd.positions[:, 0] == 0.0) and np.all(gd.first_hit == -1)
    assert np.max(np.abs(gd.positions[:, 1:])) < 1e-12  # converged to the saddle
    pgd = _run(SADDLE, D.PerturbedGD(lr=0.1, radius=0.1, gradient_threshold=1e-3, interval=50),
               np.tile(x0, (500, 1)), 2000, seed=1, recorder=rec)
    assert np.all(pgd.first_hit > 0)
    # no kick before |grad f| = 1.5 * 0.9^n <= 1e-3, i.e. before step 70: nobody escapes earlier
    first_kick = math.ceil(math.log(1.5 / 1e-3) / math.log(1 / 0.9))
    assert first_kick == 70 and pgd.first_hit.min() > first_kick
    assert np.all(np.abs(pgd.positions[:, 0]) > 0.9)  # at the minima x1 = +-1


def test_pgd_escape_time_from_the_saddle():
    """One kick at step 0 (x = 0, gradient 0), none after (interval huge): the escape step is N(u1), u1 the
    first coordinate of a point uniform in the 10-ball; its mean is `pgd_escape_steps_mean`."""
    lr, radius, m = 0.1, 0.1, 20_000
    rec = Recorder(every=50, mean=False, covariance=False, loss=False, target=ESCAPE_BOX, stop_when_all_hit=True)
    out = _run(SADDLE, D.PerturbedGD(lr=lr, radius=radius, gradient_threshold=1.0, interval=10 ** 9),
               np.zeros((m, 10)), 1000, seed=2, recorder=rec)
    assert np.all(out.first_hit > 0) and out.steps_done < 1000
    n = out.first_hit.astype(float)
    mean, se = n.mean(), n.std() / np.sqrt(m)
    expected = theory.pgd_escape_steps_mean(lr, radius, 10, 0.5)
    assert abs(mean - expected) < 4 * se, (mean, expected, se)
    # a kick uniform on the sphere instead of in the ball would be rejected (its |u1| is larger)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400_000, 10))
    sphere_u1 = radius * z[:, 0] / np.linalg.norm(z, axis=1)
    sphere_mean = theory.saddle_escape_steps(sphere_u1, lr, 0.5).mean()
    assert abs(mean - sphere_mean) > 8 * se


# ---------------------------------------------------------------------------------------------------------
# Divergence and first passage

def test_divergence_step_is_analytic(tmp_path):
    """GD with lr = 2.5 on f = x^2/2 multiplies x by -1.5 per step (exactly, in binary floating point):
    |x_n| = |x0| 1.5^n first exceeds the limit 1e3 at n = 16 for |x0| = 2 and n = 18 for x0 = 1."""
    def first_step(x0, limit=1000):
        n = 0
        while abs(x0) * 3 ** n <= limit * 2 ** n:  # integer arithmetic: no rounding
            n += 1
        return n

    x0 = np.array([[1.0], [2.0], [-2.0]])
    expected = [first_step(v) for v in (1, 2, 2)]
    assert expected == [18, 16, 16]
    writer = RunWriter(tmp_path / "div.h5", scenario="test", params={}, seed=0)
    out = _run(L.Quadratic([1.0]), D.GradientDescent(lr=2.5), x0, 40, seed=0, recorder=Recorder(every=5),
               writer=writer, limit=1e3)
    writer.close(out.status, out.message)
    assert out.status == "diverged"
    assert "step 16" in out.message and "particle 1" in out.message  # ties go to the lowest particle
    # the chunk that crossed the divergence ran to its end (chunks run past record steps); nothing after
    assert 16 <= out.steps_done <= 40
    np.testing.assert_array_equal(out.positions[:, 0], [(-1.5) ** 18, 2 * (-1.5) ** 16, -2 * (-1.5) ** 16])
    with open_run(tmp_path / "div.h5") as run:
        assert run.status == "diverged" and "step 16" in run.message
        ev = run.event("divergence")
        np.testing.assert_array_equal(ev.particle, [0, 1, 2])
        np.testing.assert_array_equal(ev.step, expected)
        np.testing.assert_allclose(ev.time, np.array(expected) * 2.5)
        assert list(run.element("mean").step) == [0, 5, 10, 15]  # nothing recorded after the divergence


def test_first_passage_enter_and_exit():
    """GD on h = (0.5, 2), lr = 0.1: x_n = (0.95^n, 0.8^n) x0 exactly solvable for the hitting step."""
    x0 = np.array([[1.0, 1.0], [2.0, -3.0], [0.7, 4.0], [0.2, 0.1]])  # the last starts in/out of the boxes
    factors = np.array([0.95, 0.8])
    traj = np.array([x0 * factors ** n for n in range(200)])  # (steps, particles, 2), closed form

    def first(mask):  # first n >= 0 where mask holds (step 0: the start itself)
        hits = [np.flatnonzero(mask[:, p]) for p in range(mask.shape[1])]
        return np.array([h[0] if h.size else -1 for h in hits])

    enter = Target(lo=(-0.5, -0.5), hi=(0.5, 0.5), mode="enter")
    inside = np.all(np.abs(traj) <= 0.5, axis=2)
    exit_ = Target(lo=(0.6, -5.0), hi=(5.0, 5.0), mode="exit")
    outside = ~np.all((traj >= [0.6, -5.0]) & (traj <= [5.0, 5.0]), axis=2)
    for target, mask in ((enter, inside), (exit_, outside)):
        expected = first(mask)
        out = _run(OU, D.GradientDescent(lr=0.1), x0, 150, seed=0,
                   recorder=Recorder(every=60, mean=False, covariance=False, loss=False, target=target))
        np.testing.assert_array_equal(out.first_hit, expected)
    # the analytic steps for the first particle: 0.95^n <= 0.5 at n = 14; 0.95^n < 0.6 at n = 10
    assert first(inside)[0] == math.ceil(math.log(0.5) / math.log(0.95)) == 14
    assert first(outside)[0] == math.ceil(math.log(0.6) / math.log(0.95)) == 10
    assert first(inside)[3] == first(outside)[3] == 0


# ---------------------------------------------------------------------------------------------------------
# Reproducibility: threads, chunking, particle offsets

_THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numba
    import numpy as np
    from sgdsim import dynamics as D, landscapes as L
    from sgdsim.simulate import Recorder, simulate

    rng = np.random.default_rng(0)
    quad = L.Quadratic([0.5, 2.0, 1.0])
    tilted = L.Tilted(quad, rng.standard_normal((20, 3)))
    x0 = rng.standard_normal((3000, 3))
    rec = Recorder(every=200, mean=False, covariance=False, loss=False)
    a = simulate(tilted, D.SGD(lr=0.05, batch=4), x0, n_steps=200, seed=11, recorder=rec, progress=False)
    b = simulate(quad, D.Langevin(lr=0.05, temperature=0.3), x0, n_steps=200, seed=11, recorder=rec,
                 progress=False)
    np.save(sys.argv[1], np.stack([a.positions, b.positions]))
    print(numba.get_num_threads())
""")


def test_bit_identical_across_thread_counts(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_THREAD_SCRIPT)
    procs = {}
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        procs[threads] = subprocess.Popen([sys.executable, str(script), str(tmp_path / f"x{threads}.npy")],
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for threads, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert stdout.strip() == str(threads)
    x1, x2 = np.load(tmp_path / "x1.npy"), np.load(tmp_path / "x2.npy")
    assert np.array_equal(x1, x2)
    assert not np.array_equal(x1[0], x1[1])  # the two dynamics did run (and differ)


@pytest.mark.parametrize("case", ["sgd-tilt", "langevin"])
def test_bit_identical_across_chunkings_and_offsets(case):
    rng = np.random.default_rng(12)
    if case == "sgd-tilt":
        ls, dyn = L.Tilted(OU, rng.standard_normal((8, 2))), D.SGD(lr=0.05, batch=3, replace=False)
    else:
        ls, dyn = OU, D.Langevin(lr=0.05, temperature=0.3)
    x0 = rng.standard_normal((600, 2))
    whole = _solver(ls, dyn, x0, seed=13)
    whole.advance(100)
    parts = _solver(ls, dyn, x0, seed=13)
    parts.advance(37)
    parts.advance(63)
    assert np.array_equal(whole.x, parts.x) and np.array_equal(whole.states, parts.states)
    # a particle's path depends only on (seed, particle): a subset seeded at its offset follows it exactly
    sub = _solver(ls, dyn, x0[300:450], seed=13, first_particle=300)
    sub.advance(100)
    assert np.array_equal(sub.x, whole.x[300:450])
    other = _solver(ls, dyn, x0, seed=14)
    other.advance(100)
    assert not np.array_equal(other.x, whole.x)
    # simulate's chunking by recording times does not change anything either
    a = _run(ls, dyn, x0, 100, seed=13, recorder=Recorder(every=41, mean=False, covariance=False, loss=False))
    assert np.array_equal(a.positions, whole.x)
