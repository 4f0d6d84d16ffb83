"""saddle-escape: the small preset end to end through the CLI at seeds 0 and 1 (GD never escapes, PGD always
does, and its mean escape step matches the exact theory within 4 standard errors at every d; every claim is
met, and fails with a wrong theory), the bad-input paths, and the theory pieces the scenario builds from the
library's functions."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import sgdsim_cli

import sgdsim
from sgdsim.particles import theory
from sgdsim.cli import main
from sgdsim.scenarios import saddle_escape as se


@pytest.fixture(scope="module", params=[0, 1])
def small_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("saddle") / "x.h5"
    result = sgdsim_cli("run", "saddle-escape", "--preset", "small", "--out", out, "--quiet", "--seed", request.param)
    return result, out


def test_small_preset_runs_and_writes_file_and_figure(small_run):
    result, out = small_run
    assert result.returncode == 0, result.stderr
    assert out.exists() and out.with_suffix(".png").stat().st_size > 10_000
    with sgdsim.open(out) as run:
        assert run.status == "complete" and run.scenario == "saddle-escape"
        assert run.params["dims"] == "2,16,128"


def test_gd_never_escapes_and_pgd_always_does(small_run):
    _, out = small_run
    with sgdsim.open(out) as run:
        c, m = run.comparison, run.params["particles"]
        dims = list(c["dims"])
        np.testing.assert_array_equal(c["gd_escaped_fraction_measured"], 0.0)
        assert c["gd_max_abs_x1_measured"] == 0.0  # x1 = 0 exactly: the stable manifold is invariant under GD
        np.testing.assert_array_equal(c["pgd_escaped_fraction_measured"], 1.0)
        n0 = run.theory("pgd_escape_mean").attrs["n0"]
        for d, mean in zip(dims, c["pgd_escape_mean_measured"]):
            assert len(run.event(f"gd_d{d}_first_passage").step) == 0
            steps = run.event(f"pgd_d{d}_first_passage").step
            assert len(steps) == m and steps.min() > n0       # nobody escapes before the kick at step n0
            assert steps.mean() == pytest.approx(mean)         # the summary is the events' mean


def test_pgd_mean_escape_step_matches_theory_within_4_se(small_run):
    _, out = small_run
    with sgdsim.open(out) as run:
        c = run.comparison
        stored = run.theory("pgd_escape_mean")
        np.testing.assert_array_equal(stored.coords["d"], c["dims"])
        z = (c["pgd_escape_mean_measured"] - stored.value) / c["pgd_escape_mean_stderr"]
        assert np.all(np.abs(z) < 4), dict(zip(c["dims"], z))
        # the linearized SGD estimate is an approximation, good to ~0.1 step here (SE ~0.5)
        z_sgd = (c["sgd_escape_mean_measured"] - c["sgd_escape_mean_theory"]) / c["sgd_escape_mean_stderr"]
        assert np.all(np.abs(z_sgd) < 4), dict(zip(c["dims"], z_sgd))


def test_small_preset_claims_are_all_met(small_run):
    _, out = small_run
    with sgdsim.open(out) as run:
        claims = {c.name: c for c in run.claims}
    assert set(claims) == {"gd_stuck", "sgd_escapes", "sgd_escape_mean", "pgd_escape_mean", "pgd_log_d_slope"}
    assert all(c.met for c in claims.values()), [(c.name, c.verdict, c.score) for c in claims.values()]


def stored(out):
    """The measurements and theory of a stored run, as `saddle_escape.claims` takes them."""
    with sgdsim.open(out) as run:
        c = run.comparison
        measured = dict(gd_max_abs_x1=c["gd_max_abs_x1_measured"], sgd_fraction=c["sgd_escaped_fraction_measured"],
                        sgd_mean=c["sgd_escape_mean_measured"], sgd_stderr=c["sgd_escape_mean_stderr"],
                        pgd_mean=c["pgd_escape_mean_measured"], pgd_stderr=c["pgd_escape_mean_stderr"],
                        pgd_slope=c["pgd_log_d_slope_measured"], pgd_slope_stderr=c["pgd_log_d_slope_stderr"])
        predicted = dict(sgd_mean=c["sgd_escape_mean_theory"], pgd_mean=c["pgd_escape_mean_theory"],
                         pgd_slope=c["pgd_log_d_slope_theory"])
        return measured, predicted, run.params, list(c["dims"]), int(run.theory("pgd_escape_mean").attrs["n0"])


def met(claims) -> dict:
    return {c.name: c.met for c in claims}


def test_every_claim_fails_with_a_wrong_theory(small_run):
    _, out = small_run
    measured, predicted, p, dims, n0 = stored(out)
    assert all(met(se.claims(measured, predicted)).values())
    # GD started a hair off the stable manifold (x1 = 1e-8) leaves it: x1 grows like (1 + lr)^n
    off = 1e-8 * (1 + p["lr"]) ** p["steps"]
    assert not met(se.claims(measured | dict(gd_max_abs_x1=off), predicted))["gd_stuck"]
    # an SGD that leaves one particle in 500 behind at one d
    assert not met(se.claims(measured | dict(sgd_fraction=np.r_[measured["sgd_fraction"][:-1], 0.998]),
                             predicted))["sgd_escapes"]
    # SGD noise of twice the variance: U grows by sqrt 2, the escape count drops by log(sqrt 2) / log(1 + lr)
    louder = predicted["sgd_mean"] - 0.5 * np.log(2) / np.log1p(p["lr"])
    assert not met(se.claims(measured, predicted | dict(sgd_mean=louder)))["sgd_escape_mean"]
    # a PGD kick 50% larger (the escape count drops by log 1.5 / log(1 + lr), about 4 steps)
    wider = np.array([n0 + theory.pgd_escape_steps_mean(p["lr"], 1.5 * p["radius"], d, p["threshold"]) for d in dims])
    assert not met(se.claims(measured, predicted | dict(pgd_mean=wider)))["pgd_escape_mean"]
    # no growth with d (the per-coordinate noise of SGD): slope 0
    assert not met(se.claims(measured, predicted | dict(pgd_slope=0.0)))["pgd_log_d_slope"]


@pytest.mark.parametrize("setting, fragment", [
    ("dims=0,4", "dims must be a comma-separated list of integers >= 2 (0 is not)"),
    ("dims=abc", "dims must be a comma-separated list of integers"),
    ("lr=-1", "lr must be in (0, 1)"),
])
def test_bad_input_is_one_line_and_exit_2(setting, fragment, tmp_path, capsys):
    # in-process (the CLI's own main): the same code path as the command, without a 3 s interpreter start
    code = main(["run", "saddle-escape", "--set", setting, "--no-plot", "--quiet", "--out", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgdsim: error:") and fragment in lines[0], err
    assert not list(tmp_path.iterdir())  # rejected before anything was written


def test_kick_step_is_the_first_step_with_small_gradient():
    for lr, radius, g in [(0.1, 1.0, 0.01), (0.3, 2.0, 0.05), (0.05, 0.5, 0.6)]:
        n, x = 0, radius
        while x > g:  # the kernel: |grad f| = |x_rest| checked before each update x_rest <- (1 - lr) x_rest
            x, n = x - lr * x, n + 1
        assert se.kick_step(lr, radius, g) == n


def test_quantile_grid_law_agrees_with_the_closed_form_mean():
    for d in (2, 64, 1000):
        grid_mean = se.pgd_escape_distribution(0.1, 0.1, d, 0.5).mean()
        assert grid_mean == pytest.approx(theory.pgd_escape_steps_mean(0.1, 0.1, d, 0.5), abs=2e-3)
