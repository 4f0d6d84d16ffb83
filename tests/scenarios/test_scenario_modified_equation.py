"""Scenario modified-equation: the small preset end to end through the CLI at seeds 0 and 1 (every claim met),
and the claims function fed deliberately wrong theories (each claim it concerns flips)."""
import numpy as np
import pytest

import sgdsim
from sgdsim.scenarios import modified_equation as S

from cli_helpers import run_scenario


@pytest.mark.parametrize("seed", [0, 1])
def test_small_preset_runs_and_every_claim_is_met(tmp_path, seed):
    out = run_scenario("modified-equation", tmp_path / f"me{seed}.h5", "--seed", seed)
    run = sgdsim.open(out)
    claims = {c.name: c for c in run.claims}
    assert len(claims) == 12
    assert all(c.met for c in claims.values()), {n: (c.verdict, c.measured) for n, c in claims.items() if not c.met}
    assert run.comparison["ls_sme2_slope"] == pytest.approx(2.0, abs=0.3)


@pytest.fixture(scope="module")
def pieces():
    """The measurements and theories of a reduced small run, computed in-process by the scenario's own steps."""
    p = S.SCENARIO.resolve(preset="small") | dict(dw_particles=100_000, dw_cells=800)
    ls_lrs, ls_measured, ls_theories = S.least_squares(p, 0)
    dw_lrs, dw_measured, dw_theories, status, _ = S.double_well_weak(p, 0, False)
    assert status == "complete"
    edges, hist, q, T, _ = S.stationary(p, 0, False)
    measured = ls_measured | dw_measured | dict(histogram=hist, particles=p["stat_particles"])
    theory = dict(ls=ls_theories, stationary=q) | dw_theories
    return measured, theory, {"ls": ls_lrs, "dw": dw_lrs}


def _met(claims):
    return {c.name: c.met for c in claims}


def test_claims_are_met_with_the_right_theories(pieces):
    met = _met(S.claims(*pieces))
    assert all(met.values()), met


@pytest.mark.parametrize("part, swap, flipped", [
    ("ls", {"sme2": "sme1"}, "ls_sme2_slope"),                  # an order-1 theory cannot show order 2
    ("ls", {"sme2_wrong": "sme2"}, "ls_sme2_wrong_slope"),      # the right correction does not fail
    ("ls", {"sme1": "sme2"}, "ls_sme1_slope"),                  # order 2 in place of order 1: slope ~ 2
    ("dw", {"sme2": "sme1"}, "dw_sme2_slope"),
    ("dw", {"sme1": "sme2"}, "dw_sme1_slope"),
    ("stationary", {"euler": "gibbs"}, "stationary_euler"),     # Gibbs does not describe the histogram
    ("stationary", {"gibbs": "euler"}, "stationary_gibbs"),     # ... and the Euler density does
    ("stationary", {"sme2": "euler"}, "stationary_sme2"),
    ("stationary", {"euler_pde": "sme2"}, "stationary_euler_pde"),
])
def test_a_wrong_theory_flips_its_claim(pieces, part, swap, flipped):
    measured, theory, lrs = pieces
    wrong = {k: dict(v) if isinstance(v, dict) else v for k, v in theory.items()}
    for target, source in swap.items():
        wrong[part][target] = theory[part][source]
    met = _met(S.claims(measured, wrong, lrs))
    assert {name for name, ok in met.items() if not ok} == {flipped}


def test_a_perturbed_temperature_breaks_the_euler_stationary_claim(pieces):
    """The Euler invariant density at 1.1 T (a wrong noise level) is rejected by the histogram."""
    measured, theory, lrs = pieces
    from sgdsim.particles import modified_equations as ME
    from sgdsim.particles import theory as th
    p = S.SCENARIO.resolve(preset="small")
    landscape = S.stationary_landscape(p, 0)
    T = 1.1 * p["stat_lr"] * np.var(landscape.tilts) / 2
    f_eff = ME.euler_invariant_loss(landscape, p["stat_lr"], T)
    edges = np.linspace(-S.RANGE, S.RANGE, p["bins"] + 1)
    wrong = dict(theory, stationary=dict(theory["stationary"], euler=th.gibbs_bin_probabilities(
        lambda y: f_eff(np.atleast_1d(y)[:, None]) if np.ndim(y) else float(f_eff(np.array([[y]]))[0]), edges, T)))
    assert not _met(S.claims(measured, wrong, lrs))["stationary_euler"]
