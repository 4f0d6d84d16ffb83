"""smoothing, small preset through the CLI at seeds 0 and 1: GD on the rippled loss stops in the first sharp
minimum, while with a step noise above s* (where the smoothed loss has lost its sharp minima) the SGD cloud's
mean of y = x - lr f'(x) follows GD on the smoothed loss (Kleinberg, Li & Yuan 2018) to the bottom of the
bowl; escape from a sharp minimum goes from never to always as the noise grows, for SGD, for the exact
discrete chain and for the SDE limit (Fokker–Planck with absorbing walls); every claim is met and fails with a
wrong theory. A negative amplitude (the paper's cosine of the other sign) runs from the CLI; an unstable
learning rate and a zero amplitude are one line with exit 2."""
from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main
from sgdsim.particles.landscapes import Ripple
from sgdsim.scenarios import smoothing as S


@pytest.fixture(scope="module", params=[0, 1])
def small_run(request, tmp_path_factory):
    return run_scenario("smoothing", tmp_path_factory.mktemp("sm") / "sm.h5", "--seed", request.param)


def test_small_preset_sgd_follows_gd_on_the_smoothed_loss(small_run):
    with sgdsim.open(small_run) as run:
        c = run.comparison
        noises = run.element("sgd_mean_y").coords["noise"]
        assert noises[-1] > c["s_star"] > noises[0]
        assert c["gd_plain_final"] > 1.3                                   # GD on f is trapped near x0 = 1.5
        last = len(noises) - 1
        mean_y, se = run.element("sgd_mean_y"), run.element("sgd_mean_y_stderr")
        smoothed = run.theory("gd_smoothed").value
        # above s*: the cloud's mean tracks GD on f_s all the way (within 5 SE + 0.05 of Jensen gap)
        assert np.all(np.abs(mean_y.value[:, last] - smoothed[:, last]) < 5 * se.value[:, last] + 0.05)
        assert abs(c[f"mean_y_final_noise{last}"]) < 0.1
        # below s*: GD on f_s is trapped too, and the smallest noise barely moves the cloud
        assert c["gd_smoothed_final_noise0"] > 1.3 and c["mean_y_final_noise0"] > 1.0
        escape = run.element("escape_probability").value[0]
        sde, chain = run.theory("escape_sde_limit").value, run.theory("escape_chain").value
        assert escape[0] < 0.01 and escape[-1] > 0.99 and c["escape_monotone"] == 1
        assert sde[0] < 0.01 and sde[-1] > 0.99 and np.all(np.diff(sde) >= -1e-9)
        assert chain[0] < 0.01 and chain[-1] > 0.99 and np.all(np.diff(chain) >= -1e-9)
        assert c["basin_left"] < c["sharp_minimum"] < c["basin_right"]


def test_small_preset_claims_are_all_met(small_run):
    with sgdsim.open(small_run) as run:
        claims = {c.name: c for c in run.claims}
    assert set(claims) == {"smoothed_gd_above_threshold", "smoothed_gd_below_threshold", "escape_chain",
                           "escape_sde_limit"}
    assert all(c.met for c in claims.values()), [(c.name, c.verdict, c.score) for c in claims.values()]
    assert claims["smoothed_gd_below_threshold"].expected == "fails"


def stored(out):
    """The measurements and theory of a stored run, as `smoothing.claims` takes them."""
    with sgdsim.open(out) as run:
        measured = dict(mean_y=run.element("sgd_mean_y").value[1:],
                        mean_y_stderr=run.element("sgd_mean_y_stderr").value[1:],
                        escape=run.element("escape_probability").value[0], particles=run.params["particles"])
        theory = dict(s_star=run.comparison["s_star"], trajectory_noises=run.element("sgd_mean_y").coords["noise"],
                      gd_smoothed=run.theory("gd_smoothed").value[1:],
                      escape_sde=run.theory("escape_sde_limit").value, escape_chain=run.theory("escape_chain").value)
        plain = run.theory("gd_plain").value[1:]
        noises = run.element("escape_probability").coords["noise"]
        basin = tuple(run.comparison[k] for k in ("sharp_minimum", "basin_left", "basin_right"))
        p, seed = run.params, run.seed
    ripple = Ripple(1, bowl=p["bowl"], amplitude=p["amplitude"], wavelength=p["wavelength"])
    theory |= dict(bowl=p["bowl"], amplitude=p["amplitude"], wavelength=p["wavelength"],
                   charfn_gap=[S.charfn_gap(ripple, S.sgd_landscape(ripple, s, p, seed + j).tilts[:, 0], s, p["lr"],
                                            p["batch"]) for j, s in enumerate(theory["trajectory_noises"])])
    return measured, theory, plain, noises, basin, p, seed


def met(claims) -> dict:
    return {c.name: c.met for c in claims}


def test_every_claim_fails_with_a_wrong_theory(small_run):
    measured, theory, plain, noises, (xm, left, right), p, seed = stored(small_run)
    assert all(met(S.claims(measured, theory)).values())
    # no smoothing at all (GD on f itself) above s*, or GD on f_s at a quarter of the noise scale (trapped)
    unsmoothed = theory | dict(gd_smoothed=np.repeat(plain[:, None], len(theory["trajectory_noises"]), axis=1))
    assert not met(S.claims(measured, unsmoothed))["smoothed_gd_above_threshold"]
    ripple = Ripple(1, bowl=p["bowl"], amplitude=p["amplitude"], wavelength=p["wavelength"])
    y0 = p["start"] - p["lr"] * float(ripple.grad(np.array([[p["start"]]]))[0, 0])
    steps = np.unique(np.linspace(0, p["steps"], S.RECORDS + 1).round().astype(np.int64))
    colder = np.column_stack([S.gd(lambda x, s=s: ripple.grad(x, s / 4), y0, p["lr"], steps)[1:]
                              for s in theory["trajectory_noises"]])
    assert not met(S.claims(measured, theory | dict(gd_smoothed=colder)))["smoothed_gd_above_threshold"]
    # the approximation's bound is what allows the deviation: without it (4 SE alone, a Gaussian law, no
    # Jensen gap) the claim would be stricter, never looser
    strict = S.drift_bound(1.0, 0.1, 0.2, 0.15, 1.0, 0.0)
    assert 0 < strict < S.drift_bound(1.0, 0.1, 0.2, 0.15, 1.0, 0.05) and S.drift_bound(1.0, 0.1, 0.2, 0.05, 1.0, 0.0) == np.inf
    # a cloud that stayed trapped with GD on f_s below s*: the expected failure is not met
    trapped = measured | dict(mean_y=theory["gd_smoothed"])
    assert not met(S.claims(trapped, theory))["smoothed_gd_below_threshold"]
    # the exact chain with 20% more step noise (a 44% hotter temperature)
    hotter = np.array([S.escape_chain(ripple, 1.2 * p["lr"] * S.sgd_landscape(ripple, s, p, seed + 1000 + j).tilts[:, 0],
                                      p["lr"], xm, left, right, p["escape_steps"]) for j, s in enumerate(noises)])
    assert not met(S.claims(measured, theory | dict(escape_chain=hotter)))["escape_chain"]
    # the SDE limit of the next noise scale (a hotter temperature) misplaces the transition
    shifted = np.append(theory["escape_sde"][1:], 1.0)
    assert not met(S.claims(measured, theory | dict(escape_sde=shifted)))["escape_sde_limit"]


def test_negative_amplitude_runs_from_the_cli(tmp_path, capsys):
    out = tmp_path / "neg.h5"
    code = main(["run", "smoothing", "--preset", "small", "--set", "amplitude=-0.1", "particles=300",
                 "noises=0.005,0.07", "--out", str(out), "--quiet", "--no-plot"])
    assert code == 0, capsys.readouterr().err
    with sgdsim.open(out) as run:
        c = run.comparison
        assert run.params["amplitude"] == -0.1
        assert c["s_star"] == pytest.approx(S.threshold(1.0, 0.1, 0.2))      # s* depends on |a|
        # a < 0 puts the sharp minima where a > 0 has its maxima: half a wavelength from x = 1, not at 1
        assert abs(abs(c["sharp_minimum"] - 1.0) - 0.1) < 0.02
        assert all(claim.met for claim in run.claims)


@pytest.mark.parametrize("setting, fragment", [
    ("lr=0.05", "unstable in the sharp minima"),
    ("amplitude=0", "parameter amplitude must be non-zero"),
    ("amplitude=-1", "unstable in the sharp minima"),
])
def test_bad_parameters_are_one_line_exit_2(setting, fragment, tmp_path, capsys):
    code = main(["run", "smoothing", "--set", setting, "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err
