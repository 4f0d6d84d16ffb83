"""deep-linear-acceleration: the small preset through the CLI (depth accelerates GD for p = 4, not for
p = 2; every curve has its end-to-end-ODE theory beside it), and the bad-parameter paths (one line, exit 2)."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main


def test_small_preset_shows_acceleration_only_for_p4(tmp_path):
    out = run_scenario("deep-linear-acceleration", tmp_path / "acc.h5")
    with sgdsim.open(out) as run:
        comp = run.comparison
        assert run.status == "complete"
        assert comp["accelerates_p4"] and not comp["accelerates_p2"]
        assert comp["steps_to_target_p4_depth1"] > 2 * comp[f"steps_to_target_p4_depth{comp['best_depth_p4']}"]
        for N in (1, 2, 3):
            for q in (2, 4):
                el, th = run.element(f"loss_p{q}_depth{N}"), run.theory(f"loss_p{q}_depth{N}")
                np.testing.assert_array_equal(el.step, th.step)
                np.testing.assert_allclose(th.time, th.step * el.attrs["lr"])
                assert np.all(np.isfinite(th.value)) and "Arora" in th.attrs["source"]
                # the end-to-end ODE and GD end at nearly the same loss (t = step * lr)
                assert comp[f"gd_vs_ode_final_rel_gap_p{q}_depth{N}"] < 0.5
        assert run.element("final_excess_p4").value.shape == (1, 3, 3)
        for q in (2, 4):   # at the smallest lr (0.1) GD ends within 5% of the end-to-end ODE at every depth
            ratio = run.element(f"final_excess_p{q}").value[0][:, 0] / run.theory(f"final_excess_p{q}").value[:, 0]
            np.testing.assert_allclose(ratio, 1.0, atol=0.05)


@pytest.mark.parametrize("setting, fragment", [
    ("ps=2,1.5", "every loss exponent must be at least 2, got 1.5"),
    ("depths=0,2", "parameter depths must be a comma-separated list of integers >= 1"),
])
def test_bad_parameters_are_one_line_exit_2(tmp_path, capsys, setting, fragment):
    code = main(["run", "deep-linear-acceleration", "--set", setting, "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err


def test_every_learning_rate_diverging_stops_the_run_and_still_plots(tmp_path, capsys):
    out = tmp_path / "div.h5"
    code = main(["run", "deep-linear-acceleration", "--set", "ps=4", "depths=1", "lrs=50", "adaptive_lrs=0.1",
                 "steps=50", "records=5", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "every learning rate diverged (non-finite weights at step" in err, err
    assert out.with_suffix(".png").exists()
    with sgdsim.open(out) as run:
        assert run.status == "diverged" and "p=4, depth 1" in run.message
