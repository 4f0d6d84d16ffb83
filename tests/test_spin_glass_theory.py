"""Spherical p-spin theory: the complexity's rate function against its integral form, ground-state and
threshold energies against the literature, conversions between normalizations, T_d, the semicircle."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from sgdsim import spin_glass_theory as th
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
