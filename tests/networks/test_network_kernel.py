"""The network kernel against what it did not compute: central finite differences of the loss (gradients, every
activation and loss), the exact R-operator Hessian-vector product of the NumPy twin, the analytic Hessian of a
linear network with square loss (sharpness), the NumPy twin's SGD (same minibatches), and itself at 1 vs 2
threads (bit-identical)."""
from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest

from sgdsim.solvers.networks import kernel as K
from sgdsim.solvers.networks import reference as R
from sgdsim.solvers.rng import seed_states

SIZES = (3, 5, 4, 2)   # two hidden layers: every layer type is exercised between hidden layers
CASES = list(itertools.product(("linear", "relu", "tanh"), ("square", "cross-entropy"), (1, 2)))


def make(act, loss, outputs, rng, n=7, members=2):
    sizes = (*SIZES[:-1], outputs)
    X = rng.standard_normal((n, sizes[0]))
    if loss == "square":
        Y = rng.standard_normal((n, outputs))
    elif outputs == 1:
        Y = rng.integers(0, 2, (n, 1)).astype(float)
    else:
        Y = np.eye(outputs)[rng.integers(0, outputs, n)]
    net = K.Net(sizes, K.ACTIVATIONS[act], K.LOSSES[loss], X, Y)
    params = rng.standard_normal((members, net.n_params)) * 0.7
    return net, params


@pytest.mark.parametrize("act, loss, outputs", CASES)
def test_gradient_equals_finite_differences_and_numpy_twin(act, loss, outputs, rng):
    net, params = make(act, loss, outputs, rng)
    losses, grads, _ = net.loss_grad(params)
    h = 1e-6
    for m in range(len(params)):
        value, g = R.loss_grad(params[m], net.sizes, net.act, net.loss, net.X, net.Y)
        assert losses[m] == pytest.approx(value, rel=1e-13)  # the same loss, so differences of either are checks
        shifted = params[m] + h * np.vstack([np.eye(net.n_params), -np.eye(net.n_params)])
        values = net.loss_grad(shifted)[0]
        fd = (values[:net.n_params] - values[net.n_params:]) / (2 * h)
        np.testing.assert_allclose(grads[m], fd, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(grads[m], g, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.outputs(params, net.X)[0], R.outputs(params[0], net.sizes, net.act, net.X),
                               rtol=1e-13, atol=1e-14)


def test_per_example_gradient_second_moment(rng):
    net, params = make("tanh", "cross-entropy", 2, rng)
    _, _, sq = net.loss_grad(params, want_sq=True)
    per_example = [R.loss_grad(params[0], net.sizes, net.act, net.loss, net.X[i:i + 1], net.Y[i:i + 1])[1]
                   for i in range(len(net.X))]
    assert sq[0] == pytest.approx(np.mean([g @ g for g in per_example]), rel=1e-12)


@pytest.mark.parametrize("act, loss, outputs", [c for c in CASES if c[0] != "relu"] + [("relu", "square", 2)])
def test_hvp_equals_exact_r_operator(act, loss, outputs, rng):
    net, params = make(act, loss, outputs, rng)
    v = rng.standard_normal(params.shape)
    hv = net.hvp(params, v)
    for m in range(len(params)):
        exact = R.hvp_exact(params[m], v[m], net.sizes, net.act, net.loss, net.X, net.Y)
        np.testing.assert_allclose(hv[m], exact, rtol=1e-5, atol=1e-6 * np.abs(exact).max())


def test_r_operator_equals_finite_differences_of_twin_gradient(rng):
    """The twin's exact Hv against a Richardson-extrapolated difference of its own gradient (O(h^4))."""
    net, params = make("tanh", "cross-entropy", 2, rng)
    w, v = params[0], rng.standard_normal(net.n_params)
    g = lambda x: R.loss_grad(x, net.sizes, net.act, net.loss, net.X, net.Y)[1]  # noqa: E731
    d = lambda h: (g(w + h * v) - g(w - h * v)) / (2 * h)  # noqa: E731
    richardson = (4 * d(1e-3) - d(2e-3)) / 3
    np.testing.assert_allclose(R.hvp_exact(w, v, net.sizes, net.act, net.loss, net.X, net.Y), richardson,
                               rtol=1e-7, atol=1e-9)


def test_sharpness_of_linear_network_is_top_eigenvalue_of_input_moment(rng):
    """One linear layer with square loss: L = 1/(2N) |W x + b - y|^2 is a quadratic with Hessian
    I_K (x) (1/N) sum [x;1][x;1]^T, whose top eigenvalue the power iteration must return."""
    n, d, k = 40, 4, 2
    X = rng.standard_normal((n, d)) * np.array([3.0, 1.0, 0.5, 0.2]) + 0.3
    net = K.Net((d, k), 0, 0, X, rng.standard_normal((n, k)))
    params = rng.standard_normal((3, net.n_params))
    Xa = np.hstack([X, np.ones((n, 1))])
    top = np.linalg.eigvalsh(Xa.T @ Xa / n)[-1]
    np.testing.assert_allclose(net.sharpness(params, seed=5, iters=500, tol=1e-12), top, rtol=1e-8)


def test_sgd_equals_numpy_twin_with_momentum_and_weight_decay(rng):
    net, params = make("relu", "cross-entropy", 2, rng, n=11, members=3)
    lrs = np.linspace(0.2, 0.05, 6)
    velocity, perm = np.zeros_like(params), np.tile(np.arange(11), (3, 1))
    states = seed_states(9, 3)
    diverged = np.full(3, -1)
    start = params.copy()
    K.train(net, params, velocity, states, perm, lrs, 4, 0.9, 1e-2, 0, diverged)
    assert np.all(diverged == -1)
    for m in range(3):
        twin = R.train(start[m], net.sizes, net.act, net.loss, net.X, net.Y, lrs, 4, 0.9, 1e-2, seed=9, member=m)
        np.testing.assert_allclose(params[m], twin, rtol=1e-11, atol=1e-13)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_bit_identical_for_any_thread_count_and_chunking(rng):
    net, params = make("tanh", "square", 1, rng, n=20, members=4)
    results = []
    for threads, chunks in ((1, [30]), (2, [7, 23])):
        numba.set_num_threads(threads)
        try:
            p, v = params.copy(), np.zeros_like(params)
            states, perm, diverged = seed_states(3, 4), np.tile(np.arange(20), (4, 1)), np.full(4, -1)
            first = 0
            for c in chunks:
                K.train(net, p, v, states, perm, np.full(c, 0.05), 5, 0.5, 0.0, first, diverged)
                first += c
            results.append(p)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert np.array_equal(results[0], results[1])
    assert not np.array_equal(results[0], params)


def test_divergence_is_flagged_at_its_step(rng):
    net, params = make("linear", "square", 1, rng, n=10, members=2)
    diverged = np.full(2, -1)
    K.train(net, params, np.zeros_like(params), seed_states(1, 2), np.tile(np.arange(10), (2, 1)),
            np.full(2000, 50.0), 10, 0.0, 0.0, 100, diverged)
    assert np.all(diverged > 100) and np.all(diverged < 2100)


def test_sharpness_of_tanh_network_is_extreme_eigenvalue_of_exact_hessian(rng):
    """Power iteration on the kernel's finite-difference H v against the spectrum of the full Hessian assembled
    column by column from the twin's exact R-operator: the eigenvalue of largest magnitude."""
    net, params = make("tanh", "cross-entropy", 2, rng, n=9, members=2)
    for m in range(2):
        H = np.array([R.hvp_exact(params[m], e, net.sizes, net.act, net.loss, net.X, net.Y)
                      for e in np.eye(net.n_params)])
        np.testing.assert_allclose(H, H.T, atol=1e-12)
        ev = np.linalg.eigvalsh(H)
        top = ev[np.argmax(np.abs(ev))]
        assert net.sharpness(params[m:m + 1], seed=1, iters=3000, tol=1e-13)[0] == pytest.approx(top, rel=1e-6)
