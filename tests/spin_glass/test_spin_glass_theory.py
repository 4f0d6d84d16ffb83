"""Spherical p-spin theory: the complexity's rate function against its integral form, ground-state and
threshold energies against the literature, conversions between normalizations, T_d, the semicircle."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize

from sgdsim.spin_glass import theory as th
from sgdsim.errors import ParameterError


@pytest.mark.parametrize("p", [3, 4])
def test_rate_function_is_the_goe_top_eigenvalue_integral(p):
    """I_1(u) = (2/E^2) int_E^{-u} sqrt(y^2 - E^2) dy, E = E_inf (large deviation of the top GOE eigenvalue)."""
    E = -th.threshold_energy(p)
    for u in (-E, -1.05 * E, -1.5 * E):
        quad = 2 / E ** 2 * integrate.quad(lambda y: math.sqrt(y * y - E * E), E, -u)[0]
        assert th.large_deviation_I1(u, p) == pytest.approx(quad, abs=1e-10)


def test_ground_state_and_threshold_against_the_literature():
    # Crisanti & Sommers 1992 (p = 3, their convention xi = q^3/2): E_0 = -1.172, E_th = -sqrt(4/3) = -1.1547
    assert th.convert_energy(th.ground_state_energy(3)) == pytest.approx(-1.172, abs=1e-3)
    assert th.convert_energy(th.threshold_energy(3)) == pytest.approx(-math.sqrt(4 / 3), rel=1e-12)
    # ABC 2013: the energies -E_k of index-k critical points decrease to the threshold -E_inf with k
    for p in (3, 4):
        Ek = [th.ground_state_energy(p, k) for k in range(6)]
        assert np.all(np.diff(Ek) > 0) and Ek[-1] < th.threshold_energy(p)
        assert th.complexity(Ek[0], p, 0) == pytest.approx(0, abs=1e-10)
        # the total complexity is continuous at the threshold and peaks at 1/2 log(p-1) (u >= 0)
        E = -th.threshold_energy(p)
        assert th.complexity(-E - 1e-9, p) == pytest.approx(th.complexity(-E + 1e-9, p), abs=1e-6)
        assert th.complexity(0.0, p) == pytest.approx(0.5 * math.log(p - 1))
        # below the threshold minima dominate (ABC Thm 2.5 = 2.8 at k = 0); saddles of index 1 are rarer
        u = -1.01 * E
        assert th.complexity(u, p, 0) == th.complexity(u, p) > th.complexity(u, p, 1)


def test_dynamical_temperature_closed_form_and_conversion():
    for p in (3, 4, 5):
        xi = th.Xi.mixture({p: 1.0})
        closed_cs = math.sqrt(p * (p - 2) ** (p - 2) / (2 * (p - 1) ** (p - 1)))   # Crisanti-Sommers convention
        assert th.convert_temperature(th.dynamical_temperature(xi)) == pytest.approx(closed_cs, rel=1e-6)
    assert th.dynamical_temperature(th.Xi.mixture({2: 1.0})) == pytest.approx(math.sqrt(2), rel=1e-4)


def test_convention_factors_and_paramagnet():
    xi = th.Xi.mixture({2: 0.5, 3: 2.0})
    assert xi(1.0) == pytest.approx(4.25) and xi.d1(1.0) == pytest.approx(12.5) and xi.d2(1.0) == pytest.approx(24.5)
    assert th.paramagnetic_energy(xi, 2.0) == pytest.approx(-4.25 / 2)
    assert th.convert_energy(th.convert_energy(-1.3), "crisanti-sommers", "abc") == pytest.approx(-1.3)
    with pytest.raises(ParameterError, match="unknown normalization 'sk'.*abc, crisanti-sommers"):
        th.convert_energy(1.0, "sk")
    with pytest.raises(ParameterError, match="p >= 2"):
        th.threshold_energy(1)


def test_semicircle_is_normalized_with_the_stated_radius():
    xi = th.Xi.mixture({3: 1.0})
    r = th.hessian_radius(xi)
    assert r == pytest.approx(2 * math.sqrt(6))
    x = np.linspace(-2 - r, -2 + r, 200001)
    rho = th.semicircle_density(x, -2.0, r)
    assert np.trapezoid(rho, x) == pytest.approx(1, abs=1e-5)
    assert np.trapezoid(rho * (x + 2) ** 2, x) == pytest.approx(r ** 2 / 4, rel=1e-4)


def _one_step_2beta_f(T, q, m, p):
    """2 beta f of the 1RSB ansatz (q_0 = 0, q_1 = q, breaking parameter m) for xi = q^p, written out here
    independently of the library: -beta^2 [1 + (m-1) q^p] - (m-1)/m ln(1-q) - (1/m) ln(1 - q + m q)."""
    b2 = 1.0 / T ** 2
    return -b2 * (1 + (m - 1) * q ** p) - (m - 1) / m * math.log(1 - q) - math.log(1 - q + m * q) / m


@pytest.mark.parametrize("p", [3, 4, 5])
def test_static_temperature_is_where_the_one_step_solution_with_m_1_appears(p):
    """Root-find (T, q) of the 1RSB stationarity conditions d_m (2 beta f) = 0 and d_q d_m (2 beta f) = 0 at
    m = 1, derivatives by central finite differences of the free energy itself (not of the reduced equation)."""
    eps = 1e-4

    def dm(T, q):
        return (_one_step_2beta_f(T, q, 1 + eps, p) - _one_step_2beta_f(T, q, 1 - eps, p)) / (2 * eps)

    def conditions(x):          # T = e^x0 > 0, 0 < q = 1 / (1 + e^-x1) < 1
        T, q = math.exp(x[0]), 1 / (1 + math.exp(-x[1]))
        return [T * T * dm(T, q), T * T * (dm(T, q + eps) - dm(T, q - eps)) / (2 * eps)]

    x = optimize.fsolve(conditions, [math.log(0.7), math.log(p - 1)], xtol=1e-9)   # q = 1 - 1/p to start
    T_fd, q_fd = math.exp(x[0]), 1 / (1 + math.exp(-x[1]))
    assert 0 < q_fd < 1
    xi = th.Xi.mixture({p: 1.0})
    T_s = th.static_temperature(xi)
    assert T_s == pytest.approx(T_fd, rel=1e-6)
    assert T_s < th.dynamical_temperature(xi)
    # at the root the 1RSB free energy equals the paramagnet's (m = 1 or q = 0: -beta^2)
    assert _one_step_2beta_f(T_fd, q_fd, 1.0, p) == pytest.approx(-1 / T_fd ** 2, rel=1e-12)


def test_static_temperature_against_crisanti_sommers_and_its_refusals():
    # Crisanti & Sommers 1992 (p = 3, their xi = q^3 / 2): T_s = 0.586, T_d = sqrt(3/8) = 0.612
    xi = th.Xi.mixture({3: 1.0})
    assert th.convert_temperature(th.static_temperature(xi)) == pytest.approx(0.586, abs=5e-4)
    # xi = c q^p: temperatures scale with sqrt(c)
    assert th.static_temperature(th.Xi.mixture({3: 2.0})) == pytest.approx(2 * th.static_temperature(xi))
    for bad in ({2: 1.0}, {2: 0.5, 3: 1.0}):
        with pytest.raises(ParameterError, match="pure p-spin with p >= 3"):
            th.static_temperature(th.Xi.mixture(bad))
