"""Spherical p-spin kernels and replica dynamics: kernels against their NumPy twins, derivatives against finite
differences, Euler's identity, the covariance of the stated convention over many disorder draws, the sphere
constraint, and Langevin above T_d against the paramagnetic energy -xi(1)/T."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sgdsim.spin_glass import descent as sg
from sgdsim.spin_glass import theory as th
from sgdsim.errors import ParameterError
from sgdsim.solvers.spin_glass import pspin as K

MIXED = "2:0.5,3:1,4:0.7"


def test_numba_symmetrization_equals_numpy_twin(rng):
    J = rng.standard_normal((7, 7, 7))
    expected = K.symmetrize_numpy(J)
    K.symmetrize3_inplace(J)
    np.testing.assert_allclose(J, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(J, J.transpose(1, 0, 2))
    np.testing.assert_array_equal(J, J.transpose(2, 1, 0))


def test_batched_matmul_gradient_equals_tensordot_twin():
    model = sg.spherical_pspin(11, MIXED, seed=3)
    S = sg.random_starts(11, 4, seed=1)
    H, G = model.energy_gradient(S)
    H2, G2 = K.gradient_tensordot(model.couplings, model.weights, S)
    np.testing.assert_allclose(H, H2, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(G, G2, rtol=1e-13, atol=1e-13)


def test_euler_identity_for_each_pure_term():
    """s . grad H_p = p H_p, with H_p from a full tensordot contraction (not from the identity)."""
    for p in (2, 3, 4):
        model = sg.spherical_pspin(9, p, seed=p)
        S = sg.random_starts(9, 3, seed=p)
        H, _ = K.gradient_tensordot(model.couplings, model.weights, S)
        G = model.energy_gradient(S)[1]
        np.testing.assert_allclose(np.einsum("ir,ir->r", S, G), p * H, rtol=1e-12)


def test_gradient_and_hessians_against_finite_differences():
    n = 8
    model = sg.spherical_pspin(n, MIXED, seed=5)
    s = sg.random_starts(n, 1, seed=2)[:, 0]
    eps = 1e-5
    E = np.eye(n)
    energy = lambda x: float(model.energy(x))  # noqa: E731
    grad = model.energy_gradient(s[:, None])[1][:, 0]
    fd = np.array([(energy(s + eps * e) - energy(s - eps * e)) / (2 * eps) for e in E])
    np.testing.assert_allclose(grad, fd, rtol=1e-8, atol=1e-8)
    hess_fd = np.array([(model.energy_gradient((s + eps * e)[:, None])[1][:, 0]
                         - model.energy_gradient((s - eps * e)[:, None])[1][:, 0]) / (2 * eps) for e in E])
    np.testing.assert_allclose(model.euclidean_hessian(s), hess_fd, rtol=1e-7, atol=1e-7)
    # Riemannian Hessian: second derivative along the unit-speed geodesic cos(t/sqrt N) s + sqrt N sin(t/sqrt N) v
    B = K.tangent_basis(s)
    np.testing.assert_allclose(B.T @ B, np.eye(n - 1), atol=1e-14)
    np.testing.assert_allclose(B.T @ s, 0, atol=1e-13)
    hess = model.hessian(s)
    rng = np.random.default_rng(0)
    h = 1e-3
    for _ in range(3):
        w = rng.standard_normal(n - 1)
        w /= np.linalg.norm(w)
        v = B @ w
        path = lambda t: math.cos(t / math.sqrt(n)) * s + math.sqrt(n) * math.sin(t / math.sqrt(n)) * v  # noqa: E731
        second = (energy(path(h)) - 2 * energy(s) + energy(path(-h))) / h ** 2
        assert w @ hess @ w == pytest.approx(second, rel=1e-5, abs=1e-5)


def test_covariance_of_energy_and_gradient_over_disorder():
    """E[H(s)H(s')] = N xi(q), E|P grad H|^2 = (N-1) xi'(1), E[(s.grad H)^2]/N = xi'(1) + xi''(1)
    ... estimated over 3000 coupling draws at fixed points; |estimate - exact| < 5 SE."""
    n, draws = 6, 3000
    mixture = sg.parse_mixture(MIXED)
    xi = th.Xi.mixture(mixture)
    s = sg.random_starts(n, 1, seed=1)[:, 0]
    u = sg.random_starts(n, 1, seed=2)[:, 0]
    u -= (u @ s) / n * s
    u *= math.sqrt(n) / np.linalg.norm(u)
    q = 0.5
    s2 = q * s + math.sqrt(1 - q * q) * u           # |s2|^2 = N, s.s2/N = q
    S = np.stack([s, s2], axis=1)
    rng = np.random.default_rng(11)
    samples = np.empty((draws, 4))
    weights = tuple(a * n ** (-(p - 1) / 2) for p, a in mixture.items())
    for d in range(draws):
        couplings = tuple(K.draw_couplings(n, p, rng) for p in mixture)
        H, G = K.gradient(couplings, weights, S)
        g = G[:, 0]
        tang = g - (g @ s) / n * s
        samples[d] = H[0] ** 2, H[0] * H[1], tang @ tang, (g @ s) ** 2 / n
    exact = [n * xi(1.0), n * xi(q), (n - 1) * xi.d1(1.0), xi.d1(1.0) + xi.d2(1.0)]
    est = samples.mean(0)
    se = samples.std(0, ddof=1) / math.sqrt(draws)
    assert np.all(np.abs(est - exact) < 5 * se), (est, exact, se)


def test_minibatch_gradient_averages_to_the_full_gradient():
    model = sg.spherical_pspin(7, MIXED, seed=8)
    S = sg.random_starts(7, 2, seed=3)
    full = model.energy_gradient(S)[1]
    mean = np.mean([model.energy_gradient(S, np.array([j]))[1] for j in range(7)], axis=0)
    np.testing.assert_allclose(mean, full, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method, temperature", [("gd", 0.0), ("langevin", 1.0), ("langevin-euler", 1.0),
                                                 ("minibatch", 0.0)])
def test_sphere_constraint_held_to_round_off(method, temperature):
    model = sg.spherical_pspin(20, 3, seed=1)
    tr = sg.descend(model, sg.random_starts(20, 3, seed=4), method, dt=0.1, steps=300, temperature=temperature,
                    fraction=0.3, seed=2)
    assert tr.status == "complete"
    np.testing.assert_allclose(np.einsum("ir,ir->r", tr.end, tr.end), 20, rtol=1e-13)
    # unconstrained, the same steps drift off the sphere at O(dt^2 |grad|^2) per step
    s = sg.random_starts(20, 1, seed=4)
    s = s - 0.1 * model.riemannian_gradient(s)
    assert abs(float(s[:, 0] @ s[:, 0]) - 20) > 1e-3


def test_gradient_descent_decreases_energy_and_ends_at_a_minimum():
    model = sg.spherical_pspin(40, 3, seed=2)
    tr = sg.descend(model, sg.random_starts(40, 2, seed=1), "gd", dt=0.1, steps=1500, waiting=(10, 100))
    assert np.all(np.diff(tr.energy, axis=0) <= 1e-12)
    # two-time correlations: 1 at t = t_w, NaN before, and equal to the overlap with the start for t_w = 0
    for w, t_w in enumerate(tr.waiting):
        at = tr.steps == t_w
        np.testing.assert_allclose(tr.overlap_waiting[at, w], 1.0, rtol=1e-13)
        assert np.all(np.isnan(tr.overlap_waiting[tr.steps < t_w, w]))
    np.testing.assert_allclose(tr.overlap_start[0], 1.0, rtol=1e-13)
    assert np.all(tr.grad_norm[-1] < 1e-6)
    index = [(sg.hessian_spectrum(model, tr.end[:, r]) < 0).sum() for r in range(2)]
    assert index == [0, 0]


def test_langevin_above_td_reaches_the_paramagnetic_energy():
    """p = 3 at T = 2 > T_d = sqrt(3)/2: the time- and replica-averaged energy per spin after t = 2 equals
    -xi(1)/T = -0.5 within 5 SE (replicas independent; SE from the spread of the replica means; the
    Metropolis-adjusted scheme has no dt bias at stationarity)."""
    n, T, dt = 64, 2.0, 0.01
    model = sg.spherical_pspin(n, 3, seed=4)
    assert T > th.dynamical_temperature(model.xi)
    tr = sg.descend(model, sg.random_starts(n, 16, seed=5), "langevin", dt=dt, steps=600, temperature=T,
                    seed=6, points=600)
    late = tr.energy[tr.times >= 2.0]
    means = late.mean(axis=0)
    se = means.std(ddof=1) / math.sqrt(len(means))
    assert abs(means.mean() - th.paramagnetic_energy(model.xi, T)) < 5 * se, (means.mean(), se)


def test_bad_inputs_raise_one_line_parameter_errors():
    with pytest.raises(ParameterError, match=r"N=1000, p=3, 1 replicas needs 8\.\d+ GB .* > limit"):
        sg.spherical_pspin(1000, 3, seed=0)
    for bad in ("1", "3:0", "x", "3,3"):
        with pytest.raises(ParameterError, match="mixture"):
            sg.parse_mixture(bad)
    model = sg.spherical_pspin(5, 2, seed=0)
    with pytest.raises(ParameterError, match="unknown p-spin dynamics 'sgd'.*gd, langevin, langevin-euler, minibatch"):
        sg.descend(model, sg.random_starts(5, 1, 0), "sgd", dt=0.1, steps=1)
    with pytest.raises(ParameterError, match="grad_tol needs the full gradient"):
        sg.descend(model, sg.random_starts(5, 1, 0), "minibatch", dt=0.1, steps=1, grad_tol=1e-3)
    with pytest.raises(ParameterError, match="dt > 0"):
        sg.descend(model, sg.random_starts(5, 1, 0), "gd", dt=-0.1, steps=1)


def test_non_finite_energy_stops_the_run_as_diverged():
    model = sg.spherical_pspin(6, 3, seed=0)
    model.couplings[0][0, 0, 0] = np.nan
    tr = sg.descend(model, sg.random_starts(6, 2, seed=0), "gd", dt=0.1, steps=5)
    assert tr.status == "diverged" and "step 0" in tr.message and len(tr.steps) == 1


def test_hessian_at_random_points_is_a_shifted_goe_of_the_stated_scale():
    """Tangent Hessian + (s.grad H/N) I = M, GOE with E[M_ab^2] = xi''(1)/N (1 + delta_ab) (ABC 2013, Lemma 3.2,
    any point): mean eigenvalue 0 and mean squared eigenvalue xi''(1), each within 5 SE over 4 draws."""
    n, k = 100, 4
    mixture = {2: 0.5, 3: 1.0}
    xi = th.Xi.mixture(mixture)
    m1, m2 = [], []
    for d in range(k):
        model = sg.spherical_pspin(n, mixture, seed=100 + d)
        s = sg.random_starts(n, 1, seed=d)[:, 0]
        ev = sg.hessian_spectrum(model, s) + model.radial_derivative(s)[0]
        m1.append(ev.mean())
        m2.append(np.mean(ev * ev))
    sigma2 = xi.d2(1.0) / n
    assert abs(np.mean(m1)) < 5 * math.sqrt(2 * sigma2 / (n - 1) / k)
    assert abs(np.mean(m2) - xi.d2(1.0)) < 5 * 2 * sigma2 * math.sqrt(n / (n - 1)) / math.sqrt(k), np.mean(m2)


def test_sphere_laplacian_is_the_trace_of_the_riemannian_hessian():
    """Delta_S H from the diagonal slab of the couplings and Euler's identity equals the trace of the Riemannian
    Hessian built from the Euclidean Hessian in the Householder tangent basis (another route)."""
    model = sg.spherical_pspin(9, MIXED, seed=4)
    S = sg.random_starts(9, 3, seed=7)
    lap = K.sphere_laplacian(model.couplings, model.weights, S)
    np.testing.assert_allclose(lap, [np.trace(model.hessian(S[:, r])) for r in range(3)], rtol=1e-11, atol=1e-11)


def _stationarity_gap(method: str, dt: float):
    """<|grad_S H|^2 - T Delta_S H> over 128 independent replicas of p = 3, N = 16 at T = 1 (> T_d = 0.87),
    each sampled every 20 steps (40 times) after 200 steps; relative to <T Delta_S H>, with its SE from the
    spread of the per-replica time averages (replicas independent)."""
    n, r, T = 16, 128, 1.0
    model = sg.spherical_pspin(n, 3, seed=1)
    S = sg.random_starts(n, r, seed=2)
    gap, lap = [], []
    for chunk in range(41):
        tr = sg.descend(model, S, method, dt=dt, steps=200 if chunk == 0 else 20, temperature=T, seed=10 + chunk,
                        points=2)
        S = tr.end
        if chunk:
            g = model.riemannian_gradient(S)
            lap.append(T * K.sphere_laplacian(model.couplings, model.weights, S))
            gap.append(np.einsum("ir,ir->r", g, g) - lap[-1])
    per_replica = np.mean(gap, axis=0)
    scale = np.mean(lap)
    return per_replica.mean() / scale, per_replica.std(ddof=1) / math.sqrt(r) / scale, tr.acceptance[-1].mean()


def test_metropolis_adjusted_langevin_satisfies_the_stationarity_identity_where_euler_does_not():
    """Any sampler of exp(-H/T) on the sphere satisfies <|grad_S H|^2> = T <Delta_S H> (integration by parts).
    At the scenario's dt = 0.05 the Euler-Maruyama scheme samples about T (1 + 2 dt): the gap is about +10%
    (measured here +9.6 +- 0.65%); the Metropolis-adjusted scheme's gap is within 4 SE of 0 (-0.04 +- 0.64%)."""
    bias, se, acceptance = _stationarity_gap("langevin", 0.05)
    assert abs(bias) < 4 * se, (bias, se)
    assert 0.5 < acceptance < 1
    bias_euler, se_euler, _ = _stationarity_gap("langevin-euler", 0.05)
    assert bias_euler > 4 * se_euler, (bias_euler, se_euler)


def test_metropolis_ratio_is_exact_detailed_balance_for_a_two_point_check():
    """The log acceptance ratio is antisymmetric under swapping (s, H, grad) with (s', H', grad'): detailed
    balance pi(s) q(s'|s) a(s->s') = pi(s') q(s|s') a(s'->s) with a = min(1, e^ratio)."""
    model = sg.spherical_pspin(10, 3, seed=2)
    S, S2 = sg.random_starts(10, 4, seed=1), sg.random_starts(10, 4, seed=2)
    S2 = K.to_sphere(S + 0.3 * K.tangent(S, S2))
    (H, G), (H2, G2) = model.energy_gradient(S), model.energy_gradient(S2)
    g, g2 = K.tangent(S, G), K.tangent(S2, G2)
    forward = sg.metropolis_log_ratio(S, S2, H, H2, g, g2, 0.05, 0.7)
    backward = sg.metropolis_log_ratio(S2, S, H2, H, g2, g, 0.05, 0.7)
    np.testing.assert_allclose(forward, -backward, rtol=1e-12, atol=1e-12)


def test_gradient_norm_stopping_rule():
    """grad_tol: GD stops at the first step where every replica has |grad_S H|/sqrt(N) < grad_tol; that step is
    recorded and said; a tolerance never reached runs all the steps."""
    model = sg.spherical_pspin(30, 3, seed=2)
    S0 = sg.random_starts(30, 3, seed=1)
    full = sg.descend(model, S0, "gd", dt=0.1, steps=3000, points=3000)
    first = int(np.argmax(np.all(full.grad_norm < 1e-4, axis=1)))
    stop = sg.descend(model, S0, "gd", dt=0.1, steps=3000, points=10, grad_tol=1e-4)
    assert stop.steps[-1] == full.steps[first] < 3000
    assert np.all(stop.grad_norm[-1] < 1e-4) and not np.all(full.grad_norm[first - 1] < 1e-4)
    np.testing.assert_array_equal(stop.energy[-1], full.energy[first])
    assert f"stopped at step {stop.steps[-1]}" in stop.message
    never = sg.descend(model, S0, "gd", dt=0.1, steps=50, grad_tol=1e-12)
    assert never.steps[-1] == 50 and never.message == "50 steps"
