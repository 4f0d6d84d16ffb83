"""pspin-landscape: the small preset through the CLI (GD end points are minima whose Hessian spectra follow
the shifted semicircle, energies between the ground state and just above the threshold, radial derivative
p u), and a bad parameter (one line, exit 2)."""
from __future__ import annotations

import numpy as np
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main


def test_small_preset_minima_and_semicircle(tmp_path):
    out = run_scenario("pspin-landscape", tmp_path / "l.h5")
    with sgdsim.open(out) as run:
        assert run.status == "complete"
        comp = run.comparison
        assert comp["fraction_minima"] >= 0.8 and comp["grad_norm_max"] < 1e-3
        assert comp["radial_minus_p_energy_max"] < 1e-3          # Euler's identity at critical points
        assert comp["ground_state"] < comp["energy_min"] and comp["energy_max"] < comp["threshold"] + 0.3
        assert comp["hessian_ks_semicircle"] < 0.1
        u = run.theory("complexity_index0").coords["u"]
        theta = run.theory("complexity_index0").value
        assert abs(np.interp(comp["ground_state"], u, theta)) < 1e-3      # stored curve vanishes at -E_0
        assert run.element("hessian_eigenvalues").value.shape == (1, 6, 39)


def test_bad_parameter_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "pspin-landscape", "--set", "p=2", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "parameter p" in err[0] and "at least 3" in err[0], err
    code = main(["run", "pspin-landscape", "--set", "n=2000", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "GB" in err[0], err
