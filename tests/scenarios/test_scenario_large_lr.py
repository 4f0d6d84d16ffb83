"""large-lr small preset through the CLI at seeds 0 and 1: the Q-only test error of large-lr-then-decay is far
below that of the small learning rate (Li, Wei & Ma 2019), with a margin, and the claims saying so are met and
fail against the other theory (the small lr learns Q); the data have the stated structure;
a bad batch is a one-line error with exit code 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main
from sgdsim.scenarios import large_lr

THEORY = {"learns_q": "large", "linear_q_floor": large_lr.LINEAR_Q_FLOOR}


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_large_then_decay_learns_the_q_pattern(tmp_path, seed):
    out = run_scenario("large-lr", tmp_path / "llr.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        assert run.status == "complete"
        comp = run.comparison
        assert comp["test_error_q_large"] < 0.1   # learned the nonlinear pattern: below the linear floor 0.25
        assert comp["test_error_q_small"] > comp["test_error_q_large"] + 0.15
        assert comp["train_error_large"] < 0.05
        assert abs(comp["test_error_p_large"] - comp["test_error_p_small"]) < 0.1  # P: about the same
        assert run.element("large_test_error_groups").value.shape[1:] == (16, 3)
        assert float(run.theory("linear_q_floor").value) == 0.25
        stored = run.claims
        assert [c.name for c in stored] == ["q_learned_large_lr", "q_missed_small_lr"]
        assert all(c.met for c in stored), [(c.name, c.verdict, c.score) for c in stored]
        q = {k: run.element(f"{k}_test_error_groups").value[-1][:, 1] for k in ("large", "small")}
    measured = {"q_error": q}
    assert [c.verdict for c in large_lr.claims(measured, THEORY)] == [c.verdict for c in stored]
    # the other theory (the small lr learns Q, the large one misses it): both claims fail
    assert all(not c.met for c in large_lr.claims(measured, {**THEORY, "learns_q": "small"}))


def test_two_pattern_data_structure():
    data = large_lr.two_pattern_data(300, 3000, 10, 0.1, 0.2, seed=1)
    p, q = data.X_test[:, :10], data.X_test[:, 10:]
    kind = data.test_groups
    assert np.all(q[kind == 0] == 0) and np.all(p[kind == 1] == 0)
    assert abs(np.mean(kind == 2) - 0.6) < 5 * np.sqrt(0.24 / 3000)
    # Q: class 0 at the centre, class 1 at distance zeta on either side
    centre = q[(kind != 0) & (data.labels_test == 0)].mean(axis=0)
    d1 = np.linalg.norm(q[(kind != 0) & (data.labels_test == 1)] - centre, axis=1)
    assert abs(np.linalg.norm(centre) - 1.0) < 0.01 and abs(np.median(d1) - 0.2) < 0.02


def test_bad_batch_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "large-lr", "--set", "batch=500", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "batch 500 is larger than the data (100 examples)" in err[0]
