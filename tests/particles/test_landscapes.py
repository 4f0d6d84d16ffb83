"""Landscapes: the Numba kernels equal their NumPy twins, gradients equal finite differences of the values,
Hessian-vector products equal finite differences of the gradients, per-example gradients average to the full
gradient, and tilted sums have the documented noise."""
import numpy as np
import pytest

from sgdsim.particles import landscapes as L
from sgdsim.particles import theory
from sgdsim.errors import ParameterError
from sgdsim.solvers.particles import landscapes as LK
from sgdsim.solvers.particles import kernel as PK

_DATA = np.random.default_rng(5)
A = _DATA.standard_normal((12, 3))
B = _DATA.standard_normal(12)
RAW_TILTS = 0.8 * _DATA.standard_normal((9, 2)) + 0.3  # not centred: Tilted must centre them

LANDSCAPES = {
    "quadratic": L.Quadratic([0.5, 2.0, 1.3]),
    "double-well": L.DoubleWell(3, 0.7),
    "strict-saddle": L.StrictSaddle(4),
    "sharp-wide": L.SharpWide(3),
    "sharp-wide-custom": L.SharpWide(2, sharp=(0.8, -0.5, 0.2), wide=(1.2, 0.7, 0.6), confinement=0.1),
    "finite-sum-double-well": L.finite_sum_double_well(n_examples=16, spread=1.0, dim=2, seed=1, height=0.5),
    "tilted-quadratic": L.Tilted(L.Quadratic([0.5, 2.0]), RAW_TILTS),
    "least-squares": L.Regression(A, B),
    "l4-regression": L.Regression(A, B, p=4),
    "ripple": L.Ripple(2, bowl=0.7, amplitude=0.1, wavelength=0.4),
    "ring": L.Ring(2),
    "ring-3d": L.Ring(3),
}
FINITE_SUMS = ["finite-sum-double-well", "tilted-quadratic", "least-squares", "l4-regression"]


def _points(ls, rng, m=25):
    return 1.5 * rng.standard_normal((m, ls.dim))


@pytest.mark.parametrize("name", LANDSCAPES)
def test_numba_kernels_equal_numpy_twin(name, rng):
    ls = LANDSCAPES[name]
    xs = _points(ls, rng)
    theta, data = ls.theta, np.ascontiguousarray(ls.data, dtype=float)
    f_np, g_np = ls.value(xs), ls.grad(xs)
    assert f_np.shape == (len(xs),) and g_np.shape == xs.shape
    f_nb = np.array([LK.value(ls.code, x, theta, data) for x in xs])
    g_nb = np.empty_like(xs)
    for x, out in zip(xs, g_nb):
        LK.grad(ls.code, x, theta, data, out)
    f_par = np.empty(len(xs))
    LK.values(ls.code, xs, theta, data, f_par)
    g_par = np.empty_like(xs)
    LK.gradients(ls.code, xs, theta, data, g_par)
    np.testing.assert_allclose(f_nb, f_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(f_par, f_nb)
    np.testing.assert_array_equal(g_par, g_nb)
    scale = np.abs(g_np).max()
    np.testing.assert_allclose(g_nb, g_np, rtol=1e-12, atol=1e-12 * scale)


@pytest.mark.parametrize("name", LANDSCAPES)
def test_gradient_equals_central_differences(name, rng):
    ls = LANDSCAPES[name]
    xs = _points(ls, rng, m=10)
    h = 1e-6
    fd = np.empty_like(xs)
    for k in range(ls.dim):
        e = np.zeros(ls.dim)
        e[k] = h
        fd[:, k] = (ls.value(xs + e) - ls.value(xs - e)) / (2 * h)
    scale = np.abs(fd).max()
    np.testing.assert_allclose(ls.grad(xs), fd, rtol=1e-6, atol=1e-7 * scale)


@pytest.mark.parametrize("name", LANDSCAPES)
def test_hessian_vector_kernel_equals_twin_and_finite_differences(name, rng):
    """H(x) v: the compiled kernel (parallel over particles), the NumPy twin, and the central difference
    (grad f(x + h v) - grad f(x - h v)) / 2h of the gradient (itself checked against the values above)."""
    ls = LANDSCAPES[name]
    xs, vs = _points(ls, rng, m=12), rng.standard_normal((12, ls.dim))
    twin = ls.hessian_vector(xs, vs)
    compiled = np.empty_like(xs)
    LK.hessian_vectors(ls.code, xs, ls.theta, np.ascontiguousarray(ls.data, dtype=float), vs, compiled)
    scale = np.abs(twin).max()
    np.testing.assert_allclose(compiled, twin, rtol=1e-12, atol=1e-12 * scale)
    h = 1e-5
    fd = (ls.grad(xs + h * vs) - ls.grad(xs - h * vs)) / (2 * h)
    np.testing.assert_allclose(twin, fd, rtol=1e-6, atol=1e-7 * scale)
    # the Hessian without one curvature term (e.g. the diagonal only, or the identity) is rejected
    assert np.abs(twin - vs).max() > 1e-3 * scale


@pytest.mark.parametrize("name", FINITE_SUMS)
def test_example_gradients_average_to_gradient(name, rng):
    ls = LANDSCAPES[name]
    for x in _points(ls, rng, m=5):
        g = ls.example_grads(x)
        assert g.shape == (ls.n_examples, ls.dim)
        np.testing.assert_allclose(g.mean(axis=0), ls.grad(x[None])[0], rtol=1e-12, atol=1e-12 * np.abs(g).max())


@pytest.mark.parametrize("p", [2.0, 4.0])
def test_regression_example_gradients(p, rng):
    """Per-example gradients: the kernel's example_grad_add, the NumPy twin and finite differences of
    f_i(x) = |a_i.x - b_i|^p / p written out here all agree."""
    ls = L.Regression(A, B, p=p)
    x = rng.standard_normal(3)
    g_np = ls.example_grads(x)
    h = 1e-6
    for i in range(len(B)):
        out = np.zeros(3)
        LK.example_grad_add(ls.code, x, ls.theta, ls.data, i, 1.0, out)
        np.testing.assert_allclose(out, g_np[i], rtol=1e-12, atol=1e-13)
        f_i = lambda y: abs(A[i] @ y - B[i]) ** p / p
        fd = [(f_i(x + h * e) - f_i(x - h * e)) / (2 * h) for e in np.eye(3)]
        np.testing.assert_allclose(g_np[i], fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())
    # weights are applied: out += w g_i accumulates
    out = np.ones(3)
    LK.example_grad_add(ls.code, x, ls.theta, ls.data, 2, 0.25, out)
    np.testing.assert_allclose(out, 1.0 + 0.25 * g_np[2], rtol=1e-14)


def test_tilts_are_centred_so_sum_equals_base(rng):
    ls = LANDSCAPES["tilted-quadratic"]
    np.testing.assert_allclose(ls.tilts, RAW_TILTS - RAW_TILTS.mean(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ls.tilts.mean(axis=0), 0.0, atol=1e-15)
    xs = _points(ls, rng, m=6)
    base = L.Quadratic([0.5, 2.0])
    # f = (1/N) sum_i (base(x) + a_i . x) written out from the definition of f_i
    f_sum = np.mean(base.value(xs)[:, None] + xs @ ls.tilts.T, axis=1)
    np.testing.assert_allclose(f_sum, base.value(xs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ls.value(xs), base.value(xs), rtol=1e-15)
    np.testing.assert_allclose(ls.example_grads(xs[0]), base.grad(xs[:1]) + ls.tilts, rtol=1e-15)
    assert ls.code == base.code and ls.n_examples == len(RAW_TILTS)
    np.testing.assert_array_equal(ls.data, ls.tilts)


@pytest.mark.parametrize("name", ["tilted-quadratic", "finite-sum-double-well"])
def test_tilted_noise_covariance_is_cov_of_tilts(name, rng):
    ls = LANDSCAPES[name]
    expected = np.cov(ls.tilts.T, bias=True)
    if name == "tilted-quadratic":
        np.testing.assert_allclose(expected, np.cov(RAW_TILTS.T, bias=True), rtol=1e-12)
    for x in _points(ls, rng, m=3):  # state-independent
        np.testing.assert_allclose(ls.noise_covariance(x), np.atleast_2d(expected), rtol=1e-12, atol=1e-15)


def test_regression_noise_covariance_and_kernel_factor(rng):
    """C(x) = (1/N) sum_i (g_i - g)(g_i - g)^T from an explicit loop; at x* it is theory's C; the kernel's
    Cholesky factor L (used by diffusion="gradient") satisfies L L^T = C(x)."""
    for p in (2.0, 4.0):
        ls = L.Regression(A, B, p=p)
        for x in _points(ls, rng, m=3):
            gi = ls.example_grads(x)
            g = gi.mean(axis=0)
            explicit = sum(np.outer(v - g, v - g) for v in gi) / len(gi)
            C = ls.noise_covariance(x)
            np.testing.assert_allclose(C, explicit, rtol=1e-12, atol=1e-14)
            factor, cov = np.empty((3, 3)), np.empty((3, 3))
            PK.gradient_noise_factor(ls.code, x, ls.theta, ls.data, np.empty((len(B), 3)), cov, factor)
            assert np.all(np.triu(factor, 1) == 0) and np.all(np.diag(factor) >= 0)
            np.testing.assert_allclose(factor @ factor.T, C, rtol=1e-11, atol=1e-13 * np.abs(C).max())
    moments = theory.least_squares_moments(A, B)
    np.testing.assert_allclose(L.Regression(A, B).noise_covariance(moments.x_star), moments.noise_covariance,
                               rtol=1e-10, atol=1e-14)


def test_kernel_factor_of_rank_deficient_covariance():
    """Two examples in d = 3: C has rank 1; the factor must still reproduce it (zero pivots skipped)."""
    A2 = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])
    ls = L.Regression(A2, np.array([0.4, -0.2]))
    x = np.array([0.1, 0.2, -0.3])
    factor, cov = np.empty((3, 3)), np.empty((3, 3))
    PK.gradient_noise_factor(ls.code, x, ls.theta, ls.data, np.empty((2, 3)), cov, factor)
    C = ls.noise_covariance(x)
    assert np.linalg.matrix_rank(C) == 1
    assert np.all(np.isfinite(factor))
    np.testing.assert_allclose(factor @ factor.T, C, rtol=1e-10, atol=1e-12 * np.abs(C).max())


def test_landscape_input_errors():
    with pytest.raises(ParameterError, match="last dimension 3"):
        LANDSCAPES["quadratic"].value(np.zeros((4, 2)))
    with pytest.raises(ParameterError, match="p must be >= 2"):
        L.Regression(A, B, p=1.5)
    with pytest.raises(ParameterError, match="rows"):
        L.Regression(A, B[:-1])
    with pytest.raises(ParameterError, match="tilts must have shape"):
        L.Tilted(L.Quadratic([1.0, 2.0]), np.zeros((5, 3)))
    with pytest.raises(ParameterError, match="not a finite sum"):
        LANDSCAPES["double-well"].example_grads(np.zeros(3))
