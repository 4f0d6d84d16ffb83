"""generalization-dynamics: the small preset through the CLI at seeds 0 and 1 (simulated students within the
family-wise bound of the Marchenko–Pastur curves at every time, the measured optimal stopping time at t*, the
peak at alpha = 1: every claim met, and failing against a wrong noise level, a wrong t* and the wrong peak; the
conventions stated beside t*), a user data pool, and the stability check (one line, exit 2)."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.deep_linear import theory as lt
from sgdsim.cli import main
from sgdsim.networks.datasets import save_xy
from sgdsim.scenarios import generalization_dynamics as G

RATIOS = (0.5, 1.0, 2.0)


def _inputs(run, noise: float):
    """The claims' measurements from a run, and the GD theory at the run's times for label noise `noise`."""
    stored = {c.name: c for c in run.claims}
    lr, P, t_max = run.params["lr"], run.params["params"], run.params["t_max"]
    measured = {"train": {}, "test": {}, "stopping": {}, "final": {}}
    theory = {"train": {}, "test": {}, "stopping": {}, "final": {}}
    for a in RATIOS:
        el = {kind: run.element(f"{kind}_a{a:g}") for kind in ("train", "test")}
        curves = dict(zip(("train", "test"), lt.advani_saxe_errors(el["test"].time, a, noise, lr=lr)))
        for kind in ("train", "test"):
            stored_curve = run.theory(f"{kind}_a{a:g}").value
            keep = np.nonzero(stored_curve > G.ROUNDING * stored_curve[0])[0]
            keep = keep[keep > 0]
            measured[kind][a] = (el[kind].value[keep, 0], el[kind].value[keep, 1])
            theory[kind][a] = curves[kind][keep]
        stop = stored[f"optimal_stopping_a{a:g}"]
        measured["stopping"][a] = (float(stop.measured), float(stop.stderr))
        theory["stopping"][a] = G.gd_optimal_time(a, noise, 1.0, 0.0, lr, round(t_max / lr))
        measured["final"][a] = tuple(el["test"].value[-1])
        theory["final"][a] = float(curves["test"][-1])
    assert P * min(RATIOS) == round(P * min(RATIOS))   # alpha = N / P exactly: the theory above is the run's
    return measured, theory


def _not_met(measured, theory, students):
    return {c.name for c in G.claims(measured, theory, students) if not c.met}


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_matches_theory_and_peaks_at_ratio_one(tmp_path, seed):
    out = run_scenario("generalization-dynamics", tmp_path / "gen.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        comp, R = run.comparison, run.params["students"]
        stored = run.claims
        assert len(stored) == 10 and all(c.met for c in stored), [(c.name, c.verdict, c.score) for c in stored]
        measured, theory = _inputs(run, noise=0.5)
        assert _not_met(measured, theory, R) == set()   # the claims rebuilt from the file are the stored ones
        for tag in ("a0.5", "a1", "a2"):
            assert comp[f"train_zscore_max_{tag}"] < 5 and comp[f"test_zscore_max_{tag}"] < 5
            el, th = run.element(f"test_{tag}"), run.theory(f"test_{tag}")
            np.testing.assert_array_equal(el.step, th.step)
            assert "Advani" in th.attrs["source"] and "t / alpha" in th.attrs["time_convention"]
            assert "half of Advani & Saxe's" in th.attrs["error_convention"]
            assert run.theory(f"test_{tag}_flow").value.shape == th.value.shape
        # the paper's units: t* / alpha and twice the error
        assert comp["optimal_time_paper_a2"] == pytest.approx(comp["optimal_time_a2"] / 2)
        assert comp["optimal_test_error_paper_a0.5"] == pytest.approx(2 * comp["optimal_test_error_a0.5"])
        assert "t / alpha" in comp["time_convention"]
        # early stopping matters most at alpha = 1: its late test error is the largest and far above its minimum
        assert comp["test_final_a1"] > max(comp["test_final_a0.5"], comp["test_final_a2"])
        assert comp["test_final_a1"] > 1.5 * comp["measured_min_test_a1"]
        assert 0.5 < comp["measured_min_time_a1"] / comp["optimal_time_a1"] < 2
        # wrong theories: label noise 20% off fails the curves; noise 0.25 or 1 moves t* out of the claims'
        # reach; a theory that puts the peak at alpha = 2 fails the peak
        for noise in (0.4, 0.6):
            assert {"test_error_a0.5", "test_error_a2"} <= _not_met(*_inputs(run, noise), R)
        for noise in (0.25, 1.0):
            wrong = {**theory, "stopping": _inputs(run, noise)[1]["stopping"]}
            assert {"optimal_stopping_a0.5", "optimal_stopping_a1", "optimal_stopping_a2"} <= _not_met(measured,
                                                                                                      wrong, R)
        peak_at_2 = {**theory, "final": {**theory["final"], 2.0: 10.0}}
        assert _not_met(measured, peak_at_2, R) == {"late_test_peak"}


def test_user_pool_runs(tmp_path, rng):
    X = rng.standard_normal((150, 10))
    save_xy(tmp_path / "pool.csv", X, X @ rng.standard_normal(10) + 0.3 * rng.standard_normal(150))
    out = tmp_path / "pool.h5"
    code = main(["run", "generalization-dynamics", "--set", f"data={tmp_path / 'pool.csv'}", "ratios=0.5,2",
                 "students=4", "t_max=5", "records=8", "--out", str(out), "--quiet", "--no-plot"])
    assert code == 0
    with sgdsim.open(out) as run:
        assert not run.attrs["theory_exact"]
        assert np.isfinite(run.comparison["test_final_a2"])


def test_learning_rate_past_stability_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "generalization-dynamics", "--set", "lr=1", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "past GD's stability edge" in err[0], err


def test_pool_with_dependent_columns_is_one_line_exit_2(tmp_path, capsys):
    X = np.ones((40, 3))
    X[:, 0] = np.arange(40.0)
    save_xy(tmp_path / "dep.npz", X, X[:, :1])
    code = main(["run", "generalization-dynamics", "--set", f"data={tmp_path / 'dep.npz'}", "--out",
                 str(tmp_path / "x.h5"), "--quiet", "--no-plot"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "input columns are linearly dependent" in err[0], err


def test_familywise_bound_with_few_students_is_students_t():
    """The curves' bound: Student's t with students - 1 degrees of freedom (Bonferroni over the times), which
    tends to the normal bound with many students and is wider with few."""
    from scipy import stats

    from sgdsim.compare.claims import familywise_z
    assert familywise_z(25, 0.01, dof=19) == pytest.approx(stats.t.isf(0.01 / 50, 19), rel=1e-10)
    assert familywise_z(25, 0.01) < familywise_z(25, 0.01, dof=19) < familywise_z(25, 0.01, dof=5)
    assert familywise_z(25, 0.01, dof=10 ** 6) == pytest.approx(familywise_z(25, 0.01), rel=1e-4)
