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
from sgdsim.scenario import get_scenario

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
    assert "claims (theory vs measurement):" in result.stdout and f"run file: {out}" in result.stdout
    assert out.exists() and out.with_suffix(".png").exists()
    assert not out.with_name("dw.h5.partial").exists()
    with sgdsim.open(out) as run:
        assert run.status == "complete" and run.seed == 3 and run.scenario == "double-well"
        assert run.params == get_scenario("double-well").resolve(preset="small")
        assert run.versions["sgdsim"] == sgdsim.__version__
        assert set(run.names("observables")) >= {"density", "mean", "loss"} and run.claims


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
    # issue 13.3: the summary says what was reached and prints nothing computed from the diverged cloud
    assert "no summary statistics or claims" in result.stdout
    assert "<x^2>" not in result.stdout and "right well" not in result.stdout and "claims met" not in result.stdout


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


# ------------------------------------------------------------------ issue 13: everyday use without surprises
# Most of these run the test plug-in's scenario `plugin-decay` (tests/plugins/theory_plugin) in-process
# through the same main() the console script calls: it runs in milliseconds.

from plugin_helpers import plugin, plugin_site  # noqa: E402,F401  (fixtures)


def cli(capsys, *args) -> subprocess.CompletedProcess:
    """main(ARGS) in this process, its exit code and output as a CompletedProcess."""
    from sgdsim.cli import main
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def test_list_one_scenario_shows_its_parameters_and_presets(capsys):
    """Issue 13.10: `sgdsim list SCENARIO` shows that scenario's parameters and presets, and nothing else."""
    result = cli(capsys, "list", "double-well")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("double-well: ") and "    batch (int, default 2): minibatch size B" in lines
    preset = get_scenario("double-well").presets["small"]
    assert "    preset small: " + " ".join(f"{k}={v}" for k, v in preset.items()) in lines
    assert not any(line.startswith("temperature:") for line in lines)
    assert_one_line_error(cli(capsys, "list", "no-such"), "unknown scenario 'no-such'")


def test_an_existing_run_file_is_not_overwritten(plugin, tmp_path, capsys, monkeypatch):
    """Issue 13.5: the default output name overwrote an earlier run without a word. Now the run is refused
    (one line, exit 2, the file untouched) unless --overwrite."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "plugin-decay-seed0.h5"
    assert cli(capsys, "run", "plugin-decay", "--quiet").returncode == 0
    before = out.read_bytes()
    again = cli(capsys, "run", "plugin-decay", "--quiet", "--seed", 0, "--set", "records=5")
    assert_one_line_error(again, f"{out.name} exists", "--overwrite")
    assert out.read_bytes() == before
    assert cli(capsys, "run", "plugin-decay", "--quiet", "--set", "records=5", "--overwrite").returncode == 0
    with sgdsim.open(out) as run:
        assert run.params["records"] == 5


def test_output_into_a_closed_pipe_is_not_an_error(tmp_path):
    """Issue 13.6: `sgdsim inspect run.h5 | head -1` ended in a BrokenPipeError traceback. A reader that has
    gone (here: the pipe's read end closed before sgdsim writes) stops sgdsim quietly with 141, as SIGPIPE
    would. main() catches it for every command."""
    run = tmp_path / "r.h5"
    with sgdsim.record(run, lr=0.1) as rec:
        for step in range(50):
            rec.log(step, loss=1.0 / (1 + step))
    proc = subprocess.Popen([*CLI, "inspect", run], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_runs_too_large_for_the_machine_are_refused_before_allocating(plugin, tmp_path, capsys):
    """Issue 13.2: a run whose estimate (Scenario.estimate) exceeds the available memory, the free disk, or
    --max-memory / --max-output is refused in one line, exit 2, before anything is allocated or written."""
    huge = cli(capsys, "run", "plugin-decay", "--set", "records=100000000000", "--out", tmp_path / "a.h5")
    assert_one_line_error(huge, "plugin-decay needs about 2.2 TiB of memory", "available")
    limited = cli(capsys, "run", "plugin-decay", "--set", "records=100000", "--max-output", "1M",
                  "--out", tmp_path / "b.h5")
    assert_one_line_error(limited, "would write about 2.3 MiB, more than the 1.0 MiB allowed by --max-output")
    memory = cli(capsys, "run", "plugin-decay", "--set", "records=100000", "--max-memory", "0.5M",
                 "--out", tmp_path / "c.h5")
    assert_one_line_error(memory, "more than the 512.0 KiB allowed by --max-memory")
    assert_one_line_error(cli(capsys, "run", "plugin-decay", "--max-memory", "lots"),
                          "--max-memory must be a size such as 500M")
    assert not list(tmp_path.iterdir())
    assert cli(capsys, "run", "plugin-decay", "--set", "records=1000", "--max-output", "1M", "--quiet",
               "--no-plot", "--out", tmp_path / "d.h5").returncode == 0


def test_an_allocation_too_large_is_one_line_and_exit_2(tmp_path, capsys):
    """Issue 13.2: `--set particles=1000000000000` ended in an _ArrayMemoryError traceback with exit 1."""
    result = cli(capsys, "run", "double-well", "--set", "particles=1000000000000", "--out", tmp_path / "x.h5")
    assert_one_line_error(result, "memory")


def test_the_main_job_refuses_a_billion_recorded_steps(capsys):
    """Issue 13.2 as reported: steps=1e9 with record_every=1 reached 15.8 GB before the first step and would
    have written ~8 TB: refused before anything is allocated, from the scenario's estimate."""
    assert get_scenario("double-well").estimate is not None
    result = cli(capsys, "run", "double-well", "--set", "steps=1000000000", "record_every=1")
    assert_one_line_error(result, "double-well")


def test_a_diverged_run_says_what_it_reached_and_prints_nothing_non_finite(plugin, tmp_path, capsys):
    """Issue 13.3 (the generic part): the CLI says how far a diverged run got, inspect says it too, and no
    number computed from non-finite data is printed (nan/inf show as n/a)."""
    out = tmp_path / "d.h5"
    result = cli(capsys, "run", "plugin-decay", "--set", "diverge_at=7", "--out", out)
    assert result.returncode == 1
    assert result.stderr.strip() == ("sgdsim: run diverged: signal became non-finite at step 7; reached step 7 "
                                     "(t = 0.7); recorded values are finite only before step 7")
    inspect = cli(capsys, "inspect", out)
    assert "reached   reached step 7 (t = 0.7); recorded values are finite only before step 7" in inspect.stdout
    with h5py.File(out, "a") as f:
        f["comparison"].attrs["residual_mean"] = np.nan
    inspect = cli(capsys, "inspect", out)
    assert "residual_mean = n/a" in inspect.stdout
    assert not any(word in (result.stdout + inspect.stdout).lower() for word in ("nan", "inf"))


def test_summaries_print_the_digits_the_standard_error_shows(plugin, tmp_path, capsys):
    """Issue 13.4 (the generic part): with a tiny standard error the verdict table shows its digits instead
    of '+- 0.000'."""
    result = cli(capsys, "run", "plugin-decay", "--set", "noise=0.00001", "records=100", "--no-plot",
                 "--out", tmp_path / "p.h5")
    assert result.returncode == 0, result.stderr
    assert "+- 0.0000010" in result.stdout and "+- 0.000 " not in result.stdout
