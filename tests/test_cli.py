"""The `sgdsim` command: every error path (one line, exit 2), divergence (exit 1), the main job's small
preset, inspect/plot from the file alone, and a run killed by SIGKILL mid-way."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest
from cli_helpers import CLI, sgdsim_cli

import sgdsim

SMALL = ["--preset", "small"]


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgdsim: error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_names_the_scenarios_and_their_parameters():
    result = sgdsim_cli("list")
    assert result.returncode == 0
    assert "double-well:" in result.stdout and "batch (int, default 2)" in result.stdout


def test_small_double_well_writes_run_file_figure_and_summary(tmp_path):
    out = tmp_path / "dw.h5"
    result = sgdsim_cli("run", "double-well", *SMALL, "--seed", 3, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "KL(histogram || Gibbs)" in result.stdout
    assert out.exists() and out.with_suffix(".png").exists()
    assert not out.with_name("dw.h5.partial").exists()
    with sgdsim.open(out) as run:
        assert run.status == "complete" and run.seed == 3 and run.scenario == "double-well"
        assert run.params["particles"] == 2000 and run.versions["sgdsim"] == sgdsim.__version__
        assert set(run.names("observables")) >= {"density", "kl_gibbs", "mean", "loss"}
        kl = run.element("kl_gibbs").value
        assert kl[-1] < kl[0] and run.comparison["kl_final_measured"] == kl[-1]
        assert "temperature" in run.theory("gibbs").attrs


def test_same_seed_same_file_content(tmp_path):
    values = []
    for name in ("a.h5", "b.h5"):
        assert sgdsim_cli("run", "double-well", *SMALL, "--no-plot", "--quiet", "--out", tmp_path / name).returncode == 0
        with sgdsim.open(tmp_path / name) as run:
            values.append(run.element("cloud", group="particles").value)
    assert np.array_equal(values[0], values[1])


def test_inspect_and_plot_work_from_the_file_alone(tmp_path):
    out = tmp_path / "dw.h5"
    assert sgdsim_cli("run", "double-well", *SMALL, "--no-plot", "--quiet", "--out", out).returncode == 0
    inspect = sgdsim_cli("inspect", out)
    assert inspect.returncode == 0 and "double-well" in inspect.stdout and "observables/density" in inspect.stdout
    png = tmp_path / "fig.png"
    assert sgdsim_cli("plot", out, "--out", png).returncode == 0 and png.stat().st_size > 10_000


@pytest.mark.parametrize("args, fragments", [
    (["run", "no-such-scenario"], ["unknown scenario 'no-such-scenario'", "double-well"]),
    (["run", "double-well", "--set", "nonsense=1"], ["unknown parameter 'nonsense'", "batch"]),
    (["run", "double-well", "--set", "lr=fast"], ["lr must be a number", "'fast'"]),
    (["run", "double-well", "--set", "lr=-0.1"], ["lr must be positive"]),
    (["run", "double-well", "--set", "lr=nan"], ["lr must be finite"]),
    (["run", "double-well", "--set", "batch=2.5"], ["batch must be an integer"]),
    (["run", "double-well", "--set", "batch=1000"], ["batch 1000 is larger than the data (256 examples)"]),
    (["run", "double-well", "--set", "replace=maybe"], ["replace must be true or false"]),
    (["run", "double-well", "--set", "lr"], ["--set takes KEY=VALUE"]),
    (["run", "double-well", "--preset", "huge"], ["unknown preset 'huge'", "small"]),
    (["run", "double-well", "--seed", "-1"], ["--seed must be in [0, 2**63)"]),
    (["run", "double-well", "--seed", "x"], ["invalid int value"]),
    (["frobnicate"], ["invalid choice"]),
    (["inspect", "/nonexistent/run.h5"], ["no such file"]),
    (["plot", "/nonexistent/run.h5"], ["no such file"]),
])
def test_bad_input_is_one_line_and_exit_2(args, fragments, capsys):
    """In-process (the same main() the console script calls), so each case costs no interpreter start."""
    from sgdsim.cli import main
    code = main(args)
    captured = capsys.readouterr()
    assert_one_line_error(subprocess.CompletedProcess(args, code, captured.out, captured.err), *fragments)


@pytest.mark.parametrize("args", [["run", "no-such-scenario"], ["run", "double-well", "--set", "lr=-1"]])
def test_bad_input_through_the_real_command(args):
    assert_one_line_error(sgdsim_cli(*args), args[1] if len(args) == 2 else "lr must be positive")


def test_corrupt_and_foreign_files_are_refused(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    assert_one_line_error(sgdsim_cli("inspect", text), str(text), "not a readable HDF5 file")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    assert_one_line_error(sgdsim_cli("plot", foreign), "not an sgdsim run file")
    good = tmp_path / "good.h5"
    assert sgdsim_cli("run", "double-well", *SMALL, "--no-plot", "--quiet", "--out", good).returncode == 0
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert_one_line_error(sgdsim_cli("inspect", truncated), str(truncated))


def test_diverging_run_stops_names_the_step_and_exits_1(tmp_path):
    out = tmp_path / "boom.h5"
    result = sgdsim_cli("run", "double-well", *SMALL, "--set", "lr=2.0", "--out", out)
    assert result.returncode == 1
    assert "diverged at step" in result.stderr and "particle" in result.stderr
    with sgdsim.open(out) as run:
        assert run.status == "diverged" and "diverged at step" in run.message
        divergence = run.event("divergence")
        assert len(divergence.particle) > 0 and np.all(divergence.step >= 1)
        assert np.all(np.isfinite(run.element("density").value))  # nothing non-finite was written


def test_sigkill_mid_run_leaves_a_readable_prefix_of_the_complete_run(tmp_path):
    params = ["--set", "particles=5000", "steps=200000", "record_every=50", "--seed", "5", "--no-plot", "--quiet"]
    killed = tmp_path / "killed.h5"
    partial = tmp_path / "killed.h5.partial"
    proc = subprocess.Popen([*CLI, "run", "double-well", *params, "--out", str(killed)])
    try:
        deadline = time.time() + 120
        while time.time() < deadline and (not partial.exists() or partial.stat().st_size < 200_000):
            time.sleep(0.2)
        assert partial.exists(), "the run never started writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not killed.exists()
    with sgdsim.open(partial) as run:
        assert run.status == "running"
        density = run.element("density")
        n = len(density.step)
        assert n >= 1 and np.array_equal(density.step, 50 * np.arange(n))
    complete = tmp_path / "complete.h5"
    params[params.index("steps=200000")] = f"steps={50 * (n - 1)}"
    assert sgdsim_cli("run", "double-well", *params, "--out", complete).returncode == 0
    with sgdsim.open(complete) as run:
        assert np.array_equal(run.element("density").value, density.value)  # bit-identical prefix
