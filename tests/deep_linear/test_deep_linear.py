"""Deep linear networks: gradients against finite differences, the factor flow against the end-to-end ODE
(Arora, Cohen & Hazan 2018 Theorem 1: equal under balanced initialization, measurably not without it),
balancedness conserved by the flow (and decaying as exp(-2 lambda t) with weight decay), discrete GD
converging to the flow at first order in lr, the single-output form against the general one, the depth-1
optimizers' first steps, the l_p minimizer, and the error paths."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from sgdsim.deep_linear import training as dl
from sgdsim.deep_linear import theory as lt
from sgdsim.errors import ParameterError
from sgdsim.solvers.deep_linear import flows as lf


def _data(rng, n=30, d_in=4, d_out=3):
    X = rng.standard_normal((n, d_in))
    Y = X @ rng.standard_normal((d_in, d_out)) + 0.3 * rng.standard_normal((n, d_out))
    return X, Y


@pytest.mark.parametrize("p, wd", [(2.0, 0.0), (4.0, 0.0), (3.0, 0.1)])
def test_factor_gradients_match_finite_differences(rng, p, wd):
    X, Y = _data(rng)
    Ws = dl.gaussian_init([4, 5, 2, 3], 0.6, rng)
    _, grads = lf.factor_gradients(Ws, X, Y, p, wd)
    eps = 1e-6
    for j, W in enumerate(Ws):
        for idx in [(0, 0), (1, 1), (W.shape[0] - 1, W.shape[1] - 1)]:
            plus = [w.copy() for w in Ws]
            minus = [w.copy() for w in Ws]
            plus[j][idx] += eps
            minus[j][idx] -= eps
            fd = (lf.factor_gradients(plus, X, Y, p, wd)[0] - lf.factor_gradients(minus, X, Y, p, wd)[0]) / (2 * eps)
            assert grads[j][idx] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_balanced_init_has_the_target_product_and_is_balanced(rng):
    target = rng.standard_normal((3, 5))
    for depth, widths in ((1, None), (2, [4]), (3, [6, 3]), (4, [3, 8, 5])):
        Ws = dl.balanced_init(target, depth, widths)
        np.testing.assert_allclose(dl.end_to_end(Ws), target, atol=1e-13)
        assert dl.balancedness_norm(Ws) < 1e-13
    with pytest.raises(ParameterError, match="hidden width 2 is below the rank 3"):
        dl.balanced_init(target, 3, [4, 2])
    with pytest.raises(ParameterError, match="depth 3 needs 2 hidden widths, got 1"):
        dl.balanced_init(target, 3, [4])


@pytest.mark.parametrize("depth, widths, p, wd, d_out", [(2, [5], 2.0, 0.0, 3), (3, [4, 6], 2.0, 0.0, 3),
                                                         (3, [5, 5], 4.0, 0.0, 3), (4, [3, 7, 4], 2.0, 0.05, 3),
                                                         (3, [2, 6], 4.0, 0.02, 1)])
def test_factor_flow_equals_end_to_end_ode_under_balanced_init(rng, depth, widths, p, wd, d_out):
    X, Y = _data(rng, d_out=d_out)      # d_out = 1 runs the single-output form (Claim 2) inside the ODE
    We0 = 0.3 * rng.standard_normal((d_out, 4))
    Ws0 = dl.balanced_init(We0, depth, widths)
    times = np.linspace(0.0, 2.0, 5)
    fac = dl.factor_flow(Ws0, X, Y, times, p=p, weight_decay=wd)
    e2e = dl.end_to_end_flow(We0, depth, X, Y, times, p=p, weight_decay=wd)
    assert fac.status == e2e.status == "complete"
    assert np.abs(fac.We[-1] - fac.We[0]).max() > 0.1             # the run moves
    rel = np.abs(fac.We - e2e.We).max() / np.abs(e2e.We).max()
    assert rel < 1e-8, rel


def test_end_to_end_ode_fails_without_balancedness(rng):
    X, Y = _data(rng)
    Ws0 = dl.gaussian_init([4, 5, 3], 0.5, rng)
    assert dl.balancedness_norm(Ws0) > 0.5
    times = np.linspace(0.0, 2.0, 5)
    fac = dl.factor_flow(Ws0, X, Y, times)
    e2e = dl.end_to_end_flow(dl.end_to_end(Ws0), 2, X, Y, times)
    rel = np.abs(fac.We - e2e.We).max() / np.abs(e2e.We).max()
    assert rel > 1e-2, rel


def test_balancedness_is_conserved_by_the_flow_and_decays_with_weight_decay(rng):
    X, Y = _data(rng)
    Ws0 = dl.gaussian_init([4, 6, 5, 3], 0.5, rng)
    D0 = dl.balancedness(Ws0)
    times = [0.0, 1.0, 3.0]
    free = dl.factor_flow(Ws0, X, Y, times)
    assert np.abs(free.We[-1] - free.We[0]).max() > 0.1
    for D, E in zip(D0, dl.balancedness(free.factors)):
        assert np.abs(D - E).max() < 1e-10
    lam = 0.2
    decayed = dl.factor_flow(Ws0, X, Y, times, weight_decay=lam)
    for D, E in zip(D0, dl.balancedness(decayed.factors)):   # dD/dt = -2 lambda D
        np.testing.assert_allclose(E, D * np.exp(-2 * lam * 3.0), atol=1e-10)


def test_discrete_gd_approaches_the_flow_at_first_order(rng):
    X, Y = _data(rng)
    Ws0 = dl.gaussian_init([4, 5, 3], 0.5, rng)
    T = 1.0
    flow = dl.factor_flow(Ws0, X, Y, [0.0, T])
    lrs = np.array([0.04, 0.02, 0.01, 0.005])
    errs = [np.abs(dl.train_factors(Ws0, X, Y, lr, [0, round(T / lr)]).We[-1] - flow.We[-1]).max() for lr in lrs]
    slope = np.polyfit(np.log(lrs), np.log(errs), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.1), (slope, errs)


def test_discrete_gd_breaks_balancedness_at_first_order_in_lr(rng):
    # one GD step changes D_j by O(lr^2) (the O(lr) terms cancel, as in the flow): over a fixed time, O(lr)
    X, Y = _data(rng)
    Ws0 = dl.balanced_init(0.5 * rng.standard_normal((3, 4)), 3, [4, 4])
    lrs = np.array([0.04, 0.02, 0.01])
    drift = [dl.train_factors(Ws0, X, Y, lr, [0, round(1.0 / lr)]).unbalance[-1] for lr in lrs]
    assert np.polyfit(np.log(lrs), np.log(drift), 1)[0] == pytest.approx(1.0, abs=0.1), drift


def test_single_output_form_equals_the_general_end_to_end_velocity(rng):
    X, _ = _data(rng)
    y = rng.standard_normal((30, 1))
    w = rng.standard_normal((1, 4))
    _, G = lf.lp_loss_grad(w, X, y, 4.0)
    for depth in (1, 2, 3, 5):
        general = lf.end_to_end_velocity(w, G, depth)
        single = lf.single_output_velocity(w[0], G[0], depth)
        np.testing.assert_allclose(general[0], single, rtol=1e-12, atol=1e-14)


def test_end_to_end_velocity_at_rank_deficient_points(rng):
    # W_e = 0: only the j = 1 (depth 1) term survives; rank one: compare with the sum of explicit powers
    G = rng.standard_normal((3, 4))
    np.testing.assert_allclose(lf.end_to_end_velocity(np.zeros((3, 4)), G, 1), G)
    assert np.abs(lf.end_to_end_velocity(np.zeros((3, 4)), G, 3)).max() == 0
    We = np.outer(rng.standard_normal(3), rng.standard_normal(4))
    U, s, Vt = np.linalg.svd(We)
    def power(M, a):
        h, V = np.linalg.eigh(M)
        return (V * np.where(h > 1e-12, np.abs(h), 0.0) ** a) @ V.T if a > 0 else np.eye(len(M))
    N = 3
    explicit = sum(power(We @ We.T, (j - 1) / N) @ G @ power(We.T @ We, (N - j) / N) for j in range(1, N + 1))
    np.testing.assert_allclose(lf.end_to_end_velocity(We, G, N), explicit, atol=1e-12)


def test_minibatch_sgd_is_reproducible_and_full_batch_equals_gd(rng):
    X, Y = _data(rng)
    Ws0 = dl.gaussian_init([4, 5, 3], 0.5, rng)
    gd = dl.train_factors(Ws0, X, Y, 0.05, [0, 20])
    full = dl.train_factors(Ws0, X, Y, 0.05, [0, 20], batch=30, seed=1)
    np.testing.assert_array_equal(gd.We, full.We)
    a = dl.train_factors(Ws0, X, Y, 0.05, [0, 20], batch=5, seed=7)
    b = dl.train_factors(Ws0, X, Y, 0.05, [0, 20], batch=5, seed=7)
    c = dl.train_factors(Ws0, X, Y, 0.05, [0, 20], batch=5, seed=8)
    np.testing.assert_array_equal(a.We, b.We)
    assert np.abs(a.We - c.We).max() > 0
    np.testing.assert_array_equal(gd.time, [0.0, 1.0])          # t = step * lr


def test_one_minibatch_step_is_unbiased(rng):
    # E[one SGD step of each factor] = the GD step (batches without replacement): mean over seeds within 5 SE
    X, Y = _data(rng, n=12)
    Ws0 = dl.gaussian_init([4, 3, 3], 0.5, rng)
    flat = lambda Ws: np.concatenate([W.ravel() for W in Ws])  # noqa: E731
    gd = flat(dl.train_factors(Ws0, X, Y, 0.1, [0, 1], p=2.0).factors)
    draws = np.array([flat(dl.train_factors(Ws0, X, Y, 0.1, [0, 1], p=2.0, batch=3, seed=s).factors)
                      for s in range(400)])
    moved = draws.std(axis=0) > 0
    assert moved.sum() == len(gd)                              # every weight feels the batch
    z = np.abs(draws.mean(axis=0) - gd) / (draws.std(axis=0, ddof=1) / np.sqrt(len(draws)))
    assert np.all(z < 5), z


def test_divergence_names_the_step(rng):
    X, Y = _data(rng)
    Ws0 = dl.gaussian_init([4, 5, 3], 0.5, rng)
    out = dl.train_factors(Ws0, X, Y, 50.0, [0, 10, 1000])
    assert out.status == "diverged" and out.message.startswith("non-finite weights at step ")
    assert len(out.loss) < 3
    adam = dl.train_depth1(np.zeros((3, 4)), X, Y, "gd", 50.0, [0, 1000])
    assert adam.status == "diverged" and "gd: non-finite weights at step" in adam.message


def test_depth1_optimizers_first_step_and_gd_equals_depth1_factors(rng):
    X, Y = _data(rng)
    W0 = 0.1 * rng.standard_normal((3, 4))
    g = lf.lp_loss_grad(W0, X, Y, 2.0)[1]
    for opt in ("adagrad", "adam"):   # both move every weight by lr g / |g| on the first step
        one = dl.train_depth1(W0, X, Y, opt, 0.01, [0, 1], eps=0.0)
        np.testing.assert_allclose(one.We[-1], W0 - 0.01 * np.sign(g), atol=1e-15)
    gd = dl.train_depth1(W0, X, Y, "gd", 0.02, [0, 5, 50])
    fac = dl.train_factors([W0], X, Y, 0.02, [0, 5, 50])
    np.testing.assert_allclose(gd.loss, fac.loss, rtol=1e-13)
    with pytest.raises(ParameterError, match="unknown optimizer 'sgd' \\(valid: gd, adagrad, adam\\)"):
        dl.train_depth1(W0, X, Y, "sgd", 0.1, [0, 1])


@pytest.mark.parametrize("p", [2.0, 4.0])
def test_lp_minimum_against_scipy(rng, p):
    X, Y = _data(rng, d_out=1)
    W, L = dl.lp_minimum(X, Y, p)
    ref = minimize(lambda w: dl.loss(w[None], X, Y, p), np.zeros(4), method="BFGS", options={"gtol": 1e-12},
                   jac=lambda w: lf.lp_loss_grad(w[None], X, Y, p)[1][0])
    assert L <= ref.fun + 1e-12
    np.testing.assert_allclose(W[0], ref.x, atol=1e-5)


def test_predict_loss_curve_for_whitened_data_is_saxe(rng):
    n, d = 20, 3
    q, _ = np.linalg.qr(rng.standard_normal((n, d)))
    X = np.sqrt(n) * q
    Y = X @ rng.standard_normal((d, 2))
    U, s, Vt = lt.whitened_modes(X, Y)
    times = np.linspace(0, 4, 5)
    for depth in (2, 3):
        curve = dl.predict_loss_curve(X, Y, times, depth, 1e-2 * U @ Vt)
        np.testing.assert_allclose(curve, lt.saxe_loss_curve(X, Y, times, 1e-2, depth), rtol=1e-8)


def test_bad_inputs():
    X, Y = np.ones((5, 2)), np.ones((4, 1))
    with pytest.raises(ParameterError, match="same n"):
        dl.end_to_end_flow(np.zeros((1, 2)), 2, X, Y, [0, 1])
    with pytest.raises(ParameterError, match="We0 must have shape \\(1, 2\\)"):
        dl.end_to_end_flow(np.zeros((2, 2)), 2, X, np.ones((5, 1)), [0, 1])
    with pytest.raises(ParameterError, match="times must be a non-empty increasing"):
        dl.end_to_end_flow(np.zeros((1, 2)), 2, X, np.ones((5, 1)), [1, 0])
    with pytest.raises(ParameterError, match="batch 9 must be between 1 and the number of examples 5"):
        dl.train_factors([np.zeros((1, 2))], X, np.ones((5, 1)), 0.1, [0, 1], batch=9)


def test_train_factors_streams_every_record_and_an_interrupt_records_the_step_reached(tmp_path):
    """With a writer, train_factors streams loss, balancedness and mode strengths as they are recorded (the same
    values as the returned trajectory); an interrupt already noted stops it after one chunk, that step recorded
    and streamed, status interrupted."""
    import signal

    import sgdsim
    from sgdsim.io.runfile import RunWriter
    from sgdsim.runloop import Interrupt

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    U, s, Vt = np.linalg.svd(Y.T @ X / len(X), full_matrices=False)
    Ws0 = dl.balanced_init(1e-2 * U @ Vt, 2, [3])
    steps = np.arange(0, 2001, 100)
    with RunWriter(tmp_path / "run.h5", scenario="test", params={}, seed=0) as writer:
        traj = dl.train_factors(Ws0, X, Y, 0.05, steps, writer=writer, name="a", modes=(U, Vt), attrs={"depth": 2})
        with Interrupt() as stop:
            stop.signal = signal.SIGTERM
            cut = dl.train_factors(Ws0, X, Y, 0.05, [0, 10 ** 7], writer=writer, name="b")
    with sgdsim.open(tmp_path / "run.h5") as run:
        np.testing.assert_array_equal(run.element("loss_a").step, steps)
        np.testing.assert_array_equal(run.element("loss_a").value, traj.loss)
        np.testing.assert_array_equal(run.element("balancedness_a").value, traj.unbalance)
        np.testing.assert_array_equal(run.element("modes_a").value, np.einsum("ik,tij,kj->tk", U, traj.We, Vt))
        assert run.element("modes_a").attrs["depth"] == 2
        assert cut.status == "interrupted" and "SIGTERM" in cut.message and 0 < cut.steps[-1] < 10 ** 7
        np.testing.assert_array_equal(run.element("loss_b").step, cut.steps)
        assert f"at step {cut.steps[-1]} " in cut.message
