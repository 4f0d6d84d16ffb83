"""The 1-D escape-time formulas (sgdsim/fokker_planck/escape.py): the exact double integral against closed forms
(free diffusion, constant force) and Kramers' formula as its T -> 0 limit (relative error shrinking like T)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sgdsim.fokker_planck import escape as E
from sgdsim.errors import ParameterError


def test_free_diffusion_with_a_reflecting_wall():
    # tau'' T = -1, tau(b) = 0, tau'(a) = 0  =>  tau(x) = ((b - a)^2 - (x - a)^2) / (2T)
    a, x0, b, T = -1.0, 0.2, 1.5, 0.7
    exact = ((b - a) ** 2 - (x0 - a) ** 2) / (2 * T)
    assert E.mfpt_exact_1d(lambda x: 0.0, x0, b, T, wall=a) == pytest.approx(exact, rel=1e-10)


def test_constant_force_towards_the_target():
    # f = -c x: drift c, tau(x) = (b - x)/c - (T/c^2)(e^{-c(x-a)/T} - e^{-c(b-a)/T})
    a, x0, b, T, c = 0.0, 0.3, 2.0, 0.5, 1.3
    exact = (b - x0) / c - T / c ** 2 * (math.exp(-c * (x0 - a) / T) - math.exp(-c * (b - a) / T))
    assert E.mfpt_exact_1d(lambda x: -c * x, x0, b, T, wall=a) == pytest.approx(exact, rel=1e-10)


def test_kramers_is_the_low_temperature_limit_of_the_exact_time():
    f = lambda x: (x * x - 1) ** 2  # noqa: E731  barrier 1, f''(+-1) = 8, f''(0) = -4
    temperatures = np.array([0.2, 0.1, 0.05, 0.025])
    errors = np.array([E.mfpt_exact_1d(f, -1.0, 1.0, T) / E.kramers_time(1.0, 8.0, -4.0, T) - 1
                       for T in temperatures])
    assert np.all(errors > 0) and errors[-1] < 0.011
    assert 0.8 < np.polyfit(np.log(temperatures), np.log(errors), 1)[0] < 1.3   # error O(T)
    # to the barrier top the time is half of it (the particle there goes either way)
    half = E.mfpt_exact_1d(f, -1.0, 0.0, 0.025) / E.kramers_time(1.0, 8.0, -4.0, 0.025)
    assert half == pytest.approx(0.5, abs=0.01)


def laplace_residual(first_order: float, temperatures) -> np.ndarray:
    """(exact / Kramers - 1) / T - first_order for the quartic well (x^2 - 1)^2, from x0 = -1 to b = 1."""
    f = lambda x: (x * x - 1) ** 2  # noqa: E731
    return np.array([(E.mfpt_exact_1d(f, -1.0, 1.0, T) / E.kramers_time(1.0, 8.0, -4.0, T) - 1) / T - first_order
                     for T in temperatures])


def test_kramers_first_correction_is_three_eighths_t():
    # Laplace's method to the next order: each Gaussian integral of the exact formula carries 1 + 3T/16 for
    # (x^2 - 1)^2 (minimum: 4u^2 - 4u^3 + u^4; top: -2y^2 + y^4), so tau = tau_Kramers (1 + 3T/8 + O(T^2)),
    # as scenarios/kramers.py states: the residual after 3T/8 is O(T) in the relative error per T
    temperatures = np.array([0.05, 0.025, 0.0125])
    residual = laplace_residual(3 / 8, temperatures)
    assert 0.8 < np.polyfit(np.log(temperatures), np.log(residual), 1)[0] < 1.2
    assert np.all(np.abs(residual) < 0.6 * temperatures)
    # a wrong first-order coefficient leaves an O(1) residual that does not shrink with T
    wrong = laplace_residual(1 / 4, temperatures)
    assert np.all(np.abs(wrong) > 0.6 * temperatures) and abs(np.polyfit(np.log(temperatures), np.log(wrong), 1)[0]) < 0.2


@pytest.mark.parametrize("call, message", [
    (lambda: E.mfpt_exact_1d(lambda x: 0.0, 1.0, 0.5, 1.0, wall=0.0), "need wall < x0 < target"),
    (lambda: E.mfpt_exact_1d(lambda x: 0.0, 0.2, 0.5, 0.0, wall=0.0), "temperature must be positive"),
    (lambda: E.kramers_time(1.0, -8.0, -4.0, 0.1), "Kramers' formula needs"),
])
def test_bad_input(call, message):
    with pytest.raises(ParameterError, match=message):
        call()
