"""saxe-modes: the small preset through the CLI (GD on the factors follows Saxe et al.'s sigmoids to O(lr),
learning times within 3%, stronger modes first), and a too-large u0 (one line, exit 2)."""
from __future__ import annotations

import numpy as np
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main


def test_small_preset_follows_the_sigmoids(tmp_path):
    out = run_scenario("saxe-modes", tmp_path / "saxe.h5")
    with sgdsim.open(out) as run:
        comp = run.comparison
        s = run.theory("singular_values").value
        for N in (2, 3):
            assert comp[f"mode_max_abs_error_depth{N}"] < 0.1          # lr = 0.05: first-order gap
            assert comp[f"half_time_max_rel_error_depth{N}"] < 0.03
            measured = run.element(f"half_time_depth{N}").value[0]
            assert np.all(np.diff(measured[np.argsort(-s)]) >= -1e-9)   # stronger modes are learned first
            el, th = run.element(f"modes_depth{N}"), run.theory(f"modes_depth{N}")
            np.testing.assert_array_equal(el.step, th.step)
            assert run.theory(f"loss_depth{N}").value.shape == el.step.shape
        assert comp["half_time_max_rel_error_depth3"] > 0 and "Saxe" in th.attrs["source"]


def test_u0_above_every_mode_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "saxe-modes", "--set", "u0=5", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "u0 (5) must be below half the strongest singular value" in err[0], err
