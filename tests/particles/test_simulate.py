"""The runner (sgdsim/particles/simulate.py): recording times, what lands in the run file (checked against the recorded
cloud itself and the NumPy landscape), first-passage events, and one test per input error."""
import numpy as np
import pytest

from sgdsim.particles import dynamics as D
from sgdsim.particles import landscapes as L
from sgdsim.errors import ParameterError
from sgdsim.io.runfile import RunWriter
from sgdsim.io.runread import open_run
from sgdsim.particles.simulate import Recorder, simulate
from sgdsim.solvers import Target

QUAD = L.Quadratic([0.5, 2.0])


@pytest.mark.parametrize("n_steps, every, expected", [
    (95, 10, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]),
    (100, 25, [0, 25, 50, 75, 100]),
    (3, 10, [0, 3]),
    (0, 10, [0]),
])
def test_recorder_every(n_steps, every, expected):
    steps = Recorder(every=every).steps(n_steps)
    assert steps.dtype == np.int64
    np.testing.assert_array_equal(steps, expected)


def test_recorder_default_is_about_a_hundred_points():
    steps = Recorder().steps(1000)
    np.testing.assert_array_equal(steps, np.arange(0, 1001, 10))
    np.testing.assert_array_equal(Recorder().steps(50), np.arange(51))


def test_recorder_log_spaced():
    steps = Recorder(log_points=20).steps(10_000)
    assert steps[0] == 0 and steps[-1] == 10_000
    assert np.all(np.diff(steps) > 0)
    assert 15 <= len(steps) <= 21
    ratios = steps[2:] / steps[1:-1]  # geometric growth, after the small integers are merged
    assert np.all(ratios[-5:] == pytest.approx(10 ** (4 / 19), rel=0.02))
    np.testing.assert_array_equal(Recorder(log_points=5).steps(0), [0])
    np.testing.assert_array_equal(Recorder(log_points=50).steps(7), np.arange(8))


@pytest.mark.parametrize("recorder", [Recorder(every=3), Recorder(log_points=5)])
def test_zero_steps_take_no_step(recorder):
    x0 = np.array([[1.0, -1.0]])
    out = simulate(QUAD, D.GradientDescent(lr=0.1), x0, n_steps=0, seed=0, recorder=recorder, progress=False)
    assert out.steps_done == 0 and out.status == "complete"
    np.testing.assert_array_equal(out.positions, x0)
    assert out.observables["mean"][0] == [0]


def test_run_file_observables_match_the_recorded_cloud(tmp_path):
    """Mean, covariance, loss and density written at each recording step equal what the recorded full cloud
    snapshot gives (covariance via np.cov, loss via the NumPy landscape, density via np.histogram)."""
    m, lr, n_steps = 400, 0.05, 60
    edges = np.linspace(-3, 3, 13)
    target = Target(lo=(-0.3, -10.0), hi=(0.3, 10.0), mode="enter")
    rec = Recorder(every=30, snapshot=m, histogram=(0, edges), target=target)
    x0 = np.tile([1.0, 1.0], (m, 1))
    dyn = D.Langevin(lr=lr, temperature=0.5)
    path = tmp_path / "run.h5"
    writer = RunWriter(path, scenario="test", params={"lr": lr}, seed=3)
    out = simulate(QUAD, dyn, x0, n_steps=n_steps, seed=3, recorder=rec, writer=writer, progress=False)
    writer.close(out.status, out.message)
    assert out.status == "complete" and out.steps_done == n_steps
    with open_run(path) as run:
        assert run.status == "complete"
        assert run.names("observables") == ["covariance", "density", "loss", "mean"]
        cloud = run.element("cloud", group="particles")
        np.testing.assert_array_equal(cloud.step, [0, 30, 60])
        np.testing.assert_allclose(cloud.time, cloud.step * lr, rtol=1e-15)
        assert cloud.value.shape == (3, m, 2)
        np.testing.assert_array_equal(cloud.value[0], x0)
        np.testing.assert_array_equal(cloud.value[-1], out.positions)
        obs = {name: run.element(name) for name in ("mean", "covariance", "loss", "density")}
        for el in obs.values():
            np.testing.assert_array_equal(el.step, cloud.step)
            np.testing.assert_array_equal(el.time, cloud.time)
        for k, x in enumerate(cloud.value):
            np.testing.assert_allclose(obs["mean"].value[k], x.mean(axis=0), rtol=1e-14, atol=1e-15)
            np.testing.assert_allclose(obs["covariance"].value[k], np.cov(x.T), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(obs["loss"].value[k], QUAD.value(x).mean(), rtol=1e-12)
            counts, _ = np.histogram(x[:, 0], edges)
            np.testing.assert_allclose(obs["density"].value[k], counts / (m * np.diff(edges)), rtol=1e-14)
        np.testing.assert_allclose(obs["density"].coords["x"], 0.5 * (edges[1:] + edges[:-1]))
        # in-memory observables agree with the file
        steps, times, values = out.observables["mean"]
        np.testing.assert_array_equal(np.array(values), obs["mean"].value)
        # first passages: every particle that entered is written once, with time = step * lr
        ev = run.event("first_passage")
        hit = np.flatnonzero(out.first_hit >= 0)
        assert 0 < hit.size < m  # some, not all, entered the strip |x1| < 0.3 within 60 steps
        np.testing.assert_array_equal(np.sort(ev.particle), hit)
        assert len(np.unique(ev.particle)) == len(ev.particle)
        order = np.argsort(ev.particle)
        np.testing.assert_array_equal(ev.step[order], out.first_hit[hit])
        np.testing.assert_allclose(ev.time, ev.step * lr, rtol=1e-15)
        assert np.all((ev.step >= 1) & (ev.step <= n_steps))
        # the recorded cloud is consistent with the hits: a particle inside the strip at a recorded step
        # has hit it at or before that step
        for k, s in enumerate(cloud.step):
            inside = np.abs(cloud.value[k][:, 0]) <= 0.3
            assert np.all((out.first_hit[inside] >= 0) & (out.first_hit[inside] <= s))


def test_snapshot_is_the_first_particles(tmp_path):
    x0 = np.random.default_rng(1).standard_normal((50, 2))
    writer = RunWriter(tmp_path / "r.h5", scenario="test", params={}, seed=0)
    out = simulate(QUAD, D.GradientDescent(lr=0.1), x0, n_steps=10, seed=0, progress=False, writer=writer,
                   recorder=Recorder(every=10, snapshot=7, mean=True, covariance=False, loss=False))
    writer.close()
    with open_run(tmp_path / "r.h5") as run:
        cloud = run.element("cloud", group="particles")
        assert cloud.value.shape == (2, 7, 2)
        np.testing.assert_array_equal(cloud.value[-1], out.positions[:7])
        assert run.names("observables") == ["mean"]
        np.testing.assert_allclose(run.element("mean").value[-1], out.positions.mean(axis=0), rtol=1e-14)


def _one_line_error(match, *args, **kw):
    with pytest.raises(ParameterError, match=match) as info:
        simulate(*args, progress=False, **kw)
    assert "\n" not in str(info.value)
    return str(info.value)


REG = L.Regression(np.random.default_rng(2).standard_normal((8, 2)), np.ones(8))


def test_error_x0_wrong_shape():
    _one_line_error(r"x0 must have shape \(particles, 2\)", QUAD, D.GradientDescent(), np.zeros((5, 3)),
                    n_steps=1, seed=0)
    _one_line_error(r"x0 must have shape", QUAD, D.GradientDescent(), np.zeros(2), n_steps=1, seed=0)


@pytest.mark.parametrize("n_steps", [-1, 2.5])
def test_error_bad_n_steps(n_steps):
    _one_line_error("n_steps must be a non-negative integer", QUAD, D.GradientDescent(), np.zeros((2, 2)),
                    n_steps=n_steps, seed=0)


def test_error_sgd_on_smooth_landscape():
    msg = _one_line_error("SGD needs a finite-sum landscape", QUAD, D.SGD(batch=1), np.zeros((2, 2)),
                          n_steps=1, seed=0)
    assert "quadratic" in msg


def test_error_batch_larger_than_data():
    _one_line_error(r"batch 9 is larger than the data \(8 examples\)", REG, D.SGD(batch=9), np.zeros((2, 2)),
                    n_steps=1, seed=0)


def test_error_unknown_diffusion():
    with pytest.raises(ParameterError, match="unknown diffusion 'anisotropic'") as info:
        D.Langevin(diffusion="anisotropic")
    assert "\n" not in str(info.value)
    _one_line_error("diffusion matrix must be 2x2", QUAD, D.Langevin(diffusion=np.eye(3)), np.zeros((2, 2)),
                    n_steps=1, seed=0)
    _one_line_error("gradient-noise diffusion needs a finite-sum landscape", QUAD,
                    D.Langevin(diffusion="gradient"), np.zeros((2, 2)), n_steps=1, seed=0)


def test_error_heun_with_state_dependent_noise():
    _one_line_error("scheme='euler'", REG, D.Langevin(diffusion="gradient", scheme="heun"), np.zeros((2, 2)),
                    n_steps=1, seed=0)


def test_sme_clock_is_steps_times_lr_over_substeps():
    """An SME integrated with 4 substeps per SGD step records time t = step x lr / 4 (the SGD step k is engine
    step 4k), so its times line up with an SGD run's t = k lr."""
    tilted = L.finite_sum_double_well(8, 1.0, dim=1, seed=0)
    out = simulate(tilted, D.SME(lr=0.1, substeps=4), np.zeros((3, 1)), n_steps=8, seed=0,
                   recorder=Recorder(every=4), progress=False)
    steps, times, _ = out.observables["mean"]
    np.testing.assert_array_equal(steps, [0, 4, 8])
    np.testing.assert_allclose(times, [0.0, 0.1, 0.2])


def test_error_sme_inputs():
    _one_line_error("the SME needs a finite-sum landscape", QUAD, D.SME(), np.zeros((2, 2)), n_steps=1, seed=0)
    _one_line_error(r"batch 9 is larger than the data \(8 examples\)", REG, D.SME(batch=9), np.zeros((2, 2)),
                    n_steps=1, seed=0)
    _one_line_error("scheme='euler'", REG, D.SME(scheme="heun"), np.zeros((2, 2)), n_steps=1, seed=0)
    for kwargs, message in ((dict(order=3), "SME order must be 1 or 2"), (dict(substeps=0), "substeps must be"),
                            (dict(scheme="rk4"), "unknown scheme 'rk4'"), (dict(batch=0), "batch must be")):
        with pytest.raises(ParameterError, match=message) as info:
            D.SME(**kwargs)
        assert "\n" not in str(info.value)
