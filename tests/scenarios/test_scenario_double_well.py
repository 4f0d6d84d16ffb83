"""double-well: the histogram against the Fokker–Planck densities of its SDE limit and of the Li–Tai–E
modified equation at every recorded time, the relaxation time from the PDE's spectral gap, and the stationary
claims against the O(lr)-corrected invariant measure — which is itself checked against an independent
method, the fixed point of SGD's Gaussian transition kernel, with its fitted order in lr."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import sgdsim_cli

import sgdsim
from sgdsim.particles import theory
from sgdsim.particles.landscapes import DoubleWell
from sgdsim.particles.modified_equations import euler_invariant_loss, modified_loss
from sgdsim.scenarios import double_well as dw


def on_line(f):
    """A potential of points (M, 1) as a function of scalars or 1-D arrays."""
    return lambda x: f(np.reshape(x, (-1, 1))).reshape(np.shape(x))


@pytest.fixture(scope="module", params=[0, 1])
def small_run(tmp_path_factory, request):
    out = tmp_path_factory.mktemp("dw") / f"dw{request.param}.h5"
    result = sgdsim_cli("run", "double-well", "--preset", "small", "--seed", request.param, "--out", out, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result.stdout


def test_small_preset_equilibrates_and_meets_every_claim(small_run):
    out, stdout = small_run
    assert "relaxation time tau" in stdout and "equilibrated: t = 60" in stdout and "claims met" in stdout
    with sgdsim.open(out) as run:
        names = {c.name: c for c in run.claims}
        assert {"stationary_vs_invariant_measure", "stationary_second_moment"} <= set(names)
        assert all(c.met for c in names.values())
        hist, binned = run.element("density"), run.element("pde_sme2_density_binned")
        assert np.allclose(binned.time, hist.time) and np.allclose(hist.time, hist.step * 0.02)
        field = run.element("pde_sde_density")
        np.testing.assert_allclose(field.value.sum(axis=1) * (5 / field.value.shape[1]), 1.0, atol=1e-12)
        assert 0 < run.comparison["relaxation_time"] < 20


def _inputs(out, temperature_factor=1.0, potential=None):
    """The claims' inputs rebuilt from a run file, the invariant measure at a (possibly wrong) temperature or
    from another potential."""
    with sgdsim.open(out) as run:
        hist = run.element("density")
        edges = hist.attrs["edges"]
        widths = np.diff(edges)
        T = run.comparison["temperature"] * temperature_factor
        lr, m = run.params["lr"], run.params["particles"]
        x2, se = run.comparison["second_moment_measured"], run.comparison["second_moment_stderr"]
        predicted = {k: run.element(f"pde_{k}_density_binned").value[1:] * widths for k in ("sde", "sme2", "euler")}
        predicted |= {f"stationary_{k}": run.theory(f"stationary_{k}").value * widths
                      for k in ("sde", "sme2", "euler")}
    centres = 0.5 * (edges[1:] + edges[:-1])
    predicted["centres"] = centres
    potential = potential or on_line(euler_invariant_loss(DoubleWell(1), lr, T))
    predicted["invariant"] = theory.gibbs_bin_probabilities(potential, edges, T)
    measured = {"histograms": hist.value[1:] * widths, "right": 0.5, "x2": x2, "x2_stderr": se, "particles": m}
    return measured, predicted


def test_claims_fail_under_a_wrong_temperature_or_the_uncorrected_theory(small_run):
    out, _ = small_run
    assert all(c.met for c in dw.claims(*_inputs(out), equilibrated=True))
    # 2000 particles resolve the temperature to ~10%: a 50% error must be caught by both claims
    hot = {c.name: c for c in dw.claims(*_inputs(out, temperature_factor=1.5), equilibrated=True)}
    assert not hot["stationary_vs_invariant_measure"].met and not hot["stationary_second_moment"].met
    with sgdsim.open(out) as run:
        lr = run.params["lr"]
    # the Li–Tai–E modified loss in place of the invariant measure: O(lr) off, with the wrong sign
    wrong = {c.name: c for c in dw.claims(*_inputs(out, potential=on_line(modified_loss(DoubleWell(1), 4 * lr))),
                                          equilibrated=True)}
    assert not wrong["stationary_vs_invariant_measure"].met


def test_no_equilibrium_claim_before_equilibrium(small_run):
    out, _ = small_run
    names = [c.name for c in dw.claims(*_inputs(out), equilibrated=False)]
    assert not any(n.startswith("stationary") for n in names)


def test_invariant_measure_of_sgd_against_its_transition_kernel_with_fitted_order():
    """Independent method: the stationary density of x' = x - lr f'(x) + sqrt(2 T lr) z is the fixed point of
    its Gaussian transition kernel on a fine grid. The Gibbs density is O(lr) away from it; the corrected
    invariant measure O(lr^2): fitted slopes of the L1 error against lr."""
    T, x = 0.25, np.linspace(-2.5, 2.5, 801)
    errors = {"gibbs": [], "invariant": []}
    rates = np.array([0.02, 0.01, 0.005])
    for lr in rates:
        mean = x - lr * 4 * x * (x * x - 1)
        kernel = np.exp(-(x[:, None] - mean[None, :]) ** 2 / (4 * T * lr))
        kernel /= kernel.sum(axis=0, keepdims=True)      # column j: where a particle at x_j goes
        fixed = kernel - np.eye(len(x))
        fixed[-1] = 1.0                                  # (K - I) p = 0 with sum p = 1
        p = np.linalg.solve(fixed, np.eye(len(x))[-1])
        for key, U in (("gibbs", dw.double_well(x)), ("invariant", on_line(euler_invariant_loss(DoubleWell(1), lr, T))(x))):
            q = np.exp(-(U - U.min()) / T)
            errors[key].append(np.abs(q / q.sum() - p).sum())
    slope = {k: np.polyfit(np.log(rates), np.log(v), 1)[0] for k, v in errors.items()}
    assert slope["gibbs"] == pytest.approx(1.0, abs=0.15) and slope["invariant"] == pytest.approx(2.0, abs=0.3)
    assert errors["invariant"][-1] < errors["gibbs"][-1] / 10
