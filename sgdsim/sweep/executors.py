"""Where the tasks of a sweep run: in this process (`SerialExecutor`), on a local process pool whose workers die
with their driver and ignore Ctrl-C (the driver handles it), or on a Dask cluster (`open_executor`,
`dask_local_cluster`); and the environment each worker gets (one Numba thread, node-local Numba cache, no
HDF5 file locking on network filesystems)."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Iterator

from ..errors import ParameterError

__all__ = ["SerialExecutor", "open_executor", "dask_local_cluster", "worker_environment", "pool_worker_init",
           "DASK_RETRIES"]

DASK_RETRIES = 2                      # resubmissions of a Dask task that raised outside `run_task`

class SerialExecutor(Executor):
    """Runs each call in this process when it is submitted (the local engine with one worker)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 -- handed back through the future, as any executor does
            future.set_exception(e)
        return future


def worker_environment(numba_cache_dir: str | None = None) -> dict[str, str]:
    """Environment of the worker processes sgdsim starts: one Numba thread, and the Numba cache directory
    (node-local disk) when given; otherwise workers inherit NUMBA_CACHE_DIR (or Numba's default) from the
    driver. HDF5_USE_FILE_LOCKING is inherited: set it to FALSE on network filesystems without locks."""
    env = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    if numba_cache_dir:
        env["NUMBA_CACHE_DIR"] = str(Path(numba_cache_dir).expanduser())
    return env


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """Set variables in os.environ (inherited by processes started meanwhile), then restore them."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


WATCHDOG_SECONDS = 0.5   # how often a pool worker checks that its driver is alive
_PR_SET_PDEATHSIG = 1


def _die_with(driver: int) -> None:
    """Exit this (worker) process when process `driver`, its parent, dies: PR_SET_PDEATHSIG on Linux, and a
    daemon thread polling os.getppid() (a dead parent's children are re-parented) on every platform."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the watchdog below does it
    if os.getppid() != driver:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)
    threading.Thread(target=watch, name="sgdsim-driver-watchdog", daemon=True).start()


def pool_worker_init(driver: int) -> None:
    """Initializer of the process-pool workers: one Numba thread, ignore SIGINT (the driver handles Ctrl-C)
    and die with the driver (`_die_with`)."""
    import numba
    numba.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(driver)


@contextlib.contextmanager
def _stopping_workers_on_error(pool) -> Iterator[None]:
    """If the driver stops (Ctrl-C, an error), cancel what has not started and terminate the workers now
    instead of waiting for their running tasks (whose `.partial` files `--resume` removes)."""
    import multiprocessing
    try:
        yield
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():
            child.terminate()
        raise


@contextlib.contextmanager
def open_executor(engine: str = "local", workers: int | None = None, scheduler: str | None = None,
                  numba_cache_dir: str | None = None) -> Iterator[tuple[Executor, int | None]]:
    """(executor, Numba threads per task) for an engine: "local" = serial in this process for one worker,
    else a process pool (spawned workers, one Numba thread each); "dask" = a dask.distributed Client on
    `scheduler` (workers configured by whoever started them, see docs/cluster.md) or on a LocalCluster of
    `workers` single-threaded processes. Dask tasks are submitted with retries and pure=False."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ParameterError(f"--workers must be at least 1, got {workers}")
    if engine == "local":
        if scheduler:
            raise ParameterError("--scheduler needs --engine dask")
        if workers == 1:
            yield SerialExecutor(), None
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        # the spawned workers inherit this environment; NUMBA_NUM_THREADS stays out of it, since Numba in this
        # process re-reads it at every compilation and refuses a value other than its running thread pool's
        # (the workers take one thread in `pool_worker_init`)
        env = {k: v for k, v in worker_environment(numba_cache_dir).items() if k != "NUMBA_NUM_THREADS"}
        with _environ(env), \
                ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=pool_worker_init, initargs=(os.getpid(),)) as pool, \
                _stopping_workers_on_error(pool):
            yield pool, 1
        return
    if engine != "dask":
        raise ParameterError(f"unknown engine {engine!r} (valid: local, dask)")
    try:
        from distributed import Client
    except ImportError:
        raise ParameterError("the dask engine needs dask.distributed: pip install 'sgdsim[cluster]'") from None
    if scheduler and numba_cache_dir:
        raise ParameterError("--numba-cache-dir applies to workers sgdsim starts; with --scheduler set "
                             "NUMBA_CACHE_DIR in the workers' environment (docs/cluster.md)")
    if scheduler:
        with Client(scheduler) as client:
            yield client.get_executor(pure=False, retries=DASK_RETRIES), 1
        return
    with dask_local_cluster(workers, numba_cache_dir) as cluster, Client(cluster) as client:
        yield client.get_executor(pure=False, retries=DASK_RETRIES), 1


@contextlib.contextmanager
def dask_local_cluster(workers: int, numba_cache_dir: str | None = None):
    """A Dask LocalCluster of `workers` single-threaded worker processes with `worker_environment` set
    before they spawn (as `distributed.nanny.pre-spawn-environ`: a spawned worker re-imports the driver's
    main module, hence sgdsim and Numba, before Nanny's `env=` would apply)."""
    import logging

    import dask
    from distributed import LocalCluster
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **worker_environment(numba_cache_dir)}
    # Dask's Nanny puts pre-spawn-environ into this process's os.environ before it spawns a worker and leaves
    # it there; NUMBA_NUM_THREADS=1 left behind would make Numba here refuse to compile once its thread pool
    # runs with another count (Numba re-reads the variable at every compilation). Put the driver's back.
    with _kept_environ(), dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    with _kept_environ(), cluster:
        yield cluster


@contextlib.contextmanager
def _kept_environ() -> Iterator[None]:
    """Whatever the block does to os.environ is undone when it ends."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


# ---------------------------------------------------------------------------------------------- manifest
