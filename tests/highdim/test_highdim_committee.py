"""Committee-machine ODEs and online SGD (`solvers.highdim.committee_ode`, `committee_sgd`, `sgdsim.highdim`):
the compiled right-hand side and SGD kernel equal their NumPy twins; every Gaussian average against Monte
Carlo (and a wrong covariance failing); eps_g against Monte Carlo and its gradient against finite differences;
the O(lr) part of the ODE equal to gradient flow on eps_g (I3 against I2: two independent closed forms); the
simulator bit-reproducible across threads and chunking, and statistically on the ODE at small N (and a wrong
lr failing)."""
from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy.special import erf

from sgdsim.highdim import committee as hd
from sgdsim.compare.claims import familywise_z
from sgdsim.errors import ParameterError
from sgdsim.solvers.highdim import committee_ode as co
from sgdsim.solvers.highdim import committee_sgd as cs
from sgdsim.solvers.rng import seed_states

K, M = 3, 2


def _order_parameters(rng, S):
    """Valid (Q, R, T, v, v*) for S students: Gram matrices of random vectors sharing one teacher."""
    teacher = rng.standard_normal((M, 12)) / np.sqrt(12)
    students = rng.standard_normal((S, K, 12)) / np.sqrt(6) + 0.3 * teacher[None, [0, 1, 0]]
    Q = students @ students.transpose(0, 2, 1)
    R = students @ teacher.T
    return Q, R, teacher @ teacher.T, rng.standard_normal((S, K)), rng.standard_normal(M)


def test_compiled_rhs_equals_its_numpy_twin(rng):
    Q, R, T, v, vstar = _order_parameters(rng, 4)
    y = co.pack(Q, R, v)
    out = np.empty_like(y)
    co.rhs(y, T, vstar, 0.7, 0.3, 0.04, K, M, out)
    np.testing.assert_allclose(out, co.rhs_numpy(y, T, vstar, 0.7, 0.3, 0.04, K, M), rtol=1e-12, atol=1e-15)
    Q2, R2, v2 = co.unpack(y, K, M)
    np.testing.assert_array_equal(Q2, Q), np.testing.assert_array_equal(R2, R), np.testing.assert_array_equal(v2, v)


def _g(x):
    return erf(x / np.sqrt(2))


def _gp(x):
    return np.sqrt(2 / np.pi) * np.exp(-x * x / 2)


def _mc_averages(C, z):
    """Monte Carlo samples of the averages at a few index tuples (mixing student and teacher units)."""
    return {("I2", (0, 3)): _g(z[:, 0]) * _g(z[:, 3]), ("J2", (1, 4)): _gp(z[:, 1]) * _gp(z[:, 4]),
            ("I3", (0, 1, 3)): _gp(z[:, 0]) * z[:, 1] * _g(z[:, 3]),
            ("I3", (2, 2, 2)): _gp(z[:, 2]) * z[:, 2] * _g(z[:, 2]),
            ("I3", (1, 4, 0)): _gp(z[:, 1]) * z[:, 4] * _g(z[:, 0]),
            ("I4", (0, 1, 3, 4)): _gp(z[:, 0]) * _gp(z[:, 1]) * _g(z[:, 3]) * _g(z[:, 4]),
            ("I4", (1, 1, 1, 3)): _gp(z[:, 1]) ** 2 * _g(z[:, 1]) * _g(z[:, 3]),
            ("I4", (2, 0, 4, 4)): _gp(z[:, 2]) * _gp(z[:, 0]) * _g(z[:, 4]) ** 2}


def test_gaussian_averages_against_monte_carlo(rng):
    """Each closed form within the family-wise 3-sigma band of 400k samples; the closed forms of a covariance
    with its off-diagonal entries 15% larger are not (the test can fail)."""
    Q, R, T, _, _ = _order_parameters(rng, 1)
    C = co.covariance(Q, R, T)[0]
    z = rng.standard_normal((400_000, K + M)) @ np.linalg.cholesky(C).T
    samples = _mc_averages(C, z)
    bound = familywise_z(len(samples), 0.0027)
    wrong_C = C * 1.15 - np.diag(np.diag(C)) * 0.15
    worst_right = worst_wrong = 0.0
    for (name, idx), x in samples.items():
        se = x.std(ddof=1) / np.sqrt(len(x))
        worst_right = max(worst_right, abs(x.mean() - co.averages(C)[name][idx]) / se)
        worst_wrong = max(worst_wrong, abs(x.mean() - co.averages(wrong_C)[name][idx]) / se)
    assert worst_right <= bound < worst_wrong


def test_generalization_error_against_monte_carlo(rng):
    """eps_g = (1/2) E (f - y)^2 from samples of (lambda, nu) ~ N(0, C); v* perturbed by 5% fails."""
    Q, R, T, v, vstar = _order_parameters(rng, 1)
    C = co.covariance(Q, R, T)[0]
    z = rng.standard_normal((400_000, K + M)) @ np.linalg.cholesky(C).T
    x = 0.5 * (_g(z[:, :K]) @ v[0] - _g(z[:, K:]) @ vstar) ** 2
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert abs(x.mean() - hd.generalization_error(Q, R, T, v, vstar)[0]) <= 3 * se
    assert abs(x.mean() - hd.generalization_error(Q, R, T, v, 1.05 * vstar)[0]) > 3 * se


def test_eps_gradient_against_finite_differences(rng):
    Q, R, T, v, vstar = _order_parameters(rng, 2)
    gQ, gR, gv = hd.generalization_error_gradient(Q, R, T, v, vstar)
    h = 1e-6
    for arr, grad in ((Q, gQ), (R, gR), (v, gv)):
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args = {id(Q): (plus, R, v), id(R): (Q, plus, v), id(v): (Q, R, plus)}[id(arr)]
            argsm = {id(Q): (minus, R, v), id(R): (Q, minus, v), id(v): (Q, R, minus)}[id(arr)]
            fd = (hd.generalization_error(args[0], args[1], T, args[2], vstar)
                  - hd.generalization_error(argsm[0], argsm[1], T, argsm[2], vstar))[idx[0]] / (2 * h)
            assert fd == pytest.approx(grad[idx], abs=1e-8)


def test_first_order_ode_is_gradient_flow_on_eps(rng):
    """To first order in lr, online SGD is gradient flow dW/dt = -lr N grad_W eps_g, so dR/dt = -lr [(G_Q +
    G_Q^T) R + G_R T], dQ/dt = -lr [(G_Q + G_Q^T) Q + G_R R^T] + transpose, dv/dt = -lr_v d eps/dv: the I3
    terms of the ODE against derivatives of the I2 closed form. The rhs is lr A + lr^2 B, so A = (4 r(1) - r(2))/2."""
    Q, R, T, v, vstar = _order_parameters(rng, 3)
    Q = 0.5 * (Q + Q.transpose(0, 2, 1))
    y = co.pack(Q, R, v)
    r1, r2 = (co.rhs_numpy(y, T, vstar, lr, 1.0, 0.1, K, M) for lr in (1.0, 2.0))
    dQ, dR, _ = co.unpack((4 * r1 - r2) / 2, K, M)
    _, _, dv = co.unpack(r1, K, M)
    gQ, gR, gv = hd.generalization_error_gradient(Q, R, T, v, vstar)
    S = gQ + gQ.transpose(0, 2, 1)
    np.testing.assert_allclose(dR, -(S @ R + gR @ T), atol=1e-12)
    flow_Q = -(S @ Q + gR @ R.transpose(0, 2, 1))
    np.testing.assert_allclose(dQ, flow_Q + flow_Q.transpose(0, 2, 1), atol=1e-12)
    np.testing.assert_allclose(dv, -gv, atol=1e-12)


def test_sgd_kernel_equals_its_twin_and_is_reproducible(rng):
    """Same draws, same update (to rounding); bit-identical for 1 or 2 threads and for 20 steps in two chunks;
    the compiled order parameters equal W W^T / N and W W*^T / N."""
    S, N = 3, 41
    W0, v0 = rng.standard_normal((S, K, N)), rng.standard_normal((S, K))
    Ws, vs = rng.standard_normal((M, N)), rng.standard_normal(M)
    args = (Ws, vs)
    W, v, st = W0.copy(), v0.copy(), seed_states(5, S)
    cs.advance(W, v, *args, st, 0.5, 0.3, 0.1, 20)
    W2, v2, st2 = W0.copy(), v0.copy(), seed_states(5, S)
    cs.advance_numpy(W2, v2, *args, st2, 0.5, 0.3, 0.1, 20)
    np.testing.assert_allclose(W, W2, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(v, v2, rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(st, st2)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        W3, v3, st3 = W0.copy(), v0.copy(), seed_states(5, S)
        cs.advance(W3, v3, *args, st3, 0.5, 0.3, 0.1, 7)
        cs.advance(W3, v3, *args, st3, 0.5, 0.3, 0.1, 13)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(W, W3)
    np.testing.assert_array_equal(v, v3)
    Q, R = np.empty((S, K, K)), np.empty((S, K, M))
    cs.order_parameters(W, Ws, Q, R)                      # compiled loops against their NumPy twin
    np.testing.assert_allclose(Q, W @ W.transpose(0, 2, 1) / N, rtol=1e-12)
    np.testing.assert_allclose(R, W @ Ws.T / N, rtol=1e-12)


def test_ode_engines_agree(rng):
    t = hd.teacher(50, M, 0)
    W0 = hd.initial_students(t, K, 2, 0.5, 0.1, 0)
    Q0, R0 = hd.order_parameters(W0, t)
    times = np.linspace(0, 5, 6)
    a = hd.ode(Q0, R0, np.ones((2, K)), t, times, lr=0.8, lr_v=0.2, noise=0.1)
    b = hd.ode(Q0, R0, np.ones((2, K)), t, times, lr=0.8, lr_v=0.2, noise=0.1, engine="numpy")
    assert a.status == b.status == "complete"
    np.testing.assert_allclose(a.eps, b.eps, rtol=1e-9)
    np.testing.assert_allclose(a.Q[0], Q0)


def test_simulation_on_the_ode_at_small_N():
    """N = 300, 24 students, t in [0, 6]: the mean eps_g within the family-wise 3-sigma band of the ODE (from
    each student's initial order parameters) at every recorded time; the ODE at 0.8 lr is not. Trained second
    layer and output noise included."""
    N, S = 300, 24
    t = hd.teacher(N, 2, 3)
    W0 = hd.initial_students(t, 2, S, 0.3, 0.05, 3)
    steps = np.arange(0, 6 * N + 1, N // 2)
    dyn = dict(lr=1.0, lr_v=0.5, noise=0.2)
    sim = hd.simulate(t, W0, np.ones((S, 2)), steps, seed=3, **dyn)
    again = hd.simulate(t, W0, np.ones((S, 2)), steps, seed=3, **dyn)
    np.testing.assert_array_equal(sim.eps, again.eps)
    m, se = sim.eps.mean(axis=1)[1:], sim.eps.std(axis=1, ddof=1)[1:] / np.sqrt(S)
    bound = familywise_z(len(m), 0.0027)
    right = hd.ode(sim.Q[0], sim.R[0], sim.v[0], t, sim.t, **dyn).eps.mean(axis=1)[1:]
    wrong = hd.ode(sim.Q[0], sim.R[0], sim.v[0], t, sim.t, **{**dyn, "lr": 0.8}).eps.mean(axis=1)[1:]
    assert np.max(np.abs(m - right) / se) <= bound < np.max(np.abs(m - wrong) / se)


def test_bad_inputs_are_one_line_parameter_errors():
    with pytest.raises(ParameterError, match="1 <= M <= N"):
        hd.teacher(3, 5, 0)
    t = hd.teacher(20, 2, 0)
    with pytest.raises(ParameterError, match="unknown engine"):
        hd.ode(np.eye(2)[None], np.zeros((1, 2, 2)), np.ones((1, 2)), t, [0, 1], lr=0.1, engine="fortran")
    with pytest.raises(ParameterError, match="record_steps"):
        hd.simulate(t, hd.initial_students(t, 2, 2, 0.1, 0.0, 0), np.ones((2, 2)), [5, 3], lr=0.1)


def test_symmetric_fixed_point_and_escape_helpers():
    """The plateau is a fixed point of the full ODE (not only of its symmetric subspace) with one unstable
    direction; escape_time interpolates the first crossing after the curve has been above the level."""
    Q, R = hd.symmetric_fixed_point(2, lr=1.0)
    out = np.empty(co.layout(2, 2))
    co.rhs(co.pack(Q[None], R[None], np.ones((1, 2))), np.eye(2), np.ones(2), 1.0, 0.0, 0.0, 2, 2, out)
    assert np.max(np.abs(out)) < 1e-10 and Q[0, 1] == Q[1, 0] and np.ptp(R) == 0
    assert 0 < hd.escape_rate(Q, R, np.eye(2), np.ones(2), lr=1.0) < 1
    t = np.array([0.0, 1.0, 2.0, 3.0])
    assert hd.escape_time(t, np.array([0.5, 2.0, 1.5, 0.5]), 1.0) == pytest.approx(2.5)
    assert np.isnan(hd.escape_time(t, np.array([0.5, 2.0, 1.5, 1.2]), 1.0))
