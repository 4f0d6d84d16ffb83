"""committee-machine: the small preset through the CLI at seeds 0 and 1 (every claim met, and rebuilt from the
run file alone); the claims fail against wrong theories (the ODE at 0.8 lr from the same initial order
parameters; an N^-1 spread); a teacher wider than the input is one line, exit 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.highdim import committee as hd
from sgdsim.cli import main
from sgdsim.scenarios import committee_machine as cm


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("committee")
    return {seed: run_scenario("committee-machine", folder / f"cm{seed}.h5", "--seed", seed) for seed in (0, 1)}


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_meets_every_claim(runs, seed):
    with sgdsim.open(runs[seed]) as run:
        stored = run.claims
        assert [c.name for c in stored] == ["eps_g_curve", "spread_exponent", "escape_time", "plateau_length"]
        assert all(c.met for c in stored), [(c.name, c.verdict, c.score) for c in stored]
        rebuilt = cm.claims(*cm.from_run(run))
        assert [c.score for c in rebuilt] == pytest.approx([c.score for c in stored])
        assert run.theory("eps_g").value.shape == run.element("eps_g").value.shape


def test_claims_fail_against_wrong_theories(runs):
    """The ODE integrated at 0.8 lr from the students' own initial Q, R (rebuilt from seed and parameters)
    misses the simulation's curve and escape time; a spread falling as N^-1 misses the measured exponent; a
    plateau 10% longer per e-fold of overlap than 1/gamma misses the ODE's escape times."""
    with sgdsim.open(runs[0]) as run:
        p, (measured, right) = run.params, cm.from_run(run)
        level = run.theory("plateau_escape").attrs["level"]
        t = hd.teacher(p["N"], p["M"], run.seed)
        Q0, R0 = hd.order_parameters(hd.initial_students(t, p["K"], p["students"], p["init_scale"], p["overlap"],
                                                         run.seed), t)
        np.testing.assert_allclose(run.element("Q").value[0], Q0.mean(axis=0), rtol=1e-12)
        times = run.element("eps_g").time
    slow = hd.ode(Q0, R0, np.ones(R0.shape[:2]), t, times, lr=0.8 * p["lr"])
    escape = np.mean([hd.escape_time(times, e, level) for e in slow.eps.T])
    assert all(c.met for c in cm.claims(measured, right))
    wrong = {"eps_mean": slow.eps.mean(axis=1), "spread_exponent": -1.0, "escape_mean": escape,
             "inverse_rate": 1.1 * right["inverse_rate"]}
    assert not any(c.met for c in cm.claims(measured, wrong))


def test_teacher_wider_than_the_input_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "committee-machine", "--set", "M=30", "N=20", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "must be at least M (30)" in err[0], err
