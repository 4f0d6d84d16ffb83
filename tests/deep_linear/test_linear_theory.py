"""Closed-form linear-network theory against what it did not compute: Saxe et al.'s sigmoids against the
integrated factor flow (1e-6), the deep quadrature against the depth-2 closed form and its own inverse; the
Marchenko–Pastur quadrature against the law's known moments; Advani & Saxe's curves against the exact t = 0
values, the t -> inf asymptotes, and simulated students at N = P = 400 within 5 standard errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sgdsim.deep_linear import training as dl
from sgdsim.deep_linear import theory as lt
from sgdsim.errors import ParameterError


def _whitened(rng, n=24, d_in=4, d_out=3):
    q, _ = np.linalg.qr(rng.standard_normal((n, d_in)))
    X = np.sqrt(n) * q
    Y = X @ rng.standard_normal((d_in, d_out))
    return X, Y


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_saxe_modes_match_the_integrated_factor_flow(rng, depth):
    X, Y = _whitened(rng)
    U, s, Vt = lt.whitened_modes(X, Y)
    u0 = 1e-3
    Ws0 = dl.balanced_init(u0 * U @ Vt, depth, [5] * (depth - 1))
    t = np.linspace(0.0, max(6.0, 3.0 * max(lt.saxe_half_time(sk, u0, depth) for sk in s)), 9)
    flow = dl.factor_flow(Ws0, X, Y, t, rtol=1e-12, atol=1e-14)
    u = np.einsum("ik,tij,kj->tk", U, flow.We, Vt)
    theory = np.stack([lt.saxe_mode(t, sk, u0, depth) for sk in s], axis=1)
    assert np.abs(u[-1] - s).max() < 0.05 * s.min()       # every mode learned by the end
    assert np.abs(u - theory).max() < 1e-6 * s.max()
    np.testing.assert_allclose(flow.loss, lt.saxe_loss_curve(X, Y, t, u0, depth), rtol=1e-6, atol=1e-12)


def test_deep_quadrature_reproduces_the_depth_2_closed_form_and_inverts():
    s, u0 = 1.7, 2e-3
    u = np.array([0.01, 0.3, 0.85, 1.6, 1.69])
    w = lt._logit(u, s)
    quad = [lt._time_between(float(lt._logit(u0, s)), float(x), s, 2) for x in w]
    np.testing.assert_allclose(quad, lt.saxe_time(u, s, u0, 2), rtol=1e-11)
    assert lt.saxe_half_time(s, u0, 2) == pytest.approx(math.log(s / u0 - 1) / (2 * s), rel=1e-14)
    for depth in (3, 6):
        times = lt.saxe_time(u, s, u0, depth)
        np.testing.assert_allclose(lt.saxe_mode(times, s, u0, depth), u, rtol=1e-9)
    # deeper: longer plateau from the same small start (Saxe et al. 2014 sec. 3)
    assert lt.saxe_half_time(s, u0, 2) < lt.saxe_half_time(s, u0, 3) < lt.saxe_half_time(s, u0, 4)
    with pytest.raises(ParameterError, match="0 < u0 < s"):
        lt.saxe_mode([1.0], 1.0, 2.0)
    with pytest.raises(ParameterError, match="whitened inputs"):
        lt.whitened_modes(2 * np.eye(3), np.eye(3))


@pytest.mark.parametrize("alpha", [0.4, 1.0, 2.5])
def test_marchenko_pastur_quadrature_has_the_known_moments(alpha):
    lam, w = lt.marchenko_pastur(alpha)
    c = 1 / alpha
    assert w.sum() == pytest.approx(min(1.0, alpha), rel=1e-10)   # mass off zero
    assert w @ lam == pytest.approx(1.0, rel=1e-10)                 # tr(X^T X / N) / P = 1
    assert w @ lam ** 2 == pytest.approx(1.0 + c, rel=1e-10)         # second moment 1 + P/N
    if alpha > 1:
        assert w @ (1 / lam) == pytest.approx(1 / (1 - c), rel=1e-8)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_advani_saxe_at_time_zero_and_infinity(alpha):
    noise, teacher, init = 0.4, 1.2, 0.3
    train, gen = lt.advani_saxe_errors([0.0, 1e7], alpha, noise, teacher, init)
    assert train[0] == pytest.approx(0.5 * (teacher + init + noise ** 2), rel=1e-10)
    assert gen[0] == pytest.approx(0.5 * (teacher + init + noise ** 2), rel=1e-10)
    if alpha != 1.0:
        assert gen[1] == pytest.approx(lt.advani_saxe_asymptote(alpha, noise, teacher, init), rel=1e-6)
        assert train[1] == pytest.approx(0.5 * noise ** 2 * max(0.0, 1 - 1 / alpha), rel=1e-6, abs=1e-12)
    else:  # divergence at alpha = 1: the late test error keeps growing (like sqrt(t))
        late = lt.advani_saxe_errors([1e2, 1e4], 1.0, noise, teacher, init, points=20001)[1]
        assert late[1] > 5 * late[0]
        assert math.isinf(lt.advani_saxe_asymptote(1.0, noise))


def test_optimal_stopping_time_is_a_minimum():
    t_opt, e_opt = lt.optimal_stopping_time(1.0, 0.5)
    near = lt.advani_saxe_errors([t_opt * 0.9, t_opt * 1.1], 1.0, 0.5)[1]
    assert 0 < t_opt < 100 and np.all(near > e_opt)
    grid = lt.advani_saxe_errors(np.geomspace(1e-2, 1e3, 300), 1.0, 0.5)[1]
    assert e_opt <= grid.min() + 1e-12
    t_free, _ = lt.optimal_stopping_time(2.0, 0.0, t_max=1e3)   # no noise: train forever
    assert t_free == pytest.approx(1e3)


@pytest.mark.parametrize("alpha", [1.0])
def test_advani_saxe_against_simulated_students_at_400(alpha):
    # N = P = 400, 32 independent students trained by full-batch GD; the theory for the same lr (decay
    # (1 - lr l)^step) must hold within 5 SE of the mean at every recorded time
    P, R, lr, noise, teacher = 400, 32, 0.2, 0.5, 1.0
    N = int(alpha * P)
    rng = np.random.default_rng(400)
    steps = np.array([0, 2, 5, 10, 25, 50, 100])
    train, test = np.empty((len(steps), R)), np.empty((len(steps), R))
    for r in range(R):
        X = rng.standard_normal((N, P))
        w_bar = rng.standard_normal(P) * np.sqrt(teacher / P)
        y = X @ w_bar + noise * rng.standard_normal(N)
        w, step = np.zeros(P), 0
        for k, target in enumerate(steps):
            while step < target:
                w -= lr * X.T @ (X @ w - y) / N
                step += 1
            train[k, r] = 0.5 * np.mean((X @ w - y) ** 2)
            test[k, r] = 0.5 * (np.sum((w - w_bar) ** 2) + noise ** 2)
    th_train, th_gen = lt.advani_saxe_errors(steps * lr, alpha, noise, teacher, lr=lr)
    for data, theory in ((train, th_train), (test, th_gen)):
        mean, se = data.mean(axis=1), data.std(axis=1, ddof=1) / np.sqrt(R)
        z = np.abs(mean - theory)[1:] / se[1:]
        assert np.all(z < 5), z
    # the test has power: a 20% larger noise level is rejected by more than 5 SE (late train error)
    wrong = lt.advani_saxe_errors(steps * lr, alpha, 1.2 * noise, teacher, lr=lr)[0]
    mean, se = train.mean(axis=1), train.std(axis=1, ddof=1) / np.sqrt(R)
    assert abs(mean[-1] - wrong[-1]) > 5 * se[-1], (mean[-1], wrong[-1], se[-1])
