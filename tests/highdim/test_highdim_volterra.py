"""The SGD risk Volterra equation (`solvers.highdim.volterra`, `sgdsim.highdim.risk`): compiled solvers equal
their NumPy twins; the discrete equation against the closed form of the identity covariance and against the
mode-by-mode recursion it came from; Monte Carlo of online SGD on Gaussian data (and a wrong batch size
failing); the trapezoidal rule's order 2 against the exact continuous solution; the critical lr in closed form;
the power-law exponents of both phases (and each phase's formula failing in the other)."""
from __future__ import annotations

import numpy as np
import pytest

from sgdsim.highdim import risk as hr
from sgdsim.compare.claims import familywise_z
from sgdsim.errors import ParameterError
from sgdsim.solvers.highdim import volterra as vo


def _terms(lam, nu0, lr, B, noise_var, n):
    F, K = np.empty(n), np.empty(n)
    vo.discrete_terms(lam, nu0, lr, float(B), noise_var, n, F, K)
    return F, K


def test_compiled_solvers_equal_their_numpy_twins(rng):
    lam, nu0 = rng.uniform(0.05, 1.0, 30), rng.uniform(0, 1, 30)
    F, K = _terms(lam, nu0, 0.4, 3, 0.02, 200)
    F2, K2 = vo.discrete_terms_numpy(lam, nu0, 0.4, 3, 0.02, 200)
    np.testing.assert_allclose(F, F2, rtol=1e-12)
    np.testing.assert_allclose(K, K2, rtol=1e-12, atol=1e-300)
    R = np.empty(200)
    vo.solve_discrete(F, K, R)
    np.testing.assert_allclose(R, vo.solve_discrete_numpy(F, K), rtol=1e-12)
    t = np.linspace(0, 20, 150)
    Fc, Kc = np.empty(150), np.empty(150)
    vo.continuous_terms(lam, nu0, 0.4, 3.0, 0.02, t, Fc, Kc)
    np.testing.assert_allclose(Fc, 0.01 + 0.5 * np.exp(-2 * np.outer(t, lam)) @ (lam * nu0), rtol=1e-12)
    vo.solve_trapezoid(Fc, Kc, t[1], R[:150])
    np.testing.assert_allclose(R[:150], vo.solve_trapezoid_numpy(Fc, Kc, t[1]), rtol=1e-12)


@pytest.mark.parametrize("lr, B, noise", [(0.05, 1, 0.0), (0.02, 4, 0.3)])
def test_identity_covariance_closed_form(lr, B, noise):
    """lambda_j = 1: u = sum_j nu_j obeys u' = (c + lr^2 d / B) u + lr^2 d sigma^2 / B (geometric)."""
    d, n = 50, 400
    nu0 = np.linspace(0.0, 2.0, d)
    R = hr.risk_curve(np.ones(d), nu0, lr=lr, batch=B, noise=noise, steps=n)
    a = (1 - lr) ** 2 + lr * lr / B + lr * lr * d / B
    u_star = lr * lr * d * noise ** 2 / B / (1 - a)
    u = u_star + (nu0.sum() - u_star) * a ** np.arange(n + 1)
    np.testing.assert_allclose(R, 0.5 * (noise ** 2 + u), rtol=1e-10)
    gd = hr.gd_risk(np.ones(d), nu0, lr=lr, noise=noise, steps=n)
    np.testing.assert_allclose(gd, 0.5 * (noise ** 2 + nu0.sum() * (1 - lr) ** (2 * np.arange(n + 1))), rtol=1e-12)


def test_volterra_equals_the_mode_recursion(rng):
    """nu_j(k+1) = c_j nu_j(k) + (2 lr^2 lambda_j / B) R_k iterated directly: an independent second method."""
    lam, nu0 = rng.uniform(0.01, 1.0, 40), rng.uniform(0, 1, 40)
    lr, B, sigma, n = 0.3, 2, 0.2, 300
    nu, R = nu0.copy(), []
    c = (1 - lr * lam) ** 2 + lr * lr * lam ** 2 / B
    for _ in range(n + 1):
        R.append(0.5 * (sigma ** 2 + lam @ nu))
        nu = c * nu + 2 * lr * lr * lam / B * R[-1]
    np.testing.assert_allclose(hr.risk_curve(lam, nu0, lr=lr, batch=B, noise=sigma, steps=n), R, rtol=1e-10)


def _online_sgd(lam, xstar, lr, B, sigma, steps, chains, rng):
    """Mean and SE over chains of the risk of online SGD on a ~ N(0, diag(lam)), y = a.x* + sigma xi."""
    x = np.zeros((chains, len(lam)))
    out = []
    for _ in range(steps + 1):
        e = x - xstar
        out.append(0.5 * (e * e) @ lam + 0.5 * sigma ** 2)
        a = rng.standard_normal((chains, B, len(lam))) * np.sqrt(lam)
        r = np.einsum("pbd,pd->pb", a, e) - sigma * rng.standard_normal((chains, B))
        x -= lr * np.einsum("pb,pbd->pd", r, a) / B
    out = np.array(out)
    return out.mean(axis=1), out.std(axis=1, ddof=1) / np.sqrt(chains)


def test_monte_carlo_of_online_sgd_on_gaussian_data(rng):
    """The discrete equation is exact for online SGD on Gaussian data: every step within the family-wise
    3-sigma band; the same equation for the wrong batch size (B = 2 for a B = 1 run) is not."""
    d, lr, B, sigma, steps = 8, 0.25, 1, 0.3, 30
    lam, xstar = hr.power_law(d, 1.0, 0.5)
    mean, se = _online_sgd(lam, xstar, lr, B, sigma, steps, 20000, rng)
    z = familywise_z(steps, 0.0027)
    right = hr.risk_curve(lam, xstar ** 2, lr=lr, batch=B, noise=sigma, steps=steps)
    wrong = hr.risk_curve(lam, xstar ** 2, lr=lr, batch=2, noise=sigma, steps=steps)
    assert np.max(np.abs(mean[1:] - right[1:]) / se[1:]) <= z
    assert np.max(np.abs(mean[1:] - wrong[1:]) / se[1:]) > z


def test_trapezoidal_rule_is_second_order():
    """Continuous identity case: u(t) = u* + (u0 - u*) e^{-kappa t}, kappa = 2 - lr d / B, u* = lr d sigma^2 /
    (B kappa); the error at t = 5 falls as h^2 (fitted slope 2 +- 0.1)."""
    d, lr, B, sigma = 20, 0.05, 2, 0.5
    nu0 = np.full(d, 0.1)
    kappa = 2 - lr * d / B
    u_star = lr * d * sigma ** 2 / B / kappa
    exact = 0.5 * (sigma ** 2 + u_star + (nu0.sum() - u_star) * np.exp(-kappa * 5.0))
    hs = np.array([0.1, 0.05, 0.025, 0.0125])
    errors = [abs(hr.risk_curve_continuous(np.ones(d), nu0, lr=lr, batch=B, noise=sigma, t_max=5.0, h=h)[1][-1]
                  - exact) for h in hs]
    assert abs(np.polyfit(np.log(hs), np.log(errors), 1)[0] - 2.0) < 0.1


def test_critical_lr_closed_form_and_divergence():
    """Identity covariance: kernel norm (lr/B) d / (2 - lr (1 + 1/B)) = 1 at lr_c = 2B / (d + B + 1); the
    risk decays just below lr_c and grows just above."""
    d, B = 100, 3
    lam = np.ones(d)
    lr_c = hr.critical_lr(lam, B)
    assert lr_c == pytest.approx(2 * B / (d + B + 1), rel=1e-10)
    assert hr.kernel_norm(lam, lr_c, B) == pytest.approx(1.0, rel=1e-9)
    below = hr.risk_curve(lam, np.ones(d), lr=0.95 * lr_c, batch=B, steps=3000)
    above = hr.risk_curve(lam, np.ones(d), lr=1.05 * lr_c, batch=B, steps=3000)
    assert below[-1] < 1e-3 * below[0] and above[-1] > 1e3 * above[0]
    power, _ = hr.power_law(1000, 0.5, 0.0)
    assert hr.critical_lr(power, B) == pytest.approx(2 * B / power.sum(), rel=0.05)   # many small eigenvalues


@pytest.mark.parametrize("alpha, beta, lo", [(2.0, 0.25, 30), (1.5, 2.0, 30)])
def test_power_law_exponents_of_both_phases(alpha, beta, lo):
    """Signal-dominated (2 beta < alpha): t^-(alpha + 2 beta - 1)/alpha; noise-dominated: t^-(2 - 1/alpha).
    The Volterra solution's fitted slope over steps [lo, 3000] is within 0.02 of the phase's exponent and
    more than 0.1 from the other phase's formula."""
    lam, xstar = hr.power_law(2000, alpha, beta)
    lr = 0.5 * hr.critical_lr(lam, 1)
    R = hr.risk_curve(lam, xstar ** 2, lr=lr, batch=1, steps=3000)
    k = np.unique(np.round(np.logspace(0, np.log10(3000), 40)).astype(int))
    slope, _ = hr.fit_exponent(k * lr, R[k], lo * lr, 3000 * lr)
    assert abs(slope - hr.risk_exponent(alpha, beta)) < 0.02
    other = -(alpha + 2 * beta - 1) / alpha if 2 * beta >= alpha else -(2 * alpha - 1) / alpha
    assert abs(slope - other) > 0.1


def test_bad_inputs_are_one_line_parameter_errors():
    with pytest.raises(ParameterError, match="non-negative eigenvalues"):
        hr.risk_curve([-1.0, 1.0], 1.0, lr=0.1, batch=1, steps=5)
    with pytest.raises(ParameterError, match="batch must be an integer >= 1"):
        hr.risk_curve([1.0], 1.0, lr=0.1, batch=0, steps=5)
    with pytest.raises(ParameterError, match="alpha > 1"):
        hr.risk_exponent(0.8, 0.5)
    with pytest.raises(ParameterError, match="n >= d"):
        hr.orthogonal_design(np.ones(10), np.ones(10), 5, 0)
