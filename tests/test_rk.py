"""The Runge–Kutta integrator: tableau identities (row sums, order conditions up to each method's order and
failing at the next, dense output consistent with b), convergence orders fitted on problems with exact
solutions (steps and dense output), adaptive runs against the exact solution and against scipy's solve_ivp,
and the failure paths."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from sgdsim.solvers import rk

TABLEAUS = list(rk.TABLEAUS.values())


def order_conditions(A: np.ndarray, b: np.ndarray) -> dict[int, list[float]]:
    """Residuals of the order conditions of each order 1..5 (Hairer, Nørsett & Wanner I, Table II.2.2):
    sum over the rooted trees t of b . Phi(t) - 1 / gamma(t)."""
    one = np.ones(len(b))
    c = A @ one
    Ac, Ac2 = A @ c, A @ c ** 2
    trees = {
        1: [(one, 1)],
        2: [(c, 2)],
        3: [(c ** 2, 3), (Ac, 6)],
        4: [(c ** 3, 4), (c * Ac, 8), (Ac2, 12), (A @ Ac, 24)],
        5: [(c ** 4, 5), (c ** 2 * Ac, 10), (c * Ac2, 15), (c * (A @ Ac), 30), (Ac * Ac, 20),
            (A @ c ** 3, 20), (A @ (c * Ac), 40), (A @ Ac2, 60), (A @ (A @ Ac), 120)],
    }
    return {q: [float(b @ phi - 1.0 / gamma) for phi, gamma in ts] for q, ts in trees.items()}


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_row_sums_and_explicitness(tab):
    np.testing.assert_allclose(tab.A.sum(axis=1), tab.c, atol=1e-15)
    assert np.all(np.triu(tab.A) == 0)
    assert tab.b.sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_order_conditions_hold_to_the_order_and_fail_beyond(tab):
    res = order_conditions(tab.A, tab.b)
    for q in range(1, tab.order + 1):
        assert np.max(np.abs(res[q])) < 1e-14, (q, res[q])
    if tab.order < 5:
        assert np.max(np.abs(res[tab.order + 1])) > 1e-4     # the order is not higher than claimed
    if tab.adaptive:
        emb = order_conditions(tab.A, tab.b_hat)
        for q in range(1, tab.error_order + 1):
            assert np.max(np.abs(emb[q])) < 1e-14, (q, emb[q])
        assert np.max(np.abs(emb[tab.error_order + 1])) > 1e-4


@pytest.mark.parametrize("tab", [t for t in TABLEAUS if t.P is not None], ids=lambda t: t.name)
def test_dense_output_ends_at_the_step(tab):
    # y(t + h) from the dense output is the step itself: sum of P's columns = b; FSAL: last row of A = b
    np.testing.assert_allclose(tab.P.sum(axis=1), tab.b, atol=1e-14)
    np.testing.assert_allclose(tab.A[-1], tab.b, atol=0)


def _problem():
    """y' = -2 t y (two components with different starts): y = y0 exp(-t^2)."""
    y0 = np.array([1.0, -0.5])
    return (lambda t, y: -2.0 * t * y), y0, (lambda t: np.outer(np.exp(-np.asarray(t) ** 2), y0))


def _slope(hs, errs):
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


@pytest.mark.parametrize("tab", TABLEAUS, ids=lambda t: t.name)
def test_fixed_step_convergence_order(tab):
    f, y0, exact = _problem()
    hs = np.array([0.1, 0.05, 0.025, 0.0125])
    errs = [np.abs(rk.integrate(f, y0, [0.0, 1.5], method=tab.name, step=h).y[-1] - exact(1.5)[0]).max()
            for h in hs]
    assert _slope(hs, errs) == pytest.approx(tab.order, abs=0.25)


@pytest.mark.parametrize("name, dense_order", [("dopri5", 5), ("bs32", 3), ("rk4", 4)])
def test_dense_output_convergence_order(name, dense_order):
    # times between the steps: the interpolant's error joins the global error; DOPRI5's degree-4 dense
    # output has local error O(h^5), Hermite cubic O(h^4): the global slopes are 5, 3 (bs32) and 4 (rk4)
    f, y0, exact = _problem()
    t_eval = np.linspace(0.0, 1.5, 7) + 0.0371
    t_eval[0] = 0.0
    hs = np.array([0.1, 0.05, 0.025, 0.0125])
    errs = [np.abs(rk.integrate(f, y0, t_eval, method=name, step=h).y - exact(t_eval)).max() for h in hs]
    assert _slope(hs, errs) == pytest.approx(dense_order, abs=0.35)


@pytest.mark.parametrize("name", ["dopri5", "bs32"])
def test_adaptive_meets_tolerance_and_matches_solve_ivp(name):
    rng = np.random.default_rng(3)
    M = rng.standard_normal((4, 4)) - 2 * np.eye(4)
    y0 = rng.standard_normal(4)
    t = np.linspace(0, 3, 13)
    ours = rk.integrate(lambda _, y: M @ y, y0, t, method=name, rtol=1e-10, atol=1e-12)
    exact = np.array([expm(M * s) @ y0 for s in t])
    assert ours.status == "complete"
    assert np.abs(ours.y - exact).max() < 1e-7 * np.abs(exact).max()
    scipy_method = {"dopri5": "RK45", "bs32": "RK23"}[name]
    ref = solve_ivp(lambda _, y: M @ y, (0, 3), y0, method=scipy_method, t_eval=t, rtol=1e-10, atol=1e-12)
    assert np.abs(ours.y - ref.y.T).max() < 1e-7 * np.abs(exact).max()
    looser = rk.integrate(lambda _, y: M @ y, y0, t, method=name, rtol=1e-6, atol=1e-8)
    assert looser.n_steps < ours.n_steps and np.abs(looser.y - exact).max() > np.abs(ours.y - exact).max()


def test_repeated_and_single_times():
    f, y0, exact = _problem()
    sol = rk.integrate(f, y0, [0.0, 0.5, 0.5, 1.0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sol.y, exact([0.0, 0.5, 0.5, 1.0]), atol=1e-9)
    assert rk.integrate(f, y0, [0.2]).y.shape == (1, 2)


def test_blow_up_stops_with_a_message_naming_the_time():
    sol = rk.integrate(lambda _, y: y * y, np.array([1.0]), [0.0, 0.5, 2.0], rtol=1e-8, atol=1e-10)
    assert sol.status in ("failed", "diverged") and sol.message.startswith(("step size underflow at t=",
                                                                             "non-finite state at t="))
    assert float(sol.message.rsplit("t=", 1)[1]) == pytest.approx(1.0, abs=1e-3)   # y = 1 / (1 - t)
    assert len(sol.y) == 2 and sol.y[1, 0] == pytest.approx(2.0, rel=1e-7)   # y(0.5) = 1 / (1 - 0.5)


def test_bad_arguments():
    f, y0, _ = _problem()
    with pytest.raises(ValueError, match="unknown Runge-Kutta method 'euler' \\(valid: rk4, bs32, dopri5\\)"):
        rk.integrate(f, y0, [0, 1], method="euler")
    with pytest.raises(ValueError, match="rk4 has no error estimate"):
        rk.integrate(f, y0, [0, 1], method="rk4")
    with pytest.raises(ValueError, match="increasing"):
        rk.integrate(f, y0, [1, 0])


def test_overflowing_right_hand_side_is_reported_as_divergence():
    # y' = y^3 from 1 blows up at t = 1/2; the state overflows to inf inside the stages (no exception)
    sol = rk.integrate(lambda _, y: y ** 3, np.array([1.0]), [0.0, 0.25, 1.0], rtol=1e-6, atol=1e-9)
    assert sol.status in ("diverged", "failed") and len(sol.y) == 2
    assert float(sol.message.rsplit("t=", 1)[1]) == pytest.approx(0.5, abs=1e-3)
    same = rk.integrate(lambda _, y: -y, np.array([1.0]), [0.0, 0.0])
    np.testing.assert_array_equal(same.y, [[1.0], [1.0]])
