"""`sgdsim plot` on a run no installed scenario draws (one written by `sgdsim.record`): the overview figure of
every observable against time; a run with nothing to draw is a one-line error (exit 2)."""
from __future__ import annotations

import numpy as np

import sgdsim
from sgdsim.cli import main
from sgdsim.runfile import RunWriter


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
