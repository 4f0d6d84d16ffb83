"""limit-cycle, small preset through the CLI: the PDE's steady covariance matches the Lyapunov solution,
SGD's matches the discrete Lyapunov solution within 5 SE, the measured area rates (SGD and the ring's
particles) match their predictions within 5 SE and are many SE away from zero (the equilibrium answer), and
the ring's PDE steady state is exp(-Phi/T)/Z with circulation q T."""
from __future__ import annotations

import numpy as np
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main


def test_small_preset_currents_and_covariances(tmp_path):
    out = run_scenario("limit-cycle", tmp_path / "lc.h5")
    with sgdsim.open(out) as run:
        c = run.comparison
        assert c["ou_commutator_norm"] > 0.5
        assert c["ou_covariance_pde_rel_error"] < 5e-3
        assert c["ou_covariance_particles_zscore_max"] < 5
        assert c["ou_area_rate_particles_zscore"] < 5
        assert abs(c["ou_area_rate_measured"]) > 20 * c["ou_area_rate_stderr"]      # not detailed balance
        assert c["ou_area_rate_pde_rel_error"] < 0.02
        assert c["ring_area_rate_pde_rel_error"] < 0.01 and c["ring_l1_pde_gibbs"] < 0.02
        assert c["ring_area_rate_particles_zscore"] < 5
        assert c["ring_area_rate_measured"] > 20 * c["ring_area_rate_stderr"]
        J = run.element("ring_current")
        assert J.value.shape == (1, 2, 48, 48) and set(J.coords) == {"component", "x", "y"}
        assert np.allclose(run.theory("ou_covariance_lyapunov").value,
                           run.theory("ou_covariance_lyapunov").value.T)


def test_unstable_learning_rate_is_rejected(tmp_path, capsys):
    code = main(["run", "limit-cycle", "--set", "lr=0.6", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "lr 0.6 is unstable for h = 4.0" in err[0], err
