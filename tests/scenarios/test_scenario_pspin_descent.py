"""pspin-descent: the small preset through the CLI at seeds 0 and 1 (every claim met; run file holds
trajectories, /theory, /comparison), its claims failing for a wrong threshold, and its bad-parameter paths (one
line, exit 2), including a CK step whose error estimate exceeds the tolerance."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.spin_glass import theory as th
from sgdsim.cli import main
from sgdsim.scenarios.pspin_descent import claims


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_claims_and_records(seed, tmp_path):
    out = run_scenario("pspin-descent", tmp_path / "d.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        assert run.status == "complete"
        assert run.claims and all(c.met for c in run.claims), [(c.name, c.verdict) for c in run.claims]
        comp = run.comparison
        for name in ("ck_energy_T0", "ck_energy_T", "ck_aging_T0", "threshold", "ground_state"):
            run.theory(name)
        assert comp["ck_error_T0_max"] <= 1e-3 and comp["ck_error_T_max"] <= 1e-3
        assert run.element("gd_final_energy_vs_N").value.shape == (1, 2)
        e = run.element("gd_N64_energy").value
        assert e.shape[1] == 8 and np.all(np.diff(e.mean(axis=1)) < 0)          # GD descends
        acceptance = run.element("langevin_N64_acceptance").value[-1]
        assert np.all((0.5 < acceptance) & (acceptance < 1))                     # Metropolis-adjusted Langevin
        for n in (32, 64):
            assert comp["ground_state"] < comp[f"gd_final_N{n}"]
            assert comp[f"langevin_final_N{n}"] > comp[f"gd_final_N{n}"]         # T = 0.5 sits higher
        assert run.element("gd_N32_overlap_start").value[0] == pytest.approx(1.0)
        aging = run.element("gd_N64_overlap_waiting")
        np.testing.assert_allclose(aging.coords["waiting_time"], run.theory("ck_aging_T0").coords["waiting_time"])
        late = aging.value[-1].mean(axis=1)
        assert np.all(np.diff(late) > 0)          # aging: later waiting times decorrelate less by t_max
        if seed:
            return
        gd = run.element("gd_final_energy_vs_N")
        measured = {"ns": [32, 64], "gd_final": gd.value[-1], "gd_stderr": gd.attrs["stderr"]}
        theory = {"threshold": comp["threshold"], "ck_final": comp["ck_energy_T0_final"],
                  "ck_error": comp["ck_error_T0_max"]}
    assert all(c.met for c in claims(measured, theory))
    # the threshold in Crisanti-Sommers' convention (xi = q^3/2) without converting to this module's: both fail
    wrong = {**theory, "threshold": th.convert_energy(th.threshold_energy(3), "abc", "crisanti-sommers")}
    assert not any(c.met for c in claims(measured, wrong))


@pytest.mark.parametrize("setting, fragment", [
    ("p=3:0", "parameter p"), ("ns=2,3", "parameter ns"), ("replicas=1", "parameter replicas"),
    ("ck_step=0.001", "CK steps is above 4000"), ("ck_step=0.05", "estimated error"),
])
def test_bad_parameters_one_line_exit_2(setting, fragment, tmp_path, capsys):
    code = main(["run", "pspin-descent", "--set", setting, "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err


def test_memory_limit_is_checked_before_allocating(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SGDSIM_MAX_BYTES", "1000000")
    code = main(["run", "pspin-descent", "--set", "ns=64", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "GB" in err[0] and "SGDSIM_MAX_BYTES" in err[0], err
