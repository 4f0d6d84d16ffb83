"""Tests of sgdsim.particles.theory, each against something the tested function did not compute itself."""
import itertools

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.stats

from sgdsim.particles import theory
from sgdsim.errors import ParameterError

X0 = np.array([1.0, -2.0, 0.5])
H = np.array([1.0, 2.5, 0.3])
TEMP = 0.7


def test_ou_moments_match_moment_odes():
    t = 1.3
    rhs = lambda _, y: np.concatenate([-H * y[:3], -2 * H * y[3:] + 2 * TEMP])  # d mean, d var
    sol = scipy.integrate.solve_ivp(rhs, (0, t), np.concatenate([X0, np.zeros(3)]), method="DOP853",
                                    rtol=1e-13, atol=1e-14)
    mean, var = theory.ou_moments(X0, H, TEMP, t)
    np.testing.assert_allclose(mean, sol.y[:3, -1], rtol=1e-10)
    np.testing.assert_allclose(var, sol.y[3:, -1], rtol=1e-10)


def _one_step(scheme, x, xi, h, dt):
    """The scheme's update written from its definition, a(x) = -h x, b = sqrt(2 T)."""
    dw = np.sqrt(dt) * xi
    b = np.sqrt(2 * TEMP)
    if scheme == "euler":
        return x - h * x * dt + b * dw
    xbar = x - h * x * dt + b * dw
    return x + (-h * x - h * xbar) * dt / 2 + b * dw


@pytest.mark.parametrize("scheme", theory.SCHEMES)
@pytest.mark.parametrize("dt", [0.05, 0.6])  # 0.6: the Euler multiplier 1 - h dt is negative for h = 2.5
def test_scheme_moments_match_gauss_hermite_propagation(scheme, dt):
    """Push the Gaussian law through the one-step map with 2-D Gauss-Hermite quadrature (exact for it)."""
    z, w = np.polynomial.hermite_e.hermegauss(6)
    w = w / w.sum()
    zx, zxi = np.meshgrid(z, z, indexing="ij")
    weights = np.outer(w, w)[..., None]
    mean, var = X0.copy(), np.zeros(3)
    n_steps = 40
    for _ in range(n_steps):
        x_next = _one_step(scheme, mean + np.sqrt(var) * zx[..., None], zxi[..., None], H, dt)
        mean = np.sum(weights * x_next, axis=(0, 1))
        var = np.sum(weights * x_next ** 2, axis=(0, 1)) - mean ** 2
    got_mean, got_var = theory.ou_scheme_moments(X0, H, TEMP, dt, n_steps, scheme)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(got_var, var, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("scheme, order", [("euler", 1), ("heun", 2)])
def test_scheme_variance_converges_with_weak_order(scheme, order):
    t = 1.0
    n_steps = np.array([32, 64, 128, 256, 512])
    exact = theory.ou_moments(X0, H, TEMP, t)[1]
    errors = [np.abs(theory.ou_scheme_moments(X0, H, TEMP, t / n, n, scheme)[1] - exact).max()
              for n in n_steps]
    slope = np.polyfit(np.log(t / n_steps), np.log(errors), 1)[0]
    assert abs(slope - order) < 0.1


def test_scheme_moments_bad_scheme_lists_valid_ones():
    with pytest.raises(ParameterError, match="valid schemes: euler, heun"):
        theory.ou_scheme_moments(X0, H, TEMP, 0.1, 3, "rk4")


def test_gibbs_double_well_sums_to_one_and_matches_trapezoid():
    f = lambda x: x ** 4 / 4 - x ** 2 / 2
    edges = np.linspace(-2.2, 2.0, 31)
    p = theory.gibbs_bin_probabilities(f, edges, 0.3)
    assert abs(p.sum() - 1) < 1e-13
    fine = [np.linspace(lo, hi, 4001) for lo, hi in zip(edges[:-1], edges[1:])]
    mass = np.array([scipy.integrate.trapezoid(np.exp(-f(x) / 0.3), x) for x in fine])
    np.testing.assert_allclose(p, mass / mass.sum(), rtol=1e-6)


def test_gibbs_quadratic_matches_gaussian_cdf_even_with_a_huge_offset():
    h, centre, temperature = 3.0, 0.4, 0.5
    sd = np.sqrt(temperature / h)
    edges = centre + sd * np.concatenate([[-12.0], np.linspace(-4, 4, 25), [12.0]])
    f = lambda x: 5000.0 + h / 2 * (x - centre) ** 2  # exp(-f/T) underflows without the shift
    p = theory.gibbs_bin_probabilities(f, edges, temperature)
    np.testing.assert_allclose(p, np.diff(scipy.stats.norm.cdf(edges, centre, sd)), rtol=0, atol=1e-10)


def test_kl_and_l1():
    p = np.array([0.25, 0.75])
    q = np.array([0.5, 0.5])
    assert theory.kl_divergence(p, p) == 0
    assert theory.kl_divergence(p, q) == pytest.approx(0.25 * np.log(0.5) + 0.75 * np.log(1.5), rel=1e-14)
    assert theory.kl_divergence(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0
    assert theory.kl_divergence(q, np.array([0.0, 1.0])) == np.inf
    assert theory.l1_distance(p, q) == pytest.approx(0.5)
    with pytest.raises(ParameterError, match="one shape"):
        theory.kl_divergence(p, np.ones(3) / 3)


def _random_spd(rng, d, scale=1.0):
    m = rng.normal(size=(d, d))
    return scale * (m @ m.T / d + 0.2 * np.eye(d))


def test_lyapunov_solutions_satisfy_their_equations():
    rng = np.random.default_rng(1)
    h, c = _random_spd(rng, 5), _random_spd(rng, 5)
    lr, batch = 0.1, 4
    s = theory.lyapunov_continuous(h, c, lr, batch)
    assert np.abs(h @ s + s @ h - lr / batch * c).max() < 1e-12
    s = theory.lyapunov_discrete(h, c, lr, batch)
    assert np.abs(h @ s + s @ h - lr * h @ s @ h - lr / batch * c).max() < 1e-12


def test_lyapunov_one_dimensional_closed_forms():
    h, c, lr, batch = 2.0, 3.0, 0.3, 5
    assert theory.lyapunov_continuous(h, c, lr, batch)[0, 0] == pytest.approx(lr * c / (2 * batch * h))
    assert theory.lyapunov_discrete(h, c, lr, batch)[0, 0] == pytest.approx(
        lr * c / (batch * h * (2 - lr * h)), rel=1e-13)


def _tiny_problem(seed=2, n=4, d=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=n)


def test_least_squares_moments():
    a, b = _tiny_problem(n=7, d=3)
    m = theory.least_squares_moments(a, b)
    grads = a * (a @ m.x_star - b)[:, None]  # per-example gradients at x*
    np.testing.assert_allclose(grads.mean(axis=0), 0, atol=1e-13)
    np.testing.assert_allclose(m.noise_covariance, np.cov(grads.T, bias=True), atol=1e-13)
    np.testing.assert_allclose(m.hessian, a.T @ a / 7, atol=1e-14)


@pytest.mark.parametrize("replace", [True, False])
def test_sgd_covariance_matches_exact_batch_enumeration(replace):
    a, b = _tiny_problem()
    n, d = a.shape
    lr, batch = 0.3, 2
    batches = (itertools.product(range(n), repeat=batch) if replace
               else itertools.combinations(range(n), batch))
    idx = np.array(list(batches))
    residual = a @ np.linalg.lstsq(a, b, rcond=None)[0] - b
    hb = np.einsum("kji,kjl->kil", a[idx], a[idx]) / batch
    gb = np.einsum("kji,kj->ki", a[idx], residual[idx]) / batch
    p = np.eye(d) - lr * hb
    noise = lr ** 2 * np.mean(gb[:, :, None] * gb[:, None, :], axis=0)
    s = np.zeros((d, d))
    for _ in range(5000):
        s_next = np.mean(p @ s @ p.transpose(0, 2, 1), axis=0) + noise
        if np.abs(s_next - s).max() < 1e-17:
            break
        s = s_next
    np.testing.assert_allclose(theory.sgd_stationary_covariance(a, b, lr, batch, replace), s,
                               rtol=0, atol=1e-10 * np.abs(s).max())


def test_sgd_covariance_vanishes_for_full_batch_without_replacement():
    a, b = _tiny_problem(n=6, d=3)
    assert np.abs(theory.sgd_stationary_covariance(a, b, 0.2, 6, replace=False)).max() == 0


def test_multiplicative_noise_enlarges_covariance():
    rng = np.random.default_rng(3)
    a = rng.standard_t(3, size=(50, 3))  # heavy-tailed rows: strong multiplicative noise
    b = a @ np.ones(3) + rng.normal(size=50)
    m = theory.least_squares_moments(a, b)
    lr = 0.3 / np.linalg.eigvalsh(m.hessian).max()  # GD is stable far beyond this; SGD with B=2 barely
    exact = theory.sgd_stationary_covariance(a, b, lr, 2)
    additive = theory.lyapunov_discrete(m.hessian, m.noise_covariance, lr, 2)
    assert np.linalg.eigvalsh(exact - additive).min() > -1e-12
    assert np.trace(exact) > 2 * np.trace(additive)


def test_unstable_sgd_raises_one_line_error():
    a, b = _tiny_problem()
    with pytest.raises(ParameterError, match=r"^SGD is unstable at lr=5.0, batch=1: no stationary covariance$"):
        theory.sgd_stationary_covariance(a, b, 5.0, 1)


def test_saddle_escape_steps_match_direct_loop():
    lr, threshold = 0.1, 0.5
    u = np.array([[1e-9, -3e-4, 0.2], [0.0, 0.49, -0.7]])
    expected = np.empty(u.shape)
    for i, x in np.ndenumerate(u):
        if x == 0:
            expected[i] = np.inf
            continue
        n = 0
        while abs(x) < threshold:
            x = x - lr * (x ** 3 - x)
            n += 1
        expected[i] = n
    np.testing.assert_array_equal(theory.saddle_escape_steps(u, lr, threshold), expected)


def _uniform_ball(rng, n, d, radius):
    g = rng.normal(size=(n, d))
    return radius * g / np.linalg.norm(g, axis=1, keepdims=True) * rng.random((n, 1)) ** (1 / d)


def test_ball_coordinate_density_normalised_and_matches_histogram():
    radius, d, n = 2.0, 5, 100_000
    total = scipy.integrate.quad(theory.ball_coordinate_density, -radius, radius, args=(radius, d))[0]
    assert total == pytest.approx(1, abs=1e-12)
    u1 = _uniform_ball(np.random.default_rng(4), n, d, radius)[:, 0]
    edges = np.linspace(-radius, radius, 21)
    prob = np.array([scipy.integrate.quad(theory.ball_coordinate_density, lo, hi, args=(radius, d))[0]
                     for lo, hi in zip(edges[:-1], edges[1:])])
    counts = np.histogram(u1, edges)[0]
    assert np.all(np.abs(counts - n * prob) < 5 * np.sqrt(n * prob * (1 - prob)) + 1)


@pytest.mark.parametrize("d", [2, 100])
def test_pgd_escape_mean_matches_monte_carlo(d):
    lr, radius, threshold, n = 0.1, 0.01, 0.5, 20_000
    u1 = _uniform_ball(np.random.default_rng(5 + d), n, d, radius)[:, 0]
    steps = theory.saddle_escape_steps(u1, lr, threshold)
    predicted = theory.pgd_escape_steps_mean(lr, radius, d, threshold)
    assert abs(steps.mean() - predicted) < 5 * steps.std() / np.sqrt(n)


def test_pgd_escape_mean_grows_like_half_log_d():
    lr, radius, threshold = 0.05, 0.01, 0.5
    growth = (theory.pgd_escape_steps_mean(lr, radius, 1000, threshold)
              - theory.pgd_escape_steps_mean(lr, radius, 10, threshold))
    assert growth == pytest.approx(0.5 * np.log(100) / np.log(1 + lr), rel=0.03)
