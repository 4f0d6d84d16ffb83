"""limit-cycle, small preset through the CLI at seeds 0 and 1: the PDE's steady covariance matches the
Lyapunov solution, SGD's matches the discrete Lyapunov solution within 5 SE, the measured area rates (SGD and
the ring's particles) match their predictions within 5 SE and are many SE away from zero (the equilibrium
answer), the ring's PDE steady state is exp(-Phi/T)/Z with circulation q T, and every claim is met; each claim
fails with a wrong theory; the area-rate convention is stated in the summary and the run file; a 2x2
diffusion with scalar bounds asks for per-axis bounds."""
from __future__ import annotations

import math

import numpy as np
import pytest
from cli_helpers import sgdsim_cli

import sgdsim
from sgdsim import fokker_planck
from sgdsim.particles import theory
from sgdsim.cli import main
from sgdsim.errors import ParameterError
from sgdsim.scenarios import limit_cycle as L


@pytest.fixture(scope="module", params=[0, 1])
def small_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("lc") / "lc.h5"
    result = sgdsim_cli("run", "limit-cycle", "--preset", "small", "--out", out, "--seed", request.param)
    assert result.returncode == 0, result.stderr
    assert out.with_suffix(".png").exists()
    return result, out


def test_small_preset_currents_and_covariances(small_run):
    _, out = small_run
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


def test_small_preset_claims_are_all_met(small_run):
    _, out = small_run
    with sgdsim.open(out) as run:
        claims = {c.name: c for c in run.claims}
    assert set(claims) == {"ou_covariance", "ou_covariance_pde", "ou_area_rate", "ou_detailed_balance",
                           "ring_area_rate"}
    assert all(c.met for c in claims.values()), [(c.name, c.verdict, c.score) for c in claims.values()]
    assert claims["ou_detailed_balance"].expected == "fails"


def test_area_rate_convention_is_stated_next_to_the_numbers(small_run):
    result, out = small_run
    assert "(1/2)<x dy - y dx>/dt" in result.stdout and "twice" in result.stdout
    with sgdsim.open(out) as run:
        for group, name in (("observables", "ou_area_rate_particles"), ("observables", "ring_area_rate_particles"),
                            ("theory", "ou_area_rate"), ("theory", "ring_area_rate")):
            attrs = run.h5[f"{group}/{name}"].attrs
            assert attrs["convention"] == L.AREA_CONVENTION["convention"], name
            assert "2 x" in attrs["conversion"], name
        assert run.comparison["area_rate_convention"] == L.AREA_CONVENTION["convention"]


def stored(out):
    """The measurements and theory of a stored run, as `limit_cycle.claims` takes them (the coarse PDE
    covariance recomputed, as the scenario does)."""
    with sgdsim.open(out) as run:
        p, c = run.params, run.comparison
        H = np.diag([p["h1"], p["h2"]])
        C = L.noise_covariance(p["noise"], math.radians(p["angle"]), p["ratio"])
        S_cont = run.theory("ou_covariance_lyapunov").value
        half = 5 * np.sqrt(np.diag(S_cont))
        pde = {}
        for cells in (p["cells"], p["cells"] // 2):
            fp = fokker_planck.problem(loss=lambda x: 0.5 * (x * x) @ np.diag(H), temperature=p["lr"] / 2,
                                       lo=-half, hi=half, cells=cells, diffusion=C)
            pde[cells] = fp.covariance(fp.steady_state())
        measured = dict(cov=run.element("ou_covariance_particles").value[0],
                        cov_stderr=run.element("ou_covariance_stderr").value[0], area=c["ou_area_rate_measured"],
                        area_stderr=c["ou_area_rate_stderr"], cov_pde=pde[p["cells"]],
                        cov_pde_coarse=pde[p["cells"] // 2], ring_area=c["ring_area_rate_measured"],
                        ring_area_stderr=c["ring_area_rate_stderr"])
        predicted = dict(S_continuous=S_cont, S_discrete=run.theory("ou_covariance_discrete").value, H=H,
                         ring_area=c["ring_area_rate_theory"])
    return measured, predicted, p, H


def met(claims) -> dict:
    return {c.name: c.met for c in claims}


def test_every_claim_fails_with_a_wrong_theory(small_run):
    _, out = small_run
    measured, predicted, p, H = stored(out)
    assert all(met(L.claims(measured, predicted)).values())
    # a 10% hotter steady state (S scales with T = lr / 2B)
    assert not met(L.claims(measured, predicted | dict(S_discrete=1.1 * predicted["S_discrete"])))["ou_covariance"]
    # the noise rotated the other way: the area rate changes sign
    C_mirror = L.noise_covariance(p["noise"], math.radians(-p["angle"]), p["ratio"])
    S_mirror = theory.lyapunov_discrete(H, C_mirror, p["lr"], p["batch"])
    assert not met(L.claims(measured, predicted | dict(S_discrete=S_mirror)))["ou_area_rate"]
    # a first-order PDE (coarse error 2x, not 4x): the Richardson estimate is 3x too small
    error = measured["cov_pde"] - predicted["S_continuous"]
    first_order = measured | dict(cov_pde_coarse=predicted["S_continuous"] + 2 * error)
    assert not met(L.claims(first_order, predicted))["ou_covariance_pde"]
    # commuting noise (no current): the expected failure of detailed balance is not met
    assert not met(L.claims(measured | dict(area=0.0), predicted))["ou_detailed_balance"]
    # noise commuting with H predicts no current: detailed balance is then not claimed to fail
    C_axis = L.noise_covariance(p["noise"], 0.0, p["ratio"])
    S_axis = theory.lyapunov_discrete(H, C_axis, p["lr"], p["batch"])
    assert "ou_detailed_balance" not in met(L.claims(measured, predicted | dict(S_discrete=S_axis)))
    # the ring at a 20% higher temperature
    assert not met(L.claims(measured, predicted | dict(ring_area=1.2 * predicted["ring_area"])))["ring_area_rate"]


def test_two_by_two_diffusion_with_scalar_bounds_asks_for_per_axis_bounds():
    with pytest.raises(ParameterError, match=r"diffusion is 2x2 but the grid has 1 axis: give lo, hi and cells "
                                             r"per axis \(2 entries each\)"):
        fokker_planck.problem(loss=lambda x: 0.5 * np.sum(x * x, axis=1), temperature=0.1, lo=-2.0, hi=2.0,
                              cells=16, diffusion=np.diag([1.0, 0.5]))


def test_unstable_learning_rate_is_rejected(tmp_path, capsys):
    code = main(["run", "limit-cycle", "--set", "lr=0.6", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "lr 0.6 is unstable for h = 4.0" in err[0], err
