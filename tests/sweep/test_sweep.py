"""Sweeps on the local engines: task ids and seeds from their definitions, bad grids (one line, exit 2), the
serial and process-pool engines giving the same run files, the manifest and sweep.h5 against the run files,
a failing task reported while the rest complete, resume rules, and a driver killed with SIGKILL then
resumed giving the same files as an uninterrupted sweep."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from sweep_helpers import CLI_ARGS, FIXED, N_TASKS, REPLICATES, assert_same_runs, spec

import sgdsim
from sgdsim.cli import main
from sgdsim.sweep.runner import load_manifest, make_spec, make_tasks, open_executor, run_sweep
from sgdsim.sweep.summary import read_summary, rebuild_summary


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: the sweep run serially in this process (which also warms the Numba cache for the
    worker processes of the other engines)."""
    out = tmp_path_factory.mktemp("serial")
    result = run_sweep(spec(), out, progress=False)
    assert result.count("complete") == N_TASKS, result.report()
    return out


def test_task_ids_seeds_and_canonical_order():
    tasks = make_tasks(make_spec("double-well", {"lr": "0.02,0.05", "batch": "1,2"}, fixed=FIXED, replicates=2,
                                 seed=7))
    assert [t.index for t in tasks] == list(range(8))
    # replicates outermost; inside, the grid in row-major order of the sorted keys (batch, lr), values sorted
    assert [(t.replicate, t.point["batch"], t.point["lr"]) for t in tasks] == \
        [(r, b, lr) for r in range(2) for b in (1, 2) for lr in (0.02, 0.05)]
    for t in tasks:
        assert t.params == {**sgdsim.scenario.get_scenario("double-well").resolve({}), **FIXED, **t.point}
        text = json.dumps({"params": t.params, "replicate": t.replicate, "scenario": "double-well"},
                          sort_keys=True, separators=(",", ":"))
        assert t.id == hashlib.sha256(text.encode()).hexdigest()[:16]
        state = np.random.SeedSequence(7, spawn_key=(t.index,)).generate_state(1, np.uint64)[0]
        assert t.seed == int(state) // 2 and 0 <= t.seed < 2 ** 63
    assert len({t.id for t in tasks}) == len({t.seed for t in tasks}) == 8
    # ids name runs, not sweeps: the root seed and the order the values are typed in do not change them
    reordered = make_tasks(make_spec("double-well", {"lr": [0.05, 0.02], "batch": "2,1"}, fixed=FIXED,
                                     replicates=2, seed=8))
    assert {t.id for t in reordered} == {t.id for t in tasks}


@pytest.mark.parametrize("grid, fragment", [
    (["nosuch=1,2"], "unknown parameter 'nosuch' for double-well"),
    (["lr="], "--grid lr: empty list of values"),
    (["lr=0.1,,0.2"], "--grid lr: empty value"),
    (["lr=0.1,fast"], "parameter lr must be a number, got 'fast'"),
    (["batch=1,2.5"], "parameter batch must be an integer, got '2.5'"),
    (["lr=0.1,-0.2"], "parameter lr must be positive"),
    (["lr=0.1,0.10"], "--grid lr: duplicate values"),
    (["lr"], "--grid takes KEY=V1,V2,..., got 'lr'"),
    (["lr=0.1", "lr=0.2"], "--grid lr is given twice"),
    (["particles=10,20"], "parameter particles is both swept (--grid) and fixed (--set)"),
    (["lr=0.1", "--replicates", "0"], "--replicates must be an integer >= 1"),
])
def test_bad_grids_are_one_line_errors(tmp_path, capsys, grid, fragment):
    out = tmp_path / "sweep"
    code = main(["sweep", "double-well", "--set", "particles=10", "--out", str(out), "--grid", *grid])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("sgdsim: error: ") and err.count("\n") == 1 and fragment in err, err
    assert not out.exists()  # nothing ran


@pytest.mark.parametrize("options, fragment", [
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --engine dask"),
    (["--engine", "dask", "--scheduler", "tcp://127.0.0.1:1", "--numba-cache-dir", "/tmp/x"],
     "--numba-cache-dir applies to workers sgdsim starts"),
    (["--engine", "spark"], "argument --engine: invalid choice: 'spark'"),
])
def test_bad_engine_options_are_one_line_errors(tmp_path, capsys, options, fragment):
    assert main(["sweep", *CLI_ARGS, "--out", str(tmp_path / "s"), *options]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "s").exists()


def test_manifest_and_summary_match_the_run_files(serial, tmp_path, monkeypatch):
    manifest = load_manifest(serial)
    assert manifest["spec"] == {"scenario": "double-well", "preset": None, "fixed": FIXED,
                                "grid": {"lr": [0.02, 0.05]}, "replicates": REPLICATES, "seed": 0}
    assert manifest["versions"]["sgdsim"] == sgdsim.__version__
    tasks = make_tasks(spec())
    assert [(t["id"], t["index"], t["seed"], t["state"]) for t in manifest["tasks"]] == \
        [(t.id, t.index, t.seed, "complete") for t in tasks]
    monkeypatch.chdir(tmp_path)  # external links resolve relative to sweep.h5, not the working directory
    with h5py.File(serial / "sweep.h5", "r") as f:
        assert sorted(f["runs"]) == sorted(t.id for t in tasks)
        for t in tasks:
            assert f["runs"][t.id]["parameters"].attrs["seed"] == t.seed
    table = read_summary(serial)
    assert list(table.task_id) == [t.id for t in tasks] and list(table.seed) == [t.seed for t in tasks]
    assert list(table.params["lr"]) == [t.point["lr"] for t in tasks]
    assert table.params["lr"].dtype == np.float64 and set(table.status) == {"complete"}
    for i, t in enumerate(tasks):
        with sgdsim.open(serial / "runs" / f"{t.id}.h5") as run:
            assert run.seed == t.seed and run.params == t.params
            numeric = {k: v for k, v in run.comparison.items() if isinstance(v, (int, float))}
        assert numeric and {k: table.metrics[k][i] for k in numeric} == numeric
    # rebuildable at any time, to the same table
    (serial / "sweep.h5").unlink()
    rebuild_summary(serial)
    again = read_summary(serial)
    assert all(np.array_equal(again.metrics[k], table.metrics[k]) for k in table.metrics)
    # `sgdsim plot DIR` draws the sweep figure
    assert main(["plot", str(serial), "--out", str(tmp_path / "sweep.png")]) == 0
    assert (tmp_path / "sweep.png").stat().st_size > 10_000


def test_process_pool_gives_the_same_run_files(serial, tmp_path):
    with open_executor("local", workers=2) as (executor, threads):
        result = run_sweep(spec(), tmp_path, executor, progress=False, numba_threads=threads)
    assert result.count("complete") == N_TASKS
    assert_same_runs(serial, tmp_path)


def test_failing_task_is_reported_and_the_rest_complete(tmp_path, capsys):
    # examples=2 drawn without replacement (B=2) has no gradient noise: the scenario's PDE at T = 0 raises
    args = ["sweep", "double-well", "--grid", "replace=true,false", "lr=0.02,5", "--out", str(tmp_path),
            "--workers", "1", "--quiet", "--set", "particles=50", "steps=40", "record_every=40", "bins=10",
            "examples=2", "batch=2"]
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and sum("failed:" in line and "temperature 0.0" in line for line in err) == 2
    assert sum("diverged:" in line and "replace=True" in line and "lr=5.0" in line for line in err) == 1
    states = {(t["params"]["replace"], t["params"]["lr"]): (t["state"], t["message"])
              for t in load_manifest(tmp_path)["tasks"]}
    assert states[(True, 0.02)] == ("complete", "")
    assert states[(True, 5.0)][0] == "diverged" and "diverged at step" in states[(True, 5.0)][1]
    for lr in (0.02, 5.0):
        assert states[(False, lr)][0] == "failed" and "ParameterError" in states[(False, lr)][1]
    table = read_summary(tmp_path)
    assert sorted(table.status) == ["complete", "diverged", "failed", "failed"]
    failed = table.status == "failed"
    assert all(np.isnan(table.metrics[k][failed]).all() for k in table.metrics)
    # resume reruns only what did not finish (the failures), and the finished files stay untouched
    done = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}
    assert main(args + ["--resume"]) == 1
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}
    finished = {t["id"] for t in load_manifest(tmp_path)["tasks"] if t["state"] != "failed"}
    assert len(finished) == 2 and all(after[f"{i}.h5"] == done[f"{i}.h5"] for i in finished)
    assert sum(after[n] != done[n] for n in done) == 2


def test_resume_rules(serial, capsys):
    base = ["sweep", *CLI_ARGS, "--out", str(serial), "--workers", "1", "--quiet"]
    assert main(base) == 2
    assert "already holds a sweep: pass --resume" in capsys.readouterr().err
    assert main([*base, "--resume", "--seed", "1"]) == 2
    assert "--resume: " in (err := capsys.readouterr().err) and "holds a different sweep (seed 0 != 1)" in err
    with open(serial / ".lock") as held:  # a second driver on the same folder is refused
        fcntl.flock(held, fcntl.LOCK_EX)
        assert main([*base, "--resume"]) == 2
    assert f"another sweep driver is working on {serial}" in capsys.readouterr().err
    before = {p: p.stat().st_mtime_ns for p in (serial / "runs").iterdir()}
    assert main([*base, "--resume"]) == 0  # all finished: nothing reruns
    assert {p: p.stat().st_mtime_ns for p in (serial / "runs").iterdir()} == before


def test_driver_killed_then_resumed_gives_the_uninterrupted_files(serial, tmp_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "sgdsim.cli", "sweep", *CLI_ARGS, "--out", str(out), "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not list(out.glob("runs/*.h5")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    finished = list(out.glob("runs/*.h5"))
    assert 1 <= len(finished) < N_TASKS  # killed mid-sweep
    assert main(["sweep", *CLI_ARGS, "--out", str(out), "--workers", "1", "--quiet", "--resume"]) == 0
    assert not list(out.glob("runs/*.partial"))
    assert_same_runs(serial, out)
    assert [t["state"] for t in load_manifest(out)["tasks"]] == ["complete"] * N_TASKS


# ------------------------------------------------------------------ issues 11.3, 13.7, 13.8, 13.11
# On the test plug-in's scenario plugin-decay (tests/plugins/theory_plugin): tasks of milliseconds, or of a
# chosen length (sleep), with a claim that holds for bias 0 and fails for bias 1.

from figure_helpers import figures, legend_problems  # noqa: E402,F401  (fixture)
from cli_helpers import CLI  # noqa: E402
from plugin_helpers import plugin, plugin_site  # noqa: E402,F401  (fixtures)

PLUGIN_GRID = {"bias": [0.0, 1.0], "diverge_at": [-1, 3]}


@pytest.fixture
def plugin_sweep(plugin, tmp_path):
    """bias 0 / 1 x diverge_at none / 3, 3 replicates, serial: 12 runs, the diverged ones without claims."""
    out = tmp_path / "sweep"
    result = run_sweep(make_spec("plugin-decay", PLUGIN_GRID, replicates=3), out, progress=False)
    assert result.count("complete") == 6 and result.count("diverged") == 6
    return out


def test_sweep_summary_holds_each_runs_claims(plugin_sweep):
    """Issue 11.3: sweep.h5's summary has per-claim verdicts and measured values, per task."""
    table = read_summary(plugin_sweep)
    c = table.claims
    assert list(c.names) == ["residual"]
    complete = table.status == "complete"
    np.testing.assert_array_equal(c.met[:, 0], np.where(complete, (table.params["bias"] == 0).astype(int), -1))
    np.testing.assert_array_equal(c.verdict[:, 0], np.where(complete, np.where(table.params["bias"] == 0, "holds",
                                                                                "fails"), ""))
    assert np.all(c.expected[complete, 0] == "holds") and np.all(np.isnan(c.measured[~complete, 0]))
    for i in np.flatnonzero(complete):   # the stored measured value is the run's own
        with sgdsim.open(plugin_sweep / "runs" / f"{table.task_id[i]}.h5") as run:
            assert c.measured[i, 0] == run.claims[0].measured == run.comparison["residual_mean"]
    # bias 1 shifts the mean residual by 1 (noise 0.1 over 20 records: SE 0.022)
    shift = c.measured[complete & (table.params["bias"] == 1), 0] - 1.0
    assert np.all(np.abs(shift) < 4 * 0.1 / np.sqrt(20))


def test_sweep_plot_shows_where_each_claim_held(plugin_sweep, figures):
    """Issue 11.3: `sgdsim plot DIR` draws the fraction of replicates whose claim held against the swept
    parameter; issue 13.11: diverged points are marked and every legend entry has something behind it."""
    assert main(["plot", str(plugin_sweep)]) == 0
    (fig,) = figures
    assert legend_problems(fig) == []
    claim = next(ax for ax in fig.axes if ax.get_title() == "claim residual (expected: holds)")
    (held,) = [c for c in claim.containers if c.get_label() == "diverge_at=-1"]
    np.testing.assert_array_equal(held.lines[0].get_xdata(), [0.0, 1.0])
    np.testing.assert_array_equal(held.lines[0].get_ydata(), [1.0, 0.0])
    marks = [line for line in claim.lines if line.get_label() == "a run diverged"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [0.0, 1.0]
    metric = next(ax for ax in fig.axes if ax.get_title() == "residual_mean")
    assert "theory" not in metric.get_legend_handles_labels()[1]


def test_inspect_a_sweep_folder(plugin_sweep, capsys):
    """Issue 13.8: `sgdsim inspect DIR` (and DIR/sweep.h5) failed; it shows the spec, the task states and the
    claims' pass rates."""
    for target in (plugin_sweep, plugin_sweep / "sweep.h5"):
        assert main(["inspect", str(target)]) == 0
        out = capsys.readouterr().out
        assert "scenario  plugin-decay   preset -   replicates 3   root seed 0" in out
        assert "grid      bias = 0.0, 1.0; diverge_at = -1, 3" in out
        assert "tasks     12: 6 complete, 6 diverged" in out
        assert out.count("  diverged: ") == 6 and "signal became non-finite at step 3" in out
        assert "  residual: 3/6 met   (bias=0.0 diverge_at=-1: 3/3; bias=1.0 diverge_at=-1: 0/3)" in out


def test_sweep_summary_reads_as_labelled_xarray_datasets(plugin_sweep):
    """Issue 13.8: the summary had no dimension scales (xarray gave phony_dim_* and a warning); and, as run
    files (issue 13.1), sweep.h5 opens in the HDF5 1.10 command-line tools."""
    import shutil
    import warnings
    if shutil.which("h5dump"):
        dump = subprocess.run(["h5dump", "-H", str(plugin_sweep / "sweep.h5")], capture_output=True, text=True)
        assert dump.returncode == 0 and "ERROR" not in dump.stdout + dump.stderr and "claim" in dump.stdout
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for group, dims in (("summary", {"task"}), ("summary/params", {"task"}), ("summary/metrics", {"task"}),
                            ("summary/claims", {"task", "claim"})):
            with xr.open_dataset(plugin_sweep / "sweep.h5", engine="h5netcdf", group=group) as ds:
                assert set(ds.dims) == dims, (group, ds.dims)
                if group == "summary/claims":
                    assert ds["verdict"].dims == ("task", "claim") and list(ds["claim"].values) == ["residual"]
                    assert ds["met"].sel(claim="residual").values.tolist().count(1) == 3


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(stat))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids) -> set[int]:
    out = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.add(pid)
        except OSError:
            pass
    return out


def _slow_sweep(out):
    """A process-pool sweep driver of 4 tasks of ~20 s each, started in its own session, once both workers
    are running a task (their .partial files exist); returns (process, its descendants)."""
    cmd = [*CLI, "sweep", "plugin-decay", "--grid", "bias=0,1,2,3", "--set", "sleep=1", "--out", str(out),
           "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("runs/*.partial"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None and len(list(out.glob("runs/*.partial"))) == 2, "the workers never started"
    pids = _descendants(proc.pid)
    assert len(pids) >= 2   # the workers (and multiprocessing's resource tracker)
    return proc, pids


def _gone(pids, seconds=15.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


@contextlib.contextmanager
def _reaped(proc, pids):
    """Whatever the test finds, leave no process behind (SIGKILL the survivors, close the pipes)."""
    try:
        yield
    finally:
        for pid in _alive([proc.pid, *pids]):
            os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()


def test_ctrl_c_stops_a_process_pool_sweep_quietly(plugin, tmp_path):
    """Issue 13.7: Ctrl-C (SIGINT to the whole process group, as a terminal sends it) printed "Exception
    ignored ... KeyboardInterrupt" from every worker. Now the driver alone reacts: one line, exit 130, the
    workers stopped, and --resume finishes the sweep."""
    out = tmp_path / "sweep"
    proc, pids = _slow_sweep(out)
    with _reaped(proc, pids):
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130
        assert err.strip().splitlines()[-1] == (f"sgdsim: sweep interrupted; the finished runs are kept in {out}: "
                                                f"continue with the same command and --resume")
        assert "Exception ignored" not in err and "Traceback" not in err and "KeyboardInterrupt" not in err
        assert _gone(pids) == set()
    assert [t["state"] for t in load_manifest(out)["tasks"]] == ["pending"] * 4


def test_workers_die_with_a_killed_driver(plugin, tmp_path):
    """Issue 13.7: a sweep driver killed with SIGKILL left its pool workers and the resource tracker alive
    indefinitely. They now exit with it (PR_SET_PDEATHSIG, and a watchdog on the parent's pid)."""
    proc, pids = _slow_sweep(tmp_path / "sweep")
    with _reaped(proc, pids):
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        assert _gone(pids) == set()


def test_a_sweep_too_large_for_the_machine_is_refused_before_it_runs(plugin, tmp_path, capsys):
    """Issue 13.2 for sweeps: the runs' estimated output is summed, their memory taken --workers at a time."""
    args = ["sweep", "plugin-decay", "--grid", "records=1000,2000", "--replicates", "2", "--out", str(tmp_path / "s"),
            "--workers", "1", "--quiet"]
    assert main([*args, "--max-output", "100K"]) == 2
    assert capsys.readouterr().err.strip() == (
        "sgdsim: error: plugin-decay (4 runs, 1 at a time) would write about 140.6 KiB, more than the 100.0 KiB "
        "allowed by --max-output; record less often (or raise --max-output)")
    assert main([*args[:-3], "--workers", "2", "--max-memory", "60K", "--quiet"]) == 2
    assert "needs about 93.8 KiB of memory, more than the 60.0 KiB allowed by --max-memory" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert main([*args, "--max-output", "1M"]) == 0


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="Numba's default thread count must differ from 1")
def test_a_process_pool_leaves_the_drivers_numba_able_to_compile():
    """The pool's workers take one Numba thread without the driver's NUMBA_NUM_THREADS changing: Numba re-reads
    it at every compilation and refused to compile after a parallel kernel had started its threads under it."""
    code = ("import numba, numpy as np\n"
            "from sgdsim.sweep.executors import open_executor\n"
            "with open_executor('local', workers=2):\n"
            "    @numba.njit(parallel=True)\n"
            "    def total(x):\n"
            "        s = 0.0\n"
            "        for i in numba.prange(len(x)):\n"
            "            s += x[i]\n"
            "        return s\n"
            "    total(np.ones(10))\n"
            "@numba.njit\n"
            "def plus_one(x):\n"
            "    return x + 1\n"
            "assert plus_one(1) == 2\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
