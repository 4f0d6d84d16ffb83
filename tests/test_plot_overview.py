"""`sgdsim plot` on a run no installed scenario draws (one written by `sgdsim.record`): the overview figure of
every observable against time; a run with nothing to draw is a one-line error (exit 2)."""
from __future__ import annotations

import numpy as np
from figure_helpers import figures  # noqa: F401  (fixture)

import sgdsim
from sgdsim.cli import main
from sgdsim.io.runfile import RunWriter


def test_recorded_run_gets_the_overview_figure(tmp_path, capsys):
    path = tmp_path / "rec.h5"
    with sgdsim.record(path, params={"width": 8}, lr=0.1, seed=1) as rec:
        for step in range(20):
            rec.log(step, loss=np.exp(-step / 10), weights={"W1": np.full((4, 5), float(step))})
    assert main(["plot", str(path)]) == 0
    png = path.with_suffix(".png")
    assert png.exists() and png.stat().st_size > 10_000
    assert f"figure: {png}" in capsys.readouterr().out


def test_run_without_observables_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "empty.h5"
    with RunWriter(path, scenario="external", params={}, seed=0) as writer:
        writer.close("complete", "")
    assert main(["plot", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sgdsim: error: {path}: no observables to plot"


def test_overview_says_what_time_is_offers_log_axes_and_every_legend_entry_draws(tmp_path, capsys, figures):
    """Issue 13.11: the generic figure labelled its axis "time" whatever it was and had no log axes."""
    from figure_helpers import legend_problems
    path = tmp_path / "rec.h5"
    with sgdsim.record(path, lr=0.1, seed=1) as rec:
        for step in range(1, 30):
            rec.log(step, loss=1.0 / step, weights=np.full(3, float(step)))
        rec.theory("loss", 1.0 / np.arange(1, 30), step=np.arange(1, 30), time=0.1 * np.arange(1, 30),
                   source="s", equation="1/step")
    assert main(["plot", str(path), "--log", "xy"]) == 0
    (fig,) = figures
    loss = next(ax for ax in fig.axes if ax.get_title() == "loss")
    assert loss.get_xlabel() == "t = lr x step (lr = 0.1)"
    assert loss.get_xscale() == "log" and loss.get_yscale() == "log"
    assert legend_problems(fig) == []
    steps = tmp_path / "steps.h5"
    with sgdsim.record(steps) as rec:
        rec.log(0, loss=1.0)
        rec.log(5, loss=0.5)
    assert main(["plot", str(steps)]) == 0
    assert figures[1].axes[0].get_xlabel() == "step" and figures[1].axes[0].get_xscale() == "linear"
