"""The Fokker–Planck engine (solvers/fokker_planck/finite_volume.py, sgdsim/fokker_planck/equation.py) against what it did not compute
itself: the Gibbs density (isotropic steady state), exact Gaussian solutions of the OU process (convergence
orders in dx and dt, fitted), the Lyapunov covariance and circulation of a non-equilibrium OU steady state,
the closed-form steady state of an Itô state-dependent diffusion, the decay rate of the first Dirichlet mode,
conservation of mass, positivity, the monotone decay of KL to the steady state (a theorem), and the exact
1-D mean first-passage integral."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

import sgdsim
from sgdsim.fokker_planck import escape as E
from sgdsim.fokker_planck import equation as F
from sgdsim.errors import ParameterError
from sgdsim.solvers.fokker_planck import finite_volume as FP

DW = sgdsim.DoubleWell(1)


def dw2(x):
    return (x[:, 0] ** 2 - 1) ** 2 + 2 * x[:, 1] ** 2


def slope(hs, errors):
    return np.polyfit(np.log(hs), np.log(errors), 1)[0]


def test_bernoulli_is_stable_and_matches_the_definition():
    z = np.array([-800.0, -50.0, -1.0, -1e-12, 0.0, 1e-12, 1e-3, 1.0, 50.0, 800.0])
    b = FP.bernoulli(z)
    assert np.all(np.isfinite(b)) and np.all(b >= 0)
    mid = np.abs(z) < 100
    with np.errstate(all="ignore"):
        naive = z[mid] / np.expm1(z[mid])
    naive[z[mid] == 0] = 1.0
    np.testing.assert_allclose(b[mid], naive, rtol=1e-12)
    np.testing.assert_allclose(FP.bernoulli(-z) - FP.bernoulli(z), z, rtol=1e-12, atol=1e-15)  # B(-z) = B(z) + z


@pytest.mark.parametrize("case", ["1d", "2d", "3d", "periodic"])
def test_isotropic_steady_state_is_gibbs_to_round_off(case):
    if case == "1d":
        fp = F.problem(loss=DW, temperature=0.25, lo=-2.5, hi=2.5, cells=400)
    elif case == "2d":
        fp = F.problem(loss=dw2, temperature=0.3, lo=[-2.2, -1.5], hi=[2.2, 1.5], cells=[60, 40])
    elif case == "3d":
        fp = F.problem(loss=sgdsim.DoubleWell(3), temperature=0.5, lo=-2, hi=2, cells=[12, 10, 8])
    else:
        fp = F.problem(loss=lambda x: np.cos(2 * np.pi * x[:, 0]) + 0.5 * np.sin(4 * np.pi * x[:, 0]),
                       temperature=0.2, lo=0, hi=1, cells=90, boundary="periodic")
    p, g = fp.steady_state(), fp.gibbs()
    assert abs(fp.mass(p) - 1) < 1e-12
    assert np.abs(p - g).max() < 1e-10 * g.max()
    assert np.all(p > 0)
    # anisotropic D breaks detailed balance with the Gibbs density: the test can tell the difference
    if case == "2d":
        aniso = F.problem(loss=dw2, temperature=0.3, lo=[-2.2, -1.5], hi=[2.2, 1.5], cells=[60, 40],
                          diffusion=np.diag([1.0, 2.0]))
        assert np.abs(aniso.steady_state() - g).max() > 1e-2 * g.max()


@pytest.mark.parametrize("scheme, steps, dt", [("implicit-euler", 10000, 0.01), ("bdf2", 10000, 0.01),
                                               ("explicit", 10000, 4e-4)])
def test_mass_conserved_and_density_non_negative_over_long_runs(scheme, steps, dt):
    """10^4 steps from a point mass, through the transient and well past the relaxation time (~30): the
    columns of A sum to zero, so only round-off (a random walk of ~1e-15 per step here) changes the mass."""
    fp = F.problem(loss=DW, temperature=0.25, lo=-2.5, hi=2.5, cells=200)
    stepper = fp.stepper(fp.point_mass([-1.0]), dt, scheme)
    for _ in range(10):
        stepper.advance(steps // 10)
        assert abs(fp.mass(stepper.p) - 1) < 1e-12
        if scheme != "bdf2":        # implicit and (CFL-limited) explicit Euler keep the sign; BDF2 need not
            assert stepper.p.min() >= 0


def test_two_d_mass_and_sign_with_diagonal_anisotropic_diffusion():
    fp = F.problem(loss=dw2, temperature=0.3, lo=[-2.2, -1.5], hi=[2.2, 1.5], cells=[44, 30],
                   diffusion=np.diag([0.5, 2.0]))
    stepper = fp.stepper(fp.point_mass([-1.0, 0.3]), 0.02, "implicit-euler")
    stepper.advance(2000)
    assert abs(fp.mass(stepper.p) - 1) < 1e-12 and stepper.p.min() >= 0


def _ou_exact(x, m0, v0, h, T, t):
    m = m0 * math.exp(-h * t)
    v = v0 * math.exp(-2 * h * t) + T / h * (1 - math.exp(-2 * h * t))
    return np.exp(-(x - m) ** 2 / (2 * v)) / math.sqrt(2 * math.pi * v)


def test_convergence_order_in_dx_is_two():
    """OU f = h x^2/2 from a Gaussian: L1 error of the density at t = 0.5 against the exact Gaussian, with a
    small BDF2 time step so that the spatial error dominates."""
    h, T, m0, v0, t = 2.0, 0.3, 1.0, 0.05, 0.5
    hs, errors = [], []
    for n in (25, 50, 100, 200):
        fp = F.problem(loss=sgdsim.Quadratic([h]), temperature=T, lo=-3, hi=3, cells=n)
        x = fp.grid.centres(0)
        p0 = _ou_exact(x, m0, v0, h, T, 0.0)
        out = fp.evolve(p0 / fp.integrate(p0), [t], 1e-3)
        errors.append(fp.integrate(np.abs(out.density[-1] - _ou_exact(x, m0, v0, h, T, t))))
        hs.append(fp.grid.spacing[0])
    assert 1.8 < slope(hs, errors) < 2.3, errors


def test_convergence_order_in_dt():
    fp = F.problem(loss=DW, temperature=0.3, lo=-2.5, hi=2.5, cells=100)
    p0 = fp.gaussian(-1.0, 0.2)
    reference = fp.evolve(p0, [1.0], 1e-4).density[-1]
    for scheme, order in (("implicit-euler", 1), ("bdf2", 2)):
        dts = [0.04, 0.02, 0.01]
        errors = [fp.integrate(np.abs(fp.evolve(p0, [1.0], dt, scheme).density[-1] - reference))
                  for dt in dts]
        assert abs(slope(dts, errors) - order) < 0.25, (scheme, errors)


def test_kl_to_steady_state_and_free_energy_decrease_monotonically():
    """KL(p_t || p_ss) decreases for every Markov semigroup (Chaudhari & Soatto 2018, Lemma 6); with
    isotropic D, F(p) = T KL(p || Gibbs) - T log Z, so the free energy decreases too."""
    fp = F.problem(loss=DW, temperature=0.4, lo=-2.5, hi=2.5, cells=200)
    out = fp.evolve(fp.point_mass([-1.2]), np.arange(0, 101.0, 1.0), 0.05, "implicit-euler")
    pss = fp.steady_state()
    kl = np.array([fp.kl(p, pss) for p in out.density])
    free = np.array([fp.free_energy(p) for p in out.density])
    assert np.all(np.diff(kl) < 0) and kl[-1] < 1e-3 * kl[1]
    assert np.all(np.diff(free) < 0)
    log_z = math.log(fp.integrate(np.exp(-fp.loss_values / fp.temperature)))
    np.testing.assert_allclose(free, fp.temperature * (kl - log_z), rtol=1e-9, atol=1e-12)
    # non-equilibrium: diagonal anisotropic D in 2-D, the steady state is not Gibbs, KL to it still decreases
    fp2 = F.problem(loss=dw2, temperature=0.3, lo=[-2.2, -1.5], hi=[2.2, 1.5], cells=[44, 30],
                    diffusion=np.diag([0.5, 2.0]))
    out2 = fp2.evolve(fp2.point_mass([-1.0, 0.5]), np.arange(0, 20.01, 0.5), 0.05, "implicit-euler")
    pss2 = fp2.steady_state()
    kl2 = np.array([fp2.kl(p, pss2) for p in out2.density])
    assert np.all(np.diff(kl2) < 0)


H = np.array([[1.0, 0.0], [0.0, 3.0]])
D = np.array([[1.0, 0.6], [0.6, 1.5]])


def test_ou_steady_covariance_and_circulation_converge_to_lyapunov():
    """Non-commuting D and H: Sigma solves H S + S H = 2 T D; the steady current circulates at the rate
    (1/2) ((H S)_xy - (H S)_yx) (the mean Stratonovich area rate), zero only when [H, D] = 0."""
    T = 0.4
    sigma = scipy.linalg.solve_continuous_lyapunov(H, 2 * T * D)
    hs_ = H @ sigma
    rate = 0.5 * (hs_[0, 1] - hs_[1, 0])
    assert abs(rate) > 0.05
    hs, cov_err, rate_err = [], [], []
    for n in (24, 48, 96):
        fp = F.problem(loss=sgdsim.Quadratic(np.diag(H)), temperature=T, lo=-3.5, hi=3.5, cells=n, diffusion=D)
        p = fp.steady_state()
        assert abs(fp.mass(p) - 1) < 1e-12 and np.allclose(fp.mean(p), 0, atol=1e-12)
        hs.append(fp.grid.spacing[0])
        cov_err.append(np.abs(fp.covariance(p) - sigma).max())
        rate_err.append(abs(fp.circulation(p) - rate))
    assert cov_err[-1] < 2e-3 and rate_err[-1] < 2e-3 * abs(rate) * 10
    assert slope(hs, cov_err) > 1.8 and slope(hs, rate_err) > 1.8, (cov_err, rate_err)
    # the commuting case has no circulation
    fp = F.problem(loss=sgdsim.Quadratic(np.diag(H)), temperature=T, lo=-3.5, hi=3.5, cells=48,
                   diffusion=np.diag([1.0, 2.0]))
    assert abs(fp.circulation(fp.steady_state())) < 1e-9 * abs(rate)


def test_ito_state_dependent_diffusion_steady_state():
    """f = x^2/2, D(x) = 1 + a x^2 (Itô): zero flux gives p ~ (1 + a x^2)^(-1 - 1/(2 a T))."""
    a, T = 0.5, 0.4
    hs, errors = [], []
    for n in (50, 100, 200):
        fp = F.problem(loss=sgdsim.Quadratic([1.0]), temperature=T, lo=-4, hi=4, cells=n,
                       diffusion=lambda x: (1 + a * x[:, :1, None] ** 2))
        x = fp.grid.centres(0)
        exact = (1 + a * x ** 2) ** (-1 - 1 / (2 * a * T))
        exact /= fp.integrate(exact)
        p = fp.steady_state()
        hs.append(fp.grid.spacing[0])
        errors.append(fp.integrate(np.abs(p - exact)))
    assert errors[-1] < 1e-3 and slope(hs, errors) > 1.8, errors


def test_absorbing_walls_first_mode_decays_at_the_dirichlet_rate():
    L, T = 2.0, 0.5
    fp = F.problem(loss=lambda x: 0 * x[:, 0], temperature=T, lo=0, hi=L, cells=400, boundary="absorbing")
    x = fp.grid.centres(0)
    out = fp.evolve(np.sin(np.pi * x / L), [0.0, 1.0], 1e-3, "bdf2")
    rate = math.log(fp.mass(out.density[0]) / fp.mass(out.density[1])) / 1.0
    assert rate == pytest.approx(T * math.pi ** 2 / L ** 2, rel=1e-4)
    with pytest.raises(ParameterError, match="no steady state"):
        fp.steady_state()


def test_periodic_constant_drift_has_uniform_steady_state_and_a_steady_current():
    b = 0.7
    fp = F.problem(drift=lambda x: np.full_like(x, b), temperature=0.3, lo=0, hi=2, cells=64, boundary="periodic")
    p = fp.steady_state()
    np.testing.assert_allclose(p, 0.5, rtol=1e-12)
    np.testing.assert_allclose(fp.current(p)[0], b * 0.5, rtol=1e-10)


def test_mfpt_matches_the_exact_one_d_integral_within_one_percent_and_converges():
    f = lambda x: (x * x - 1) ** 2  # noqa: E731
    T = 0.25
    hs, errors = [], []
    for n in (100, 200, 400):
        fp = F.problem(loss=DW, temperature=T, lo=-2.5, hi=2.5, cells=n)
        c = fp.grid.centres(0)
        target = c >= 0.5 - 1e-9
        tau = fp.mfpt(target)
        i0 = int(np.argmin(np.abs(c + 1)))
        exact = E.mfpt_exact_1d(f, c[i0], c[target][0], T, wall=-2.5)   # the chain is absorbed at the centre
        hs.append(fp.grid.spacing[0])
        errors.append(abs(tau[i0] / exact - 1))
    assert errors[0] < 0.01 and slope(hs, errors) > 1.8, errors


def test_bin_probabilities_and_point_mass():
    fp = F.problem(loss=DW, temperature=0.25, lo=-2.5, hi=2.5, cells=600)
    p = fp.steady_state()
    edges = np.linspace(-2.5, 2.5, 61)
    probs = fp.bin_probabilities(p, edges)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(probs, p.reshape(60, 10).sum(axis=1) * fp.grid.spacing[0], rtol=1e-12, atol=1e-15)
    assert fp.mass(fp.point_mass([0.3])) == pytest.approx(1.0)


@pytest.mark.parametrize("call, message", [
    (lambda: F.problem(loss=DW, temperature=0.0, lo=-1, hi=1, cells=10), "temperature must be a positive"),
    (lambda: F.problem(loss=DW, drift=lambda x: x, temperature=1.0, lo=-1, hi=1, cells=10), "exactly one of loss"),
    (lambda: F.problem(loss=DW, temperature=1.0, lo=1, hi=-1, cells=10), "need finite lo < hi"),
    (lambda: F.problem(loss=DW, temperature=1.0, lo=-1, hi=1, cells=2), "at least 3 cells"),
    (lambda: F.problem(loss=DW, temperature=1.0, lo=-1, hi=1, cells=10, boundary="sticky"), "unknown boundary 'sticky'"),
    (lambda: F.problem(loss=DW, temperature=1.0, lo=[-1, -1], hi=[1, 1], cells=10), "dimension 1 but the grid has 2"),
    (lambda: F.problem(loss=dw2, temperature=1.0, lo=[-1, -1], hi=[1, 1], cells=10, diffusion=[[1, 2], [2, 1]]),
     "symmetric positive-definite"),
    (lambda: F.problem(loss=DW, temperature=1.0, lo=-1, hi=1, cells=10).point_mass([3.0]), "outside the grid"),
    (lambda: F.problem(loss=DW, temperature=1.0, lo=-1, hi=1, cells=10).stepper(np.ones(10), 0.1, "rk4"),
     "unknown scheme 'rk4'"),
    (lambda: F.problem(loss=DW, temperature=1.0, lo=-1, hi=1, cells=100).stepper(np.ones(100), 0.1, "explicit"),
     "explicit scheme unstable: dt = 0.1 exceeds the CFL limit"),
    (lambda: F.problem(loss=DW, temperature=1.0, lo=-1, hi=1, cells=10).mfpt(np.zeros(10, bool)), "non-empty"),
])
def test_bad_input_raises_parameter_error(call, message):
    with pytest.raises(ParameterError, match=message):
        call()


def test_pde_density_for_sgd_runs_uses_the_sde_temperature():
    """For SGD on the finite-sum double well the SDE limit has T = lr var(a) / (2B) (as in the double-well
    scenario) and D = 1; the density equals the one set up by hand."""
    landscape = sgdsim.finite_sum_double_well(64, spread=5.0, seed=2)
    dyn = sgdsim.SGD(lr=0.02, batch=4)
    T, Dm = F.sde_coefficients(landscape, dyn)
    assert T == pytest.approx(0.02 * np.var(landscape.tilts) / 8, rel=1e-12) and np.array_equal(Dm, np.eye(1))
    fp, out = F.pde_density(landscape, dyn, [-1.0], [0, 50, 100], lo=-2.5, hi=2.5, cells=100, order=1)
    assert np.allclose(out.times, [0, 1, 2])
    hand = F.problem(loss=DW, temperature=T, lo=-2.5, hi=2.5, cells=100)
    ref = hand.evolve(hand.point_mass([-1.0]), [0, 1, 2], 0.01)
    np.testing.assert_allclose(out.density, ref.density, rtol=1e-12, atol=1e-14)
    # anisotropic tilts: D = Cov(a), T = lr / (2B)
    tilted = sgdsim.Tilted(sgdsim.Quadratic([1.0, 2.0]), np.random.default_rng(0).standard_normal((32, 2)) * [1, 3])
    T2, D2 = F.sde_coefficients(tilted, sgdsim.SGD(lr=0.1, batch=2))
    assert T2 == pytest.approx(0.025) and np.allclose(D2, np.cov(tilted.tilts.T, bias=True))
    with pytest.raises(ParameterError, match="no noise"):
        F.sde_coefficients(DW, sgdsim.GradientDescent(lr=0.1))


# --- the stochastic modified equations of SGD (issue 15) ------------------------------------------------

TILTED_DW = sgdsim.finite_sum_double_well(64, spread=3.0, seed=2)


def _modified_double_well(x, lr):
    """f + (lr/4) f'^2 for f = (x^2 - 1)^2, written out by hand (the order-2 SME's potential)."""
    return (x * x - 1) ** 2 + lr / 4 * (4 * x * (x * x - 1)) ** 2


def test_sme_steady_states_are_the_gibbs_densities_of_f_and_of_the_modified_loss():
    """1-D tilted sum (constant Sigma): the order-2 PDE's steady state is exp(-(f + lr f'^2/4)/T)/Z on the
    cells to round-off, the order-1 one exp(-f/T)/Z; the two differ by far more than round-off."""
    dyn = sgdsim.SGD(lr=0.05, batch=2)
    T = 0.05 * np.var(TILTED_DW.tilts) / 4
    states = {}
    for order, potential in ((2, lambda x: _modified_double_well(x, 0.05)), (1, lambda x: (x * x - 1) ** 2)):
        fp = F.sme_problem(TILTED_DW, dyn, lo=-2.0, hi=2.0, cells=300, order=order)
        assert fp.temperature == pytest.approx(T, rel=1e-12)
        w = np.exp(-(potential(fp.grid.centres(0)) - potential(fp.grid.centres(0)).min()) / T)
        np.testing.assert_allclose(fp.steady_state(), w / fp.integrate(w), rtol=1e-8, atol=1e-12)
        states[order] = fp.steady_state()
    assert np.abs(states[2] - states[1]).max() > 0.05 * states[1].max()
    default = F.sme_problem(TILTED_DW, dyn, lo=-2.0, hi=2.0, cells=300)    # SGD solves order 2 by default
    np.testing.assert_array_equal(default.steady_state(), states[2])


def _regression_1d():
    rng = np.random.default_rng(4)
    a = 1.0 + 0.5 * rng.standard_normal(24)
    return sgdsim.Regression(a[:, None], 0.8 * a + 0.6 * rng.standard_normal(24))


def test_sme_with_multiplicative_noise_keeps_mass_and_sign_and_has_the_exact_ito_steady_state():
    """Least squares in 1-D: Sigma(x) = k C(x) is state dependent. The order-2 PDE conserves mass, stays
    non-negative, and its steady state converges at second order to the zero-flux density
    p ~ exp(int b / (T D)) / D of the Itô SDE with b = -f' - (lr/2) f'' f', T D = lr k C(x) / 2, computed here
    by quadrature on a fine grid."""
    ls, lr, batch = _regression_1d(), 0.2, 2
    dyn = sgdsim.SGD(lr=lr, batch=batch)
    T = lr / (2 * batch)
    H = float(np.mean(ls.A[:, 0] ** 2))

    def drift(x):
        g = ls.grad(x[:, None])[:, 0]
        return -g - lr / 2 * H * g

    def noise(x):
        return np.array([ls.noise_covariance([v])[0, 0] for v in x])

    fine = np.linspace(-1.5, 3.0, 20001)
    log_w = scipy.integrate.cumulative_trapezoid(drift(fine) / (T * noise(fine)), fine, initial=0.0)
    hs, errors = [], []
    for n in (60, 120, 240):
        fp = F.sme_problem(ls, dyn, lo=-1.5, hi=3.0, cells=n)
        x = fp.grid.centres(0)
        exact = np.exp(np.interp(x, fine, log_w) - log_w.max()) / noise(x)
        exact /= fp.integrate(exact)
        p = fp.steady_state()
        hs.append(fp.grid.spacing[0])
        errors.append(fp.integrate(np.abs(p - exact)))
    assert errors[-1] < 2e-3 and slope(hs, errors) > 1.8, errors
    order1 = F.sme_problem(ls, dyn, lo=-1.5, hi=3.0, cells=240, order=1).steady_state()
    assert fp.integrate(np.abs(order1 - exact)) > 10 * errors[-1]       # order 1 is another density
    out = fp.evolve(fp.point_mass([2.0]), [0.0, 1.0, 5.0, 20.0], dt=0.01)
    assert np.all(np.abs([fp.mass(p) - 1 for p in out.density]) < 1e-11)
    assert out.density.min() >= -1e-14


def test_sme_mfpt_matches_the_exact_integral_of_the_modified_potential():
    """The order-2 PDE's mean first-passage time over the barrier equals the exact 1-D integral with the
    potential f + (lr/4) f'^2 (within 1% at 400 cells), and is not the order-1 (plain f) time."""
    lr = 0.05
    dyn = sgdsim.SGD(lr=lr, batch=2)
    fp = F.sme_problem(TILTED_DW, dyn, lo=-2.5, hi=2.5, cells=400)
    c = fp.grid.centres(0)
    target = c >= 0.5 - 1e-9
    tau = fp.mfpt(target)
    i0 = int(np.argmin(np.abs(c + 1)))
    T = fp.temperature
    exact = E.mfpt_exact_1d(lambda x: _modified_double_well(x, lr), c[i0], c[target][0], T, wall=-2.5)
    plain = E.mfpt_exact_1d(lambda x: (x * x - 1) ** 2, c[i0], c[target][0], T, wall=-2.5)
    assert tau[i0] == pytest.approx(exact, rel=0.01)
    assert abs(plain / exact - 1) > 3 * 0.01       # the order-1 time is outside the tolerance
    tau1 = F.sme_problem(TILTED_DW, dyn, lo=-2.5, hi=2.5, cells=400, order=1).mfpt(target)
    assert tau1[i0] == pytest.approx(plain, rel=0.01)


def test_pde_density_of_an_sme_dynamics_uses_its_step_time():
    sme = sgdsim.particles.dynamics.SME(lr=0.1, batch=2, substeps=4)
    fp, out = F.pde_density(TILTED_DW, sme, [0.5], [0, 8, 16], lo=-2, hi=2, cells=80)
    np.testing.assert_allclose(out.times, [0.0, 0.2, 0.4])
    _, ref = F.pde_density(TILTED_DW, sgdsim.SGD(lr=0.1, batch=2), [0.5], [0, 2, 4], lo=-2, hi=2, cells=80,
                           dt=0.2 / 100)
    np.testing.assert_allclose(out.density, ref.density, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: F.sme_problem(TILTED_DW, sgdsim.SGD(lr=0.1, momentum=0.5), lo=-2, hi=2, cells=10),
     "order-2 SME is for SGD without momentum"),
    (lambda: F.sme_problem(TILTED_DW, sgdsim.SGD(lr=0.1), lo=-2, hi=2, cells=10, order=3), "order must be 1 or 2"),
    (lambda: F.sme_problem(DW, sgdsim.Langevin(lr=0.1), lo=-2, hi=2, cells=10, order=2), "order applies to SGD"),
    (lambda: F.sme_problem(TILTED_DW, sgdsim.particles.dynamics.SME(lr=0.1, order=1), lo=-2, hi=2, cells=10, order=2),
     "SME of order 1"),
    (lambda: F.sme_problem(DW, sgdsim.SGD(lr=0.1), lo=-2, hi=2, cells=10), "needs a finite sum"),
])
def test_sme_problem_bad_input(call, message):
    with pytest.raises(ParameterError, match=message):
        call()


def test_euler_modified_equation_coefficients_in_one_d_are_the_hand_formula():
    """b = -f' - (lr/2)(f' f'' - T f'''), D = 1 + lr f'' for f = (x^2 - 1)^2 (f' = 4x(x^2-1), f'' = 12x^2 - 4,
    f''' = 24x), the grad tr(D H) term by finite differences inside to ~1e-8."""
    from sgdsim.particles import modified_equations as ME
    lr, T = 0.05, 0.3
    drift, diffusion = ME.euler_modified_coefficients(TILTED_DW, lr, T, np.eye(1))
    x = np.linspace(-2, 2, 41)[:, None]
    f1, f2, f3 = 4 * x * (x * x - 1), 12 * x * x - 4, 24 * x
    np.testing.assert_allclose(drift(x), -f1 - lr / 2 * (f1 * f2 - T * f3), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(diffusion(x)[:, 0, 0], 1 + lr * f2[:, 0], rtol=1e-12)


def test_euler_modified_equation_keeps_the_discrete_stationary_covariance_to_second_order():
    """Tilted 2-D quadratic, constant non-diagonal D: SGD (= Euler with step lr) has the stationary covariance
    S = P S P + 2 T lr D. The modified equation's linear drift and diffusion (read off the coefficient
    functions) give a continuous Lyapunov covariance within O(lr^2) of it (fitted slope 2); the order-2 SME
    (diffusion not corrected) only within O(lr) (slope 1)."""
    from sgdsim.particles import modified_equations as ME
    H = np.diag([1.0, 3.0])
    Dm = np.array([[1.0, 0.4], [0.4, 0.6]])
    tilted = sgdsim.Tilted(sgdsim.Quadratic([1.0, 3.0]), np.random.default_rng(1).standard_normal((8, 2)))
    lrs = np.array([0.04, 0.02, 0.01, 0.005])
    euler_err, sme_err = [], []
    for lr in lrs:
        T = 0.2
        drift, diffusion = ME.euler_modified_coefficients(tilted, lr, T, Dm)
        A = -np.stack([drift(e[None])[0] for e in np.eye(2)], axis=1)      # drift = -A x
        Dmod = diffusion(np.zeros((1, 2)))[0]
        exact = scipy.linalg.solve_discrete_lyapunov(np.eye(2) - lr * H, 2 * T * lr * Dm)
        modified = scipy.linalg.solve_continuous_lyapunov(A, 2 * T * Dmod)
        sme2 = scipy.linalg.solve_continuous_lyapunov(H + lr / 2 * H @ H, 2 * T * Dm)
        euler_err.append(np.abs(modified - exact).max())
        sme_err.append(np.abs(sme2 - exact).max())
    assert abs(slope(lrs, euler_err) - 2) < 0.3 and abs(slope(lrs, sme_err) - 1) < 0.15


def test_euler_modified_pde_steady_state_is_the_euler_invariant_density_to_second_order():
    """1-D tilted double well: the steady state of sme_problem(equation="euler") and the closed-form density
    exp(-f_eff/T) of `modified_equations.euler_invariant_loss` differ by O(lr^2) (L1 slope 2 in lr), while
    either differs from Gibbs by O(lr); the temperature T ~ 0.25 is held fixed (spread^2 = 2 T B / lr)."""
    from sgdsim.particles import modified_equations as ME
    lrs = np.array([0.04, 0.02, 0.01])
    gaps, gibbs_gaps = [], []
    for lr in lrs:
        landscape = sgdsim.finite_sum_double_well(64, spread=np.sqrt(2 * 0.25 * 2 / lr), seed=2)
        fp = F.sme_problem(landscape, sgdsim.SGD(lr=lr, batch=2), lo=-2.5, hi=2.5, cells=1000, equation="euler")
        T = fp.temperature
        f_eff = ME.euler_invariant_loss(landscape, lr, T)(fp.grid.centres(0)[:, None])
        closed = np.exp(-(f_eff - f_eff.min()) / T)
        closed /= fp.integrate(closed)
        p = fp.steady_state()
        f = (fp.grid.centres(0) ** 2 - 1) ** 2
        gibbs = np.exp(-(f - f.min()) / T)
        gibbs /= fp.integrate(gibbs)
        gaps.append(fp.integrate(np.abs(p - closed)))
        gibbs_gaps.append(fp.integrate(np.abs(p - gibbs)))
    assert abs(slope(lrs, gaps) - 2) < 0.3 and abs(slope(lrs, gibbs_gaps) - 1) < 0.15, (gaps, gibbs_gaps)
    with pytest.raises(ParameterError, match="needs SGD \\(order 2\\) on a tilted finite sum"):
        F.sme_problem(_regression_1d(), sgdsim.SGD(lr=0.1), lo=-1, hi=1, cells=10, equation="euler")
    with pytest.raises(ParameterError, match="unknown modified equation 'heun'"):
        F.sme_problem(TILTED_DW, sgdsim.SGD(lr=0.1), lo=-1, hi=1, cells=10, equation="heun")
