"""The compiled Runge–Kutta loop (`solvers.rk_kernel`): against its NumPy twin (`rk.integrate` with the NumPy
right-hand sides of `deep_linear.flows`: same steps, same results to rounding) for every right-hand side code and
every tableau; convergence orders fitted through the compiled path against Saxe et al.'s exact sigmoid;
divergence against the exact overflow time of an exponential; chunked runs (callback) equal to one call;
the engine switch of `deep_linear`."""
from __future__ import annotations

import numpy as np
import pytest

from sgdsim.deep_linear import training as dl
from sgdsim.deep_linear import theory as lt
from sgdsim.errors import ParameterError
from sgdsim.solvers.deep_linear import flows as lf
from sgdsim.solvers import rk, rk_kernel

TIMES = np.array([0.0, 0.3, 0.3, 1.137, 2.0])      # repeated and off-grid times: dense output


def _problem(rng, rhs, p, wd, d_out=3, depth=3):
    """(NumPy RHS, y0, kernel data (X, Y, fpar, ipar)) for a small random problem of the code `rhs`."""
    X = rng.standard_normal((20, 4))
    Y = X @ rng.standard_normal((4, d_out)) + 0.3 * rng.standard_normal((20, d_out))
    We0 = 0.3 * rng.standard_normal((d_out, 4))
    if rhs == "factors":
        Ws0 = dl.balanced_init(We0, depth, [5] * (depth - 1))
        Ws0[0] += 0.1 * rng.standard_normal(Ws0[0].shape)         # unbalanced: not the end-to-end ODE
        flow = lf.FactorFlow([W.shape for W in Ws0], X, Y, p, wd)
        return flow.rhs, flow.pack(Ws0), (X, Y, [p, wd], [depth] + [d for W in Ws0 for d in W.shape])
    flow = lf.EndToEndFlow(depth, X, Y, p, wd)
    return flow.rhs, We0.ravel(), (X, Y, [p, wd], [depth, d_out, 4])


CODES = [("single-output", 3.0, 0.05, 1), ("end-to-end", 4.0, 0.0, 3), ("factors", 2.0, 0.1, 3),
         ("factors", 4.0, 0.0, 2)]


@pytest.mark.parametrize("method, step", [("dopri5", None), ("bs32", None), ("rk4", 0.05)])
@pytest.mark.parametrize("rhs, p, wd, d_out", CODES)
def test_compiled_loop_equals_its_numpy_twin(rng, rhs, p, wd, d_out, method, step):
    f, y0, data = _problem(rng, rhs, p, wd, d_out)
    twin = rk.integrate(f, y0, TIMES, method=method, rtol=1e-9, atol=1e-11, step=step)
    ours = rk_kernel.integrate(rhs, y0, TIMES, *data, method=method, rtol=1e-9, atol=1e-11, step=step)
    assert ours.status == twin.status == "complete"
    assert (ours.n_steps, ours.n_rejected, ours.n_evaluations) == (twin.n_steps, twin.n_rejected,
                                                                  twin.n_evaluations)
    assert np.abs(ours.y[-1] - ours.y[0]).max() > 0.05                  # the run moves
    np.testing.assert_allclose(ours.y, twin.y, rtol=1e-12, atol=1e-13 * np.abs(twin.y).max())


def _saxe_data(rng, d_out):
    """Whitened X (X^T X / n = I), Y = X A: the end-to-end ODE at depth 2 from W_e(0) = u0 U V^T follows the
    sigmoid u(t) of Saxe, McClelland & Ganguli 2014 in every mode."""
    q, _ = np.linalg.qr(rng.standard_normal((16, 3)))
    X = 4.0 * q
    Y = X @ rng.standard_normal((3, d_out))
    U, s, Vt = lt.whitened_modes(X, Y)
    exact = lambda t: (U * [lt.saxe_mode(t, sk, 0.05, 2) for sk in s]) @ Vt  # noqa: E731
    return X, Y, 0.05 * U @ Vt, exact


@pytest.mark.parametrize("rhs, method, order", [("single-output", "dopri5", 5), ("end-to-end", "dopri5", 5),
                                                ("factors", "dopri5", 5), ("end-to-end", "bs32", 3),
                                                ("end-to-end", "rk4", 4)])
def test_fixed_step_convergence_order_against_saxe(rng, rhs, method, order):
    X, Y, We0, exact = _saxe_data(rng, 1 if rhs == "single-output" else 2)
    y0, ipar = We0.ravel(), [2, *We0.shape]
    if rhs == "factors":
        Ws0 = dl.balanced_init(We0, 2, [3])
        y0, ipar = np.concatenate([W.ravel() for W in Ws0]), [2] + [d for W in Ws0 for d in W.shape]
    times = np.linspace(0.0, 4.0, 9)                      # on the step grid of every h
    hs = np.array([0.1, 0.05, 0.025, 0.0125])
    errs = []
    for h in hs:
        sol = rk_kernel.integrate(rhs, y0, times, X, Y, [2.0, 0.0], ipar, method=method, step=h)
        if rhs == "factors":
            Ws = [lf.FactorFlow([(3, 3), (We0.shape[0], 3)], X, Y, 2.0).unpack(y) for y in sol.y]
            We = np.array([lf.end_to_end(f) for f in Ws])
        else:
            We = sol.y.reshape((-1,) + We0.shape)
        errs.append(max(np.abs(We[k] - exact(t)).max() for k, t in enumerate(times)))
    slope = float(np.polyfit(np.log(hs), np.log(errs), 1)[0])
    assert slope == pytest.approx(order, abs=0.25), (slope, errs)


@pytest.mark.parametrize("rhs, d_out", [("single-output", 1), ("end-to-end", 2), ("factors", 2)])
def test_divergence_is_reported_at_the_overflow_time(rhs, d_out):
    # X = 0: no loss gradient; weight decay -lambda at depth 2 makes dW_e/dt = 2 lambda W_e (factors:
    # dW_j/dt = lambda W_j, W_e = W_2 W_1): W_e = W_e(0) exp(2 lambda t) (entries 0.5) overflows at
    # t* = ln(max float / 0.5) / (2 lambda); the single-output form overflows earlier, in |w|^2 (|w0|^2 = 0.75)
    X, Y, lam, big = np.zeros((5, 3)), np.ones((5, d_out)), 10.0, np.log(np.finfo(float).max)
    y0, ipar, rate = np.full(3 * d_out, 0.5), [2, d_out, 3], 2 * lam
    if rhs == "factors":
        y0, ipar, rate = np.full(3 * 3 + d_out * 3, np.sqrt(0.5 / 3)), [2, 3, 3, d_out, 3], lam
    t_star = (big - np.log(0.75)) / (4 * lam) if rhs == "single-output" else (big - np.log(0.5)) / (2 * lam)
    sol = rk_kernel.integrate(rhs, y0, [0.0, 10.0, 50.0], X, Y, [2.0, -lam], ipar)
    assert sol.status == "diverged" and sol.message.startswith("non-finite state at t=")
    assert float(sol.message.rsplit("t=", 1)[1]) == pytest.approx(t_star, rel=1e-2)
    assert len(sol.y) == 2
    np.testing.assert_allclose(sol.y[1], y0 * np.exp(rate * 10.0), rtol=1e-6)
    if rhs == "single-output":     # the NumPy twin names the same time (its SVD would raise on inf for d_out > 1)
        twin = rk.integrate(lf.EndToEndFlow(2, X, Y, 2.0, -lam).rhs, y0, [0.0, 10.0, 50.0])
        assert (twin.status, twin.message) == (sol.status, sol.message)


def test_failures_and_bad_arguments(rng):
    f, y0, data = _problem(rng, "end-to-end", 4.0, 0.0)
    short = rk_kernel.integrate("end-to-end", y0, [0.0, 1.0, 2.0], *data, max_steps=5)
    twin = rk.integrate(f, y0, [0.0, 1.0, 2.0], max_steps=5)
    assert (short.status, short.message, len(short.y)) == (twin.status, twin.message, len(twin.y))
    assert short.status == "failed" and short.message.startswith("max_steps=5 reached at t=")
    with pytest.raises(ValueError, match="unknown right-hand side 'svd' \\(valid: single-output, end-to-end, "):
        rk_kernel.integrate("svd", y0, [0, 1], *data)
    with pytest.raises(ValueError, match="rk4 has no error estimate"):
        rk_kernel.integrate("end-to-end", y0, [0, 1], *data, method="rk4")
    with pytest.raises(ValueError, match="step must be positive, got 0.0"):
        rk_kernel.integrate("end-to-end", y0, [0, 1], *data, method="rk4", step=0.0)


def test_callback_chunks_do_not_change_the_run(rng):
    f, y0, data = _problem(rng, "factors", 4.0, 0.0)
    times = np.linspace(0.0, 40.0, 4)
    seen = []
    chunked = rk_kernel.integrate("factors", y0, times, *data, rtol=1e-11, atol=1e-13, callback=seen.append)
    whole = rk_kernel.integrate("factors", y0, times, *data, rtol=1e-11, atol=1e-13)
    assert whole.n_steps > 2 * rk_kernel.CHUNK and len(seen) == whole.n_steps // rk_kernel.CHUNK + 1
    np.testing.assert_array_equal(chunked.y, whole.y)
    assert np.all(np.diff(seen) > 0) and seen[-1] == times[-1]


def test_deep_linear_engines_agree_and_bad_engine_is_rejected(rng):
    X = rng.standard_normal((20, 4))
    Y = X @ rng.standard_normal((4, 2))
    We0 = 0.3 * rng.standard_normal((2, 4))
    a = dl.end_to_end_flow(We0, 3, X, Y, TIMES, p=4.0)
    b = dl.end_to_end_flow(We0, 3, X, Y, TIMES, p=4.0, engine="numpy")
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-12)
    Ws0 = dl.gaussian_init([4, 3, 2], 0.5, rng)
    c, d = (dl.factor_flow(Ws0, X, Y, TIMES, engine=e) for e in ("numba", "numpy"))
    np.testing.assert_allclose(c.We, d.We, rtol=1e-12, atol=1e-14)
    with pytest.raises(ParameterError, match="unknown engine 'jax' \\(valid: numba, numpy\\)"):
        dl.end_to_end_flow(We0, 3, X, Y, TIMES, engine="jax")
