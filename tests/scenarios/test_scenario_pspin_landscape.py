"""pspin-landscape: the small preset through the CLI at seeds 0 and 1 (every claim met: GD end points above the
ground state, Hessian spectra on the shifted semicircle; minima, radial derivative p u), the claims failing for
a wrong convention, and a bad parameter (one line, exit 2)."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.spin_glass import theory as th
from sgdsim.cli import main
from sgdsim.scenarios.pspin_landscape import claims


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_minima_and_semicircle(seed, tmp_path):
    out = run_scenario("pspin-landscape", tmp_path / "l.h5", "--seed", seed)
    with sgdsim.open(out) as run:
        assert run.status == "complete"
        assert run.claims and all(c.met for c in run.claims), [(c.name, c.verdict) for c in run.claims]
        comp = run.comparison
        assert comp["fraction_minima"] >= 0.8 and comp["grad_norm_max"] < 1e-3
        assert comp["radial_minus_p_energy_max"] < 1e-3          # Euler's identity at critical points
        assert comp["ground_state"] < comp["energy_min"] and comp["energy_max"] < comp["threshold"] + 0.3
        u = run.theory("complexity_index0").coords["u"]
        theta = run.theory("complexity_index0").value
        assert abs(np.interp(comp["ground_state"], u, theta)) < 1e-3      # stored curve vanishes at -E_0
        assert run.element("hessian_eigenvalues").value.shape == (1, 6, 39)
        if seed:
            return
        measured = {"energy": run.element("minima_energy").value[-1],
                    "shifted": run.element("hessian_eigenvalues").value[-1]
                    + run.element("minima_radial").value[-1][:, None]}
        semi = run.theory("hessian_semicircle").coords["lambda_shifted"]
        theory = {"ground_state": comp["ground_state"], "radius": float(semi.max() / 1.1)}
    assert all(c.met for c in claims(measured, theory))
    # wrong theories: the ground state and the radius in Crisanti-Sommers' convention (xi = q^3/2), unconverted
    cs = th.convert_energy(1.0, "abc", "crisanti-sommers")
    flipped = {c.name: c.met for c in claims(measured, {"ground_state": cs * theory["ground_state"],
                                                       "radius": cs * theory["radius"]})}
    assert flipped == {"minima_above_ground_state": False, "hessian_semicircle": False}


def test_bad_parameter_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "pspin-landscape", "--set", "p=2", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "parameter p" in err[0] and "at least 3" in err[0], err
    code = main(["run", "pspin-landscape", "--set", "n=2000", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "GB" in err[0], err
