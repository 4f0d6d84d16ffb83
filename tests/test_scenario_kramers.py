"""kramers, small preset through the CLI: the particles' mean escape time agrees with the PDE's backward
equation within 5 standard errors at every temperature, the PDE with the exact 1-D double integral within
1%, and the Arrhenius slope of the particles with the exact one; bad parameters are one line with exit 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import sgdsim_cli

import sgdsim
from sgdsim.cli import main


def test_small_preset_particles_pde_exact_and_kramers_agree(tmp_path):
    out = tmp_path / "k.h5"
    result = sgdsim_cli("run", "kramers", "--preset", "small", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Arrhenius slope" in result.stdout and out.with_suffix(".png").exists()
    with sgdsim.open(out) as run:
        measured = run.element("mfpt_measured")
        temps = measured.coords["temperature"]
        assert list(temps) == [0.4, 0.5, 0.7]
        se = run.element("mfpt_stderr").value[0]
        pde, exact, kramers = (run.theory(n).value for n in ("mfpt_pde", "mfpt_exact", "mfpt_kramers"))
        assert np.all(np.abs(measured.value[0] - pde) < 5 * se)
        assert np.all(se < 0.06 * pde)                     # the comparison has power: SE of a few percent
        assert np.all(np.abs(pde / exact - 1) < 0.01)
        # Kramers underestimates at these temperatures (O(T) correction), less so at lower T
        ratio = kramers / exact
        assert np.all(ratio < 1) and ratio[0] > 0.75
        comp = run.comparison
        slope, slope_se = comp["arrhenius_slope_measured"], comp["arrhenius_slope_stderr"]
        assert abs(slope - comp["arrhenius_slope_exact"]) < 5 * slope_se and slope_se < 0.1
        assert comp["censored_total"] < 0.05 * 3 * run.params["particles"]
        events = run.event("T0_first_passage")
        assert len(events.particle) == run.params["particles"] - run.element("censored").value[0][0]


@pytest.mark.parametrize("setting, fragment", [
    ("temperatures=0.3,-1", "parameter temperatures"),
    ("target=3", "parameter target must be in (-1, 2.5)"),
    ("dynamics=adam", "parameter dynamics must be one of sgd, langevin"),
])
def test_bad_parameters_are_one_line_exit_2(setting, fragment, tmp_path, capsys):
    code = main(["run", "kramers", "--set", setting, "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err
