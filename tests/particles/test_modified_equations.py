"""The stochastic modified equations (sgdsim.particles.modified_equations) against what they did not compute: the exact
least-squares moments of SGD against the stationary covariance of `theory`, the moment map of
`minibatch_moments` and a Monte Carlo cloud of the particle engine; the fitted weak orders 1 and 2 (and a
wrong correction failing order 2); the order-2 drift against finite differences of the modified loss; the
Euler invariant density against the exact discrete Lyapunov covariance; the slope fit on exact power laws."""
import numpy as np
import pytest

from sgdsim.particles import minibatch_moments as MM
from sgdsim.particles import modified_equations as ME
from sgdsim.particles import theory
from sgdsim.particles.dynamics import SGD
from sgdsim.errors import ParameterError
from sgdsim.particles.landscapes import DoubleWell, Quadratic, Regression
from sgdsim.particles.simulate import Recorder, simulate

_RNG = np.random.default_rng(15)
A = _RNG.standard_normal((16, 2))
B = A @ np.array([1.0, -0.5]) + 0.5 * _RNG.standard_normal(16)
X0 = np.array([2.0, 1.0])
HORIZON = 2.0
LRS = 0.2 / 2.0 ** np.arange(5)


@pytest.mark.parametrize("batch, replace", [(2, True), (3, False)])
def test_sgd_moments_reach_the_exact_stationary_covariance(batch, replace):
    lr = 0.1
    out = ME.sgd_moments(A, B, X0, lr, batch, replace, [4000])
    cov = out.second[0] - np.outer(out.mean[0], out.mean[0])
    exact = theory.sgd_stationary_covariance(A, B, lr, batch, replace)
    np.testing.assert_allclose(cov, exact, rtol=1e-9, atol=1e-15)
    wrong = theory.sgd_stationary_covariance(A, B, lr, batch + 1, replace)   # another batch size is rejected
    assert np.abs(cov - wrong).max() > 1e3 * 1e-9 * np.abs(exact).max()


@pytest.mark.parametrize("batch, replace", [(2, True), (3, False)])
def test_one_step_second_moment_equals_the_moment_map_without_residuals(batch, replace):
    """With zero residuals (b = A x*) a step is e' = M e, so E e' e'^T = E[M (x) M] vec(e e^T)."""
    b = A @ np.array([0.3, 0.7])
    lr = 0.15
    out = ME.sgd_moments(A, b, X0, lr, batch, replace, [1])
    e0 = X0 - np.array([0.3, 0.7])
    second = (MM.moment_map(A, lr, batch, replace, 2) @ np.outer(e0, e0).ravel()).reshape(2, 2)
    e1 = out.second[0] - np.outer(out.mean[0], [0.3, 0.7]) - np.outer([0.3, 0.7], out.mean[0]) + np.outer([0.3, 0.7], [0.3, 0.7])
    np.testing.assert_allclose(e1, second, rtol=1e-12, atol=1e-14)


def test_sgd_moments_equal_a_monte_carlo_cloud_of_the_particle_engine():
    """Mean and second moment after 6 steps from X0 (the cross term between the mean and the residual noise
    matters here) within 4 standard errors; the moments with the noise left out are rejected."""
    lr, batch, n, m = 0.2, 2, 6, 40_000
    ls = Regression(A, B)
    out = simulate(ls, SGD(lr=lr, batch=batch), np.tile(X0, (m, 1)), n_steps=n, seed=3, progress=False,
                   recorder=Recorder(every=10 ** 9, mean=False, covariance=False, loss=False))
    x = out.positions
    second = x[:, :, None] * x[:, None, :]
    exact = ME.sgd_moments(A, B, X0, lr, batch, True, [n])
    for sample, predicted in ((x, exact.mean[0]), (second, exact.second[0])):
        se = sample.std(axis=0) / np.sqrt(m)
        assert np.all(np.abs(sample.mean(axis=0) - predicted) <= 4 * se)
    gd = X0.copy()   # without the noise the second moment would be the outer product of the GD iterate
    for _ in range(n):
        gd = gd - lr * ls.grad(gd[None])[0]
    se = second.std(axis=0) / np.sqrt(m)
    assert np.abs(second.mean(axis=0) - np.outer(gd, gd)).max() > 10 * se.max()


def _errors(order, correction=ME.SME_CORRECTION):
    errors = []
    for lr in LRS:
        n = int(round(HORIZON / lr))
        sgd = ME.sgd_moments(A, B, X0, lr, 2, True, [n])
        sme = ME.sme_moments(A, B, X0, lr, 2, True, [n * lr], order, correction)
        errors.append(ME.moment_error(sgd, sme)[0])
    return np.array(errors)


@pytest.mark.parametrize("order, slope, tolerance", [(0, 1.0, 0.15), (1, 1.0, 0.15), (2, 2.0, 0.3)])
def test_weak_orders_from_exact_least_squares_moments(order, slope, tolerance):
    fit = ME.fit_slope(LRS, _errors(order))
    assert abs(fit.slope - slope) <= tolerance, fit


def test_a_wrong_correction_fails_the_order_two_test():
    """(lr/2)|grad f|^2 instead of (lr/4)|grad f|^2 matches SGD's drift only to O(lr): slope ~ 1."""
    fit = ME.fit_slope(LRS, _errors(2, correction=0.5))
    assert abs(fit.slope - 2.0) > 0.3, fit


def test_order_two_drift_is_the_gradient_of_the_modified_loss(rng):
    """grad(f + (lr/4)|grad f|^2) = grad f + (lr/2) H grad f, by central differences of `modified_loss`."""
    lr, h = 0.1, 1e-6
    for ls in (DoubleWell(2), Regression(A, B, p=4)):
        f_mod = ME.modified_loss(ls, lr)
        x = rng.standard_normal((6, ls.dim))
        fd = np.stack([(f_mod(x + h * e) - f_mod(x - h * e)) / (2 * h) for e in np.eye(ls.dim)], axis=-1)
        g = ls.grad(x)
        drift = g + lr / 2 * ls.hessian_vector(x, g)
        np.testing.assert_allclose(fd, drift, rtol=1e-6, atol=1e-6 * np.abs(drift).max())
        assert np.abs(fd - (g + lr * ls.hessian_vector(x, g))).max() > 1e-3 * np.abs(drift).max()


def _variance(potential, T, lim=6.0):
    x = np.linspace(-lim, lim, 200001)[:, None]
    w = np.exp(-(potential(x) - potential(x).min()) / T)
    return float(np.sum(w * x[:, 0] ** 2) / np.sum(w))


def test_euler_invariant_density_of_a_quadratic_has_the_discrete_lyapunov_variance_to_second_order():
    """SGD with constant noise on f = k x^2 / 2 has the stationary variance of `theory.lyapunov_discrete`;
    the Euler invariant density's variance differs from it by O(lr^2) (fitted slope 2), Gibbs's by O(lr)."""
    k, C = 2.0, 1.0
    lrs = np.array([0.08, 0.04, 0.02, 0.01])
    euler, gibbs = [], []
    for lr in lrs:
        T = lr * C / 2
        exact = theory.lyapunov_discrete(np.array([[k]]), np.array([[C]]), lr, 1)[0, 0]
        euler.append(abs(_variance(ME.euler_invariant_loss(Quadratic([k]), lr, T), T, 6 * np.sqrt(T)) / exact - 1))
        gibbs.append(abs((T / k) / exact - 1))
    assert abs(ME.fit_slope(lrs, euler).slope - 2) < 0.3
    assert abs(ME.fit_slope(lrs, gibbs).slope - 1) < 0.15
    assert np.all(np.array(euler) < np.array(gibbs))


def test_fit_slope_recovers_power_laws_and_weights_by_stderr():
    lrs = np.array([0.1, 0.05, 0.025, 0.0125])
    fit = ME.fit_slope(lrs, 3 * lrs ** 2)
    assert fit.slope == pytest.approx(2.0, abs=1e-12) and fit.stderr < 1e-10
    noisy = 3 * lrs ** 2 * np.array([1.02, 0.98, 1.01, 0.99])
    weighted = ME.fit_slope(lrs, noisy, 0.02 * noisy)
    assert abs(weighted.slope - 2) < 3 * weighted.stderr and 0.005 < weighted.stderr < 0.05
    with pytest.raises(ParameterError, match="at least 3"):
        ME.fit_slope(lrs[:2], lrs[:2])
    with pytest.raises(ParameterError, match="order must be 0, 1 or 2"):
        ME.sme_moments(A, B, X0, 0.1, 2, True, [1.0], 3)
