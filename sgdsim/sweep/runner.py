"""Sweeps: one scenario over a grid of parameters and replicates, one run file per task, on any
`concurrent.futures.Executor` (serial, a local process pool, or Dask), resumable and fault tolerant.

A sweep folder holds

    manifest.json       the spec (scenario, preset, fixed overrides, grid, replicates, root seed), versions,
                        the task list (id, index, swept params, replicate, seed) and each task's state
    runs/<task-id>.h5   one run file per task, written exactly as `sgdsim run` writes it
    sweep.h5            external links /runs/<task-id> and a summary table (`sweep.summary`), rebuildable
    .lock               flock-ed by the driver working on the folder (one at a time)

Tasks. A task is (scenario, resolved parameters, replicate r). Its id is the first 16 hex digits of the
SHA-256 of the canonical JSON {"params", "replicate", "scenario"} (sorted keys, compact separators, values
typed by `Scenario.resolve`), so the same run has the same file name in every sweep. The task index is
i = r * G + g, where g is the row-major position of the grid point in the product of the swept parameters
taken in name order, each with its values sorted ascending, and G the number of grid points (replicates
outermost, so raising --replicates keeps every earlier seed). Task i runs with seed
`SeedSequence(root, spawn_key=(i,)).generate_state(1, uint64)[0] >> 1` (in [0, 2**63), the CLI's range).

Faults. A run file appears under its final name only when its writer closed (RunWriter renames
``<id>.h5.partial``). A task that raises is recorded as failed with its one-line message and the sweep goes
on. Resuming lists the finished run files (status complete or diverged), removes stale ``.partial`` files
and submits the rest (failed ones included). Under Dask a task whose worker dies is rescheduled by the
scheduler (and `retries` covers errors outside the task), and its rerun overwrites the dead worker's
``.partial``.

Workers die with their driver. The process-pool workers sgdsim starts ignore SIGINT (a Ctrl-C reaches the
whole process group: the driver alone handles it, stops the workers and records what finished; `--resume`
continues), ask the kernel to SIGKILL them when the driver dies (Linux PR_SET_PDEATHSIG) and, everywhere,
poll their parent's pid and exit when it changes, so a driver killed with SIGKILL leaves no worker (nor the
multiprocessing resource tracker, which ends once no process holds its pipe).

Workers run one Numba thread each (NUMBA_NUM_THREADS=1 in the environment of the worker processes sgdsim
starts, and `numba.set_num_threads(1)` inside each task for workers it does not start) and only a task's
(id, status, message) travels back to the driver; trajectories stay in the run files.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import itertools
import json
import os
import sys
import time
from concurrent.futures import Executor, Future, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from ..errors import ParameterError, RunFileError
from ..io.runread import open_run
from ..scenario import get_scenario
from .executors import DASK_RETRIES, SerialExecutor, dask_local_cluster, open_executor

__all__ = ["SweepSpec", "Task", "SweepResult", "make_spec", "parse_grid", "make_tasks", "task_id", "task_seed",
           "run_task", "run_sweep", "open_executor", "dask_local_cluster", "SerialExecutor", "load_manifest",
           "FINISHED", "DASK_RETRIES"]

MANIFEST, RUNS, SUMMARY = "manifest.json", "runs", "sweep.h5"
FORMAT = "sgdsim-sweep/1"
FINISHED = ("complete", "diverged")  # a run file with one of these statuses is not rerun on --resume
_MANIFEST_EVERY = 2.0                 # seconds between manifest rewrites while tasks finish


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs: every value typed and checked by the scenario's own parameters."""
    scenario: str
    grid: dict[str, list]            # swept parameter -> sorted distinct values
    fixed: dict[str, Any] = field(default_factory=dict)   # overrides shared by every task
    preset: str | None = None
    replicates: int = 1
    seed: int = 0                    # root seed

    def to_json(self) -> dict:
        return {"scenario": self.scenario, "preset": self.preset, "fixed": dict(sorted(self.fixed.items())),
                "grid": dict(sorted(self.grid.items())), "replicates": self.replicates, "seed": self.seed}


@dataclass(frozen=True)
class Task:
    index: int
    id: str
    replicate: int
    seed: int
    point: dict    # the swept values
    params: dict   # every parameter, resolved

    def path(self, directory: str | os.PathLike) -> Path:
        return Path(directory) / RUNS / f"{self.id}.h5"


@dataclass
class SweepResult:
    directory: Path
    tasks: list[Task]
    states: dict[str, dict]   # task id -> {"state": pending|complete|diverged|failed, "message": str}

    def count(self, state: str) -> int:
        return sum(s["state"] == state for s in self.states.values())

    @property
    def unfinished(self) -> list[Task]:
        """Tasks that did not complete (diverged, failed, or never ran)."""
        return [t for t in self.tasks if self.states[t.id]["state"] != "complete"]

    def report(self, limit: int = 20) -> list[str]:
        """One line of counts, then one line per task that did not complete."""
        counts = ", ".join(f"{self.count(s)} {s}" for s in ("complete", "diverged", "failed", "pending")
                           if self.count(s))
        lines = [f"sweep: {len(self.tasks)} runs: {counts}   ({self.directory / SUMMARY})"]
        bad = self.unfinished
        for t in bad[:limit]:
            s = self.states[t.id]
            point = " ".join(f"{k}={v}" for k, v in t.point.items())
            lines.append(f"  {s['state']}: {t.id} ({point} replicate={t.replicate}): {s['message']}")
        if len(bad) > limit:
            lines.append(f"  ... and {len(bad) - limit} more (see {self.directory / MANIFEST})")
        return lines


# ---------------------------------------------------------------------------------------------- spec, tasks

def parse_grid(pairs: list[str]) -> dict[str, list[str]]:
    """CLI --grid KEY=V1,V2,... -> {key: [value strings]}; malformed or empty entries raise ParameterError."""
    grid: dict[str, list[str]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"--grid takes KEY=V1,V2,..., got {pair!r}")
        if key in grid:
            raise ParameterError(f"--grid {key} is given twice")
        items = [v.strip() for v in values.split(",")]
        if items == [""]:
            raise ParameterError(f"--grid {key}: empty list of values")
        if "" in items:
            raise ParameterError(f"--grid {key}: empty value in {values!r}")
        grid[key] = items
    return grid


def make_spec(scenario: str, grid: dict[str, Any], *, fixed: dict | None = None, preset: str | None = None,
              replicates: int = 1, seed: int = 0) -> SweepSpec:
    """Check and type a sweep: grid values (lists, or comma-separated strings) and fixed overrides go through
    the scenario's `Param.convert`, so an unknown key, an empty list or a wrong type or range raises a
    one-line ParameterError before anything runs. Every task is resolved here too (`make_tasks`)."""
    sc = get_scenario(scenario)
    typed_grid = {}
    for key, values in grid.items():
        param = sc.param(key)
        if isinstance(values, str):
            values = parse_grid([f"{key}={values}"])[key]
        values = list(values)
        if not values:
            raise ParameterError(f"--grid {key}: empty list of values")
        converted = [param.convert(v) for v in values]
        if len(set(converted)) != len(converted):
            raise ParameterError(f"--grid {key}: duplicate values in {', '.join(map(str, converted))}")
        typed_grid[param.name] = sorted(converted)
    fixed_typed = {}
    for key, value in (fixed or {}).items():
        param = sc.param(key)
        if param.name in typed_grid:
            raise ParameterError(f"parameter {key} is both swept (--grid) and fixed (--set)")
        fixed_typed[param.name] = param.convert(value)
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise ParameterError(f"--replicates must be an integer >= 1, got {replicates!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ParameterError(f"--seed must be in [0, 2**63), got {seed!r}")
    spec = SweepSpec(sc.name, dict(sorted(typed_grid.items())), dict(sorted(fixed_typed.items())), preset,
                     replicates, seed)
    make_tasks(spec)  # resolve (and so validate) every grid point now
    return spec


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def task_id(scenario: str, params: dict, replicate: int) -> str:
    """First 16 hex digits of SHA-256 of the canonical JSON of (scenario, resolved params, replicate)."""
    text = canonical_json({"scenario": scenario, "params": params, "replicate": int(replicate)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def task_seed(root: int, index: int) -> int:
    """The seed of task `index`: SeedSequence(root, spawn_key=(index,)), 64 bits shifted into [0, 2**63)."""
    state = np.random.SeedSequence(root, spawn_key=(index,)).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def make_tasks(spec: SweepSpec) -> list[Task]:
    """Every task in canonical order (index i = replicate * G + grid position; see the module docstring)."""
    sc = get_scenario(spec.scenario)
    keys = sorted(spec.grid)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*(spec.grid[k] for k in keys))]
    resolved = [sc.resolve({**spec.fixed, **point}, spec.preset) for point in points]
    tasks = []
    for r in range(spec.replicates):
        for g, (point, params) in enumerate(zip(points, resolved)):
            i = r * len(points) + g
            tasks.append(Task(i, task_id(sc.name, params, r), r, task_seed(spec.seed, i), point, params))
    return tasks


# ---------------------------------------------------------------------------------------------- one task

def run_task(scenario: str, params: dict, seed: int, path: str, numba_threads: int | None = None
             ) -> tuple[str, str]:
    """Run one task where it lands (any worker) and write its run file; return only (status, message).
    Exceptions become status "failed" with a one-line message (the run file, if it was started, says so too)."""
    try:
        if numba_threads:
            import numba
            numba.set_num_threads(numba_threads)
        status, message, _ = get_scenario(scenario).write_run(params, seed, path, progress=False)
        return status, message
    except Exception as e:  # noqa: BLE001 -- any error of one task is recorded, the sweep goes on
        return "failed", one_line(e)


def one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


# ---------------------------------------------------------------------------------------------- executors

def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("sgdsim", "numpy", "numba", "h5py", "dask", "distributed"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def load_manifest(directory: str | os.PathLike) -> dict:
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunFileError(f"{directory}: not a sweep folder (no {MANIFEST})") from None
    except (OSError, ValueError) as e:
        raise RunFileError(f"{path}: unreadable manifest ({one_line(e)})") from None
    if manifest.get("format") != FORMAT:
        raise RunFileError(f"{path}: not an sgdsim sweep manifest (format {manifest.get('format')!r})")
    return manifest


def _write_manifest(directory: Path, spec: SweepSpec, tasks: list[Task], states: dict, versions: dict) -> None:
    manifest = {"format": FORMAT, "spec": spec.to_json(), "versions": versions,
                "task_order": "index = replicate * G + row-major position in the grid (keys by name, values "
                              "sorted); seed = SeedSequence(root, spawn_key=(index,)) 64 bits >> 1",
                "tasks": [{"id": t.id, "index": t.index, "params": t.point, "replicate": t.replicate,
                           "seed": t.seed, **states[t.id]} for t in tasks]}
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=False, allow_nan=False))
    os.replace(tmp, directory / MANIFEST)


def _spec_difference(old: dict, new: dict) -> str | None:
    for key in new:
        if old.get(key) != new[key]:
            return f"{key} {old.get(key)!r} != {new[key]!r}"
    return None


def _finished_state(path: Path) -> dict | None:
    """State of a run file that ended (complete or diverged), None if absent, unreadable or failed."""
    if not path.exists():
        return None
    try:
        with open_run(path) as run:
            status, message = run.status, run.message
    except RunFileError:
        return None
    return {"state": status, "message": message} if status in FINISHED else None


# ---------------------------------------------------------------------------------------------- the sweep

@contextlib.contextmanager
def _driver_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on <dir>/.lock while a driver works on the folder (released by the kernel if
    the driver dies); a second driver gets a one-line error. Filesystems without flock are not locked."""
    import fcntl
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ParameterError(f"another sweep driver is working on {directory}") from None
        except OSError:
            pass  # no locks on this filesystem
        yield


def run_sweep(spec: SweepSpec, directory: str | os.PathLike, executor: Executor | None = None, *,
              resume: bool = False, progress: bool = True, numba_threads: int | None = None) -> SweepResult:
    """Run every task of `spec` not yet finished in `directory` on `executor` (serial if None), record each
    outcome in the manifest, and (re)build sweep.h5. A folder already holding a sweep needs resume=True and
    the same spec. `numba_threads` is set inside each task (1 on workers; None keeps the process's)."""
    directory = Path(directory)
    with _driver_lock(directory):
        return _run_sweep(spec, directory, executor, resume, progress, numba_threads)


def _run_sweep(spec: SweepSpec, directory: Path, executor: Executor | None, resume: bool, progress: bool,
               numba_threads: int | None) -> SweepResult:
    from .summary import rebuild_summary
    tasks = make_tasks(spec)
    versions = _versions()
    if (directory / MANIFEST).exists():
        old = load_manifest(directory)
        if not resume:
            raise ParameterError(f"{directory} already holds a sweep: pass --resume to continue it, "
                                 f"or choose another --out")
        diff = _spec_difference(old["spec"], json.loads(json.dumps(spec.to_json())))
        if diff:
            raise ParameterError(f"--resume: {directory} holds a different sweep ({diff})")
        versions = old.get("versions", versions)
    (directory / RUNS).mkdir(parents=True, exist_ok=True)
    for stale in (directory / RUNS).glob("*.partial"):  # left by a killed run; no writer is alive now
        stale.unlink()
    states = {t.id: (_finished_state(t.path(directory)) if resume else None) or {"state": "pending", "message": ""}
              for t in tasks}
    todo = [t for t in tasks if states[t.id]["state"] == "pending"]
    _write_manifest(directory, spec, tasks, states, versions)
    executor = executor or SerialExecutor()
    last_write = time.monotonic()
    futures: dict[Future, Task] = {}

    def finish(future: Future) -> None:
        nonlocal last_write
        task = futures.pop(future)
        try:
            status, message = future.result()
        except Exception as e:  # noqa: BLE001 -- e.g. a Dask KilledWorker or a broken process pool
            status, message = "failed", one_line(e)
        states[task.id] = {"state": status, "message": message}
        bar.update()
        if time.monotonic() - last_write > _MANIFEST_EVERY:
            _write_manifest(directory, spec, tasks, states, versions)
            last_write = time.monotonic()

    with tqdm(total=len(tasks), initial=len(tasks) - len(todo), disable=None if progress else True,
              unit="run", desc=spec.scenario) as bar:
        try:
            for task in todo:
                future = executor.submit(run_task, spec.scenario, task.params, task.seed,
                                         str(task.path(directory)), numba_threads)
                futures[future] = task
                if future.done():  # the serial executor: report as we go
                    finish(future)
            for future in as_completed(list(futures)):
                finish(future)
        finally:
            for future in futures:
                future.cancel()
            _write_manifest(directory, spec, tasks, states, versions)
    rebuild_summary(directory)
    return SweepResult(directory, tasks, states)
