"""risk-curves: the small preset through the CLI at seeds 0 and 1 (every claim met, and rebuilt from the run
file alone); each claim fails against a wrong theory (full-batch GD without SGD's noise, the Volterra solution for
twice the batch, the exponent of beta + 0.25, a critical lr 25% too high or too low); n < d is one line, exit 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.highdim import risk as hr
from sgdsim.cli import main
from sgdsim.scenarios import risk_curves as rc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("risk")
    return {seed: run_scenario("risk-curves", folder / f"rc{seed}.h5", "--seed", seed) for seed in (0, 1)}


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_meets_every_claim(runs, seed):
    with sgdsim.open(runs[seed]) as run:
        stored = run.claims
        assert all(c.met for c in stored), [(c.name, c.verdict, c.score) for c in stored]
        rebuilt = rc.claims(*rc.from_run(run))
        assert [c.name for c in rebuilt] == [c.name for c in stored]
        assert [c.score for c in rebuilt] == pytest.approx([c.score for c in stored])


def test_each_claim_fails_against_a_wrong_theory(runs):
    with sgdsim.open(runs[0]) as run:
        measured, right = rc.from_run(run)
        p, c, steps = run.params, run.comparison, run.element("risk").step
    lam, xstar = hr.power_law(p["d"], p["alpha"], p["beta"])
    lam_c, _ = hr.power_law(p["d"], p["critical_alpha"], p["beta"])
    gd = hr.gd_risk(lam, xstar ** 2, lr=c["lr"], steps=p["steps"])[steps[steps > 0]]
    big_batch = [hr.risk_curve(lam_c, xstar ** 2, lr=f * c["critical_lr"],
                               batch=2 * p["batch"], steps=p["critical_steps"])[-1] for f in (0.9, 1.1)]
    wrong = {"risk_curve": {"risk": gd},
             "risk_exponent": {"exponent": hr.risk_exponent(p["alpha"], p["beta"] + 0.25)},
             "converges_below_critical": {"critical_lr": 1.25 * c["critical_lr"]},
             "diverges_above_critical": {"critical_lr": 0.8 * c["critical_lr"]},
             "stability_risk": {"stability": np.array(big_batch)}}
    for name, change in wrong.items():
        assert all(claim.met for claim in rc.claims(measured, right))
        verdicts = {claim.name: claim.met for claim in rc.claims(measured, {**right, **change})}
        assert not verdicts[name], name


def test_fewer_examples_than_dimensions_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "risk-curves", "--set", "n=100", "d=200", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "n (100) must be at least d (200)" in err[0], err
