"""pspin-descent: the small preset through the CLI (GD at the largest N follows the CK curve within 5 SE at
t_max; run file holds trajectories, /theory and /comparison), and its bad-parameter paths (one line, exit 2)."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main


def test_small_preset_follows_ck_and_stays_above_the_ground_state(tmp_path):
    out = run_scenario("pspin-descent", tmp_path / "d.h5")
    with sgdsim.open(out) as run:
        assert run.status == "complete"
        comp = run.comparison
        for name in ("ck_energy_T0", "ck_energy_T", "ck_aging_T0", "threshold", "ground_state"):
            run.theory(name)
        assert run.element("gd_final_energy_vs_N").value.shape == (1, 2)
        e = run.element("gd_N64_energy").value
        assert e.shape[1] == 4 and np.all(np.diff(e.mean(axis=1)) < 0)          # GD descends
        assert abs(comp["gd_final_minus_ck_largest_N"]) < 5 * comp["gd_final_stderr_N64"]
        for n in (32, 64):
            assert comp["ground_state"] < comp[f"gd_final_N{n}"]
            assert comp[f"langevin_final_N{n}"] > comp[f"gd_final_N{n}"]         # T = 0.5 sits higher
        assert comp["ck_energy_T0_final"] > comp["threshold"]
        assert run.element("gd_N32_overlap_start").value[0] == pytest.approx(1.0)
        aging = run.element("gd_N64_overlap_waiting")
        np.testing.assert_allclose(aging.coords["waiting_time"], run.theory("ck_aging_T0").coords["waiting_time"])
        late = aging.value[-1].mean(axis=1)
        assert np.all(np.diff(late) > 0)          # aging: later waiting times decorrelate less by t_max


@pytest.mark.parametrize("setting, fragment", [
    ("p=3:0", "parameter p"), ("ns=2,3", "parameter ns"), ("replicas=1", "parameter replicas"),
    ("ck_step=0.001", "CK steps is above 4000"),
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
