"""Sweeps on a 2-worker Dask LocalCluster: the same run files as the serial engine (through the CLI on the
cluster's scheduler), and a worker killed with SIGKILL mid-task: the task is rerun elsewhere, the sweep
completes, no partial file is left, and the files equal the serial ones."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sweep_helpers import CLI_ARGS, N_TASKS, assert_same_runs, spec

from sgdsim.cli import main
from sgdsim.sweep.runner import DASK_RETRIES, dask_local_cluster, load_manifest, run_sweep

distributed = pytest.importorskip("distributed")  # a guard only: CI installs the cluster extra


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference, run in this process first (which also warms the Numba cache for the workers)."""
    out = tmp_path_factory.mktemp("serial")
    assert run_sweep(spec(), out, progress=False).count("complete") == N_TASKS
    return out


@pytest.fixture(scope="module")
def client(serial):
    with dask_local_cluster(2) as cluster, distributed.Client(cluster) as c:
        yield c


def test_worker_environment(client):
    threads = client.run(lambda: __import__("numba").config.NUMBA_NUM_THREADS)
    assert len(threads) == 2 and set(threads.values()) == {1}


def test_dask_gives_the_same_run_files_as_serial(serial, client, tmp_path, capsys):
    args = ["sweep", *CLI_ARGS, "--out", str(tmp_path), "--engine", "dask", "--scheduler", client.scheduler.address]
    assert main(args) == 0
    assert f"sweep: {N_TASKS} runs: {N_TASKS} complete" in capsys.readouterr().out
    assert_same_runs(serial, tmp_path)


def test_killed_worker_task_is_rerun_and_leaves_no_partial_file(serial, client, tmp_path):
    killed = {}

    def kill_a_busy_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy and list(tmp_path.glob("runs/*.partial")):  # a task is writing its run file
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                killed["pid"], killed["finished_before"] = pid, len(list(tmp_path.glob("runs/*.h5")))
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    executor = client.get_executor(pure=False, retries=DASK_RETRIES)
    result = run_sweep(spec(), tmp_path, executor, progress=False, numba_threads=1)
    killer.join()
    assert "pid" in killed and killed["finished_before"] < N_TASKS  # the kill landed mid-sweep, on a busy worker
    assert result.count("complete") == N_TASKS, result.report()
    assert [t["state"] for t in load_manifest(tmp_path)["tasks"]] == ["complete"] * N_TASKS
    assert not list(tmp_path.glob("runs/*.partial"))
    assert killed["pid"] not in client.run(os.getpid).values()
    assert_same_runs(serial, tmp_path)


def test_the_drivers_environment_is_left_as_it_was():
    """Dask's Nanny writes pre-spawn-environ into the driver's os.environ; the local cluster undoes it, so the
    driver's Numba never sees NUMBA_NUM_THREADS=1 (it re-reads it at every compilation)."""
    before = dict(os.environ)
    with dask_local_cluster(1):
        pass
    assert dict(os.environ) == before
