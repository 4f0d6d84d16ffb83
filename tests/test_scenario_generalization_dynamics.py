"""generalization-dynamics: the small preset through the CLI (simulated students within 5 SE of the
Marchenko–Pastur curves at every time, the measured minimum of the test error near the optimal stopping time,
the peak at alpha = 1), a user data pool, and the stability check (one line, exit 2)."""
from __future__ import annotations

import numpy as np
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main
from sgdsim.datasets import save_xy


def test_small_preset_matches_theory_and_peaks_at_ratio_one(tmp_path):
    out = run_scenario("generalization-dynamics", tmp_path / "gen.h5")
    with sgdsim.open(out) as run:
        comp = run.comparison
        for tag in ("a0.5", "a1", "a2"):
            assert comp[f"train_zscore_max_{tag}"] < 5 and comp[f"test_zscore_max_{tag}"] < 5
            el, th = run.element(f"test_{tag}"), run.theory(f"test_{tag}")
            np.testing.assert_array_equal(el.step, th.step)
            assert "Advani" in th.attrs["source"]
            assert run.theory(f"test_{tag}_flow").value.shape == th.value.shape
        # early stopping matters most at alpha = 1: its late test error is the largest and far above its minimum
        assert comp["test_final_a1"] > max(comp["test_final_a0.5"], comp["test_final_a2"])
        assert comp["test_final_a1"] > 1.5 * comp["measured_min_test_a1"]
        assert 0.5 < comp["measured_min_time_a1"] / comp["optimal_time_a1"] < 2


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
