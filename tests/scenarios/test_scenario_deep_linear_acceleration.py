"""deep-linear-acceleration: the small preset through the CLI (depth accelerates GD for p = 4, not for
p = 2; every curve has its end-to-end-ODE theory beside it; every claim met at seeds 0 and 1, and the same
measurements held against a wrong theory fail), and the bad-parameter paths (one line, exit 2)."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main
from sgdsim.scenarios import deep_linear_acceleration as D

RIGHT = {"accelerates": {2.0: False, 4.0: True}, "order": 1.0}


def _measured(comp: dict) -> dict:
    """The claims' measurements rebuilt from a run's /comparison."""
    return {"total": 1200,
            "to_target": {q: {N: comp[f"steps_to_target_p{q:g}_depth{N}"] for N in (1, 2, 3)} for q in (2.0, 4.0)},
            "order": {q: np.array([comp[f"gd_vs_ode_order_p{q:g}_depth{N}"] for N in (1, 2, 3)]) for q in (2.0, 4.0)}}


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_claims_are_met_and_fail_against_a_wrong_theory(tmp_path, seed):
    out = run_scenario("deep-linear-acceleration", tmp_path / "acc.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        stored, comp = run.claims, run.comparison
        _check_curves(run)
    assert [c.name for c in stored] == ["depth_no_acceleration_p2", "gd_follows_ode_first_order_p2",
                                        "depth_accelerates_p4", "gd_follows_ode_first_order_p4"]
    assert all(c.met for c in stored), [(c.name, c.verdict, c.score) for c in stored]
    measured = _measured(comp)
    assert [c.verdict for c in D.claims(measured, RIGHT)] == [c.verdict for c in stored]
    # the other theory (depth accelerates l_2 and not l_4) and a second-order (or no) convergence to the ODE
    swapped = D.claims(measured, {"accelerates": {2.0: True, 4.0: False}, "order": 1.0})
    assert [c.name for c in swapped if not c.met] == ["depth_accelerates_p2", "depth_no_acceleration_p4"]
    for order in (0.0, 2.0):
        wrong = D.claims(measured, {**RIGHT, "order": order})
        assert [c.name for c in wrong if not c.met] == ["gd_follows_ode_first_order_p2",
                                                        "gd_follows_ode_first_order_p4"]


def test_step_ratios_bound_a_depth_1_that_never_reaches_the_target():
    assert D.step_ratios({1: 400.0, 2: 100.0, 3: 200.0}, 1000) == (0.25, 0.25)
    upper, lower = D.step_ratios({1: np.inf, 2: 300.0}, 1000)   # depth 1 needs more than 1000 steps
    assert upper == 0.3 and lower == 0.0
    assert D.step_ratios({1: 300.0, 2: np.inf}, 1000) == (np.inf, np.inf)
    assert np.isnan(D.step_ratios({1: np.inf, 2: np.inf}, 1000)[1])


def _check_curves(run):
    """Depth accelerates GD for p = 4, not for p = 2; every curve has its end-to-end-ODE theory beside it."""
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
    assert run.element("final_excess_p4").value.shape == (1, 3, 4)
    for q in (2, 4):   # at the smallest lr (0.03) GD ends within 5% of the end-to-end ODE at every depth
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
