"""saxe-modes: the small preset through the CLI (GD on the factors follows Saxe et al.'s sigmoids to O(lr),
learning times within 3%, stronger modes first; every claim met at seeds 0 and 1, and failing against a wrong
u0, the other depth's theory, or a GD that would not lag the flow), and a too-large u0 (one line, exit 2)."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.deep_linear import theory as lt
from sgdsim.cli import main
from sgdsim.scenarios import saxe_modes as S


def _not_met(measured, theory):
    return [c.name for c in S.claims(measured, theory) if not c.met]


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_follows_the_sigmoids(tmp_path, seed):
    out = run_scenario("saxe-modes", tmp_path / "saxe.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        stored = run.claims
        assert [c.name for c in stored] == ["half_times_depth2", "half_time_lag_depth2", "half_times_depth3",
                                            "half_time_lag_depth3"]
        assert all(c.met for c in stored), [(c.name, c.verdict, c.score) for c in stored]
        s, u0, lr = run.theory("singular_values").value, run.params["u0"], run.params["lr"]
        measured = {"half_time": {N: run.element(f"half_time_depth{N}").value[0] for N in (2, 3)}}
        theory = {"half_time": {N: run.theory(f"half_time_depth{N}").value for N in (2, 3)},
                  "euler_lag": {N: run.theory(f"half_time_lag_depth{N}").value for N in (2, 3)}}
        assert _not_met(measured, theory) == []
        np.testing.assert_allclose(theory["euler_lag"][2], S.euler_lag(s, u0, 2, lr), rtol=1e-12)
        # a wrong initial strength (2 u0), or the other depth's learning times: the half-times claims fail (and
        # with them the lags, measured from the wrong flow)
        doubled = {**theory, "half_time": {N: [lt.saxe_half_time(sk, 2 * u0, N) for sk in s] for N in (2, 3)}}
        other = {**theory, "half_time": {2: theory["half_time"][3], 3: theory["half_time"][2]}}
        for wrong in (doubled, other):
            assert {"half_times_depth2", "half_times_depth3"} <= set(_not_met(measured, wrong))
        # GD following the flow without delay, or ahead of it: the lag claims fail
        for lag in (0.0, -1.0):
            wrong = {**theory, "euler_lag": {N: lag * theory["euler_lag"][N] for N in (2, 3)}}
            assert {"half_time_lag_depth2", "half_time_lag_depth3"} <= set(_not_met(measured, wrong))
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
