"""The Ripple landscape (sharp local minima on a bowl): Numba kernel == NumPy twin, gradient == central
differences, and its closed-form Gaussian smoothing == the convolution by Gauss–Hermite quadrature."""
from __future__ import annotations

import numpy as np
import pytest

from sgdsim.particles.landscapes import Ripple
from sgdsim.solvers.particles import landscapes as LK

RIPPLE = Ripple(2, bowl=1.0, amplitude=0.1, wavelength=0.2)


def test_kernel_equals_numpy_twin(rng):
    xs = 1.5 * rng.standard_normal((25, 2))
    theta, data = RIPPLE.theta, np.zeros((0, 0))
    f_nb = np.array([LK.value(LK.RIPPLE, x, theta, data) for x in xs])
    g_nb = np.empty_like(xs)
    for x, out in zip(xs, g_nb):
        LK.grad(LK.RIPPLE, x, theta, data, out)
    np.testing.assert_allclose(f_nb, RIPPLE.value(xs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g_nb, RIPPLE.grad(xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.03, 0.1])
def test_gradient_equals_central_differences(smoothing, rng):
    xs = rng.standard_normal((10, 2))
    h = 1e-6
    fd = np.stack([(RIPPLE.value(xs + h * e, smoothing) - RIPPLE.value(xs - h * e, smoothing)) / (2 * h)
                   for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(RIPPLE.grad(xs, smoothing), fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("smoothing", [0.02, 0.05, 0.2])
def test_smoothed_value_is_the_gaussian_convolution(smoothing, rng):
    z, w = np.polynomial.hermite_e.hermegauss(80)          # E[g(Z)], Z ~ N(0, 1)
    w = w / w.sum()
    xs = rng.standard_normal((6, 2))
    conv = np.array([sum(wi * wj * RIPPLE.value(x + smoothing * np.array([zi, zj]))
                         for zi, wi in zip(z, w) for zj, wj in zip(z, w)) for x in xs])
    np.testing.assert_allclose(RIPPLE.value(xs, smoothing), conv, rtol=1e-10)


def test_many_sharp_minima_that_smoothing_removes():
    x = np.linspace(-2, 2, 4001)[:, None]
    one = Ripple(1, bowl=1.0, amplitude=0.1, wavelength=0.2)
    g = one.grad(x)[:, 0]
    minima = np.sum((g[:-1] < 0) & (g[1:] >= 0))
    assert minima >= 15
    k = 2 * np.pi / 0.2
    s_star = np.sqrt(2 * np.log(0.1 * k ** 2 / 1.0)) / k     # a k^2 e^{-(k s)^2/2} = c: last minima vanish
    g_s = one.grad(x, 1.05 * s_star)[:, 0]
    assert np.sum((g_s[:-1] < 0) & (g_s[1:] >= 0)) == 1


def test_negative_amplitude_is_the_cosine_of_the_other_sign(rng):
    """a < 0: f = c x^2/2 - |a| (1 - cos(2 pi x/w)); its Gaussian smoothing is still the closed form, and its
    ripples are those of |a| shifted by half a wavelength (up to the constant 2|a|)."""
    neg, pos = Ripple(1, amplitude=-0.1), Ripple(1, amplitude=0.1)
    x = rng.standard_normal((20, 1))
    z, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    conv = np.array([np.sum(w * neg.value(xi + 0.05 * z[:, None])) for xi in x])
    np.testing.assert_allclose(neg.value(x, 0.05), conv, rtol=1e-10)
    ripples = lambda r, u: r.value(u) - 0.5 * r.bowl * u[:, 0] ** 2  # noqa: E731
    np.testing.assert_allclose(ripples(neg, x + 0.1) + 0.2, ripples(pos, x), atol=1e-12)
