"""smoothing, small preset through the CLI: GD on the rippled loss stops in the first sharp minimum, while
with a step noise above s* (where the smoothed loss has lost its sharp minima) the SGD cloud's mean of
y = x - lr f'(x) follows GD on the smoothed loss (Kleinberg, Li & Yuan 2018) to the bottom of the bowl;
escape from a sharp minimum goes from never to always as the noise grows, for SGD and for its SDE limit
(Fokker–Planck with absorbing walls). An unstable learning rate is one line with exit 2."""
from __future__ import annotations

import numpy as np
from cli_helpers import run_scenario

import sgdsim
from sgdsim.cli import main


def test_small_preset_sgd_follows_gd_on_the_smoothed_loss(tmp_path):
    out = run_scenario("smoothing", tmp_path / "sm.h5")
    with sgdsim.open(out) as run:
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
        sde = run.theory("escape_sde_limit").value
        assert escape[0] < 0.01 and escape[-1] > 0.99 and c["escape_monotone"] == 1
        assert sde[0] < 0.01 and sde[-1] > 0.99 and np.all(np.diff(sde) >= -1e-9)
        assert c["basin_left"] < c["sharp_minimum"] < c["basin_right"]


def test_unstable_learning_rate_is_one_line_exit_2(tmp_path, capsys):
    code = main(["run", "smoothing", "--set", "lr=0.05", "--out", str(tmp_path / "x.h5"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unstable in the sharp minima" in err[0], err
