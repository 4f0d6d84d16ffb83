"""sweep.h5: the index of a sweep folder, rebuilt from manifest.json and the run files at any time.

    /runs/<task-id>            external link to runs/<task-id>.h5 (path relative to the folder), for every
                               task whose run file exists
    /summary/task_id, index, replicate, seed, status, message          one row per task, in task order
    /summary/params/<name>     the swept parameter values (typed: int64, float64, bool or string)
    /summary/metrics/<name>    every numeric /comparison attribute of any run (float64, NaN where absent)
    root attrs                 scenario, spec (JSON), counts per status

`read_summary(dir)` reads it back as plain arrays (rebuilding it if missing).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from numbers import Number
from pathlib import Path

import h5py
import numpy as np

from .errors import RunFileError
from .runfile import _py
from .runread import open_run
from .sweep import MANIFEST, RUNS, SUMMARY, load_manifest

__all__ = ["rebuild_summary", "read_summary", "Summary"]

_STR = h5py.string_dtype()


def _numeric(value) -> bool:
    return isinstance(value, (Number, np.number, np.bool_)) and not isinstance(value, complex)


def _row(directory: Path, task: dict) -> tuple[str, str, dict]:
    """(status, message, numeric metrics) of one task: from its run file when there is one, else the manifest."""
    path = directory / RUNS / f"{task['id']}.h5"
    if path.exists():
        try:
            with open_run(path) as run:
                metrics = {k: float(v) for k, v in run.comparison.items() if _numeric(v)}
                return run.status, run.message, metrics
        except RunFileError as e:
            return "failed", str(e), {}
    return task["state"], task.get("message", ""), {}


def _column(values: list) -> np.ndarray:
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.float64)
    return np.array([str(v) for v in values], dtype=object)


def rebuild_summary(directory: str | os.PathLike) -> Path:
    """Write sweep.h5 (as sweep.h5.tmp, then renamed) from the manifest's task list and the run files."""
    directory = Path(directory)
    manifest = load_manifest(directory)
    tasks = manifest["tasks"]
    rows = [_row(directory, t) for t in tasks]
    metric_names = sorted({k for _, _, m in rows for k in m})
    swept = list(manifest["spec"]["grid"])
    tmp = directory / (SUMMARY + ".tmp")
    with h5py.File(tmp, "w") as f:
        links = f.create_group("runs")
        for t in tasks:
            if (directory / RUNS / f"{t['id']}.h5").exists():
                links[t["id"]] = h5py.ExternalLink(f"{RUNS}/{t['id']}.h5", "/")
        s = f.create_group("summary")
        s["task_id"] = np.array([t["id"] for t in tasks], dtype=object).astype(_STR)
        for col in ("index", "replicate", "seed"):
            s[col] = np.array([t[col] for t in tasks], dtype=np.int64)
        s.create_dataset("status", data=np.array([r[0] for r in rows], dtype=object), dtype=_STR)
        s.create_dataset("message", data=np.array([r[1] for r in rows], dtype=object), dtype=_STR)
        params = s.create_group("params")
        for name in swept:
            col = _column([t["params"][name] for t in tasks])
            params.create_dataset(name, data=col, dtype=_STR if col.dtype == object else col.dtype)
        metrics = s.create_group("metrics")
        for name in metric_names:
            metrics[name] = np.array([r[2].get(name, np.nan) for r in rows], dtype=np.float64)
        f.attrs["scenario"] = manifest["spec"]["scenario"]
        f.attrs["spec"] = json.dumps(manifest["spec"], sort_keys=True)
        for status in ("complete", "diverged", "failed", "pending"):
            f.attrs[f"n_{status}"] = sum(r[0] == status for r in rows)
    os.replace(tmp, directory / SUMMARY)
    return directory / SUMMARY


@dataclass(frozen=True)
class Summary:
    """The summary table of a sweep as arrays (one entry per task)."""
    spec: dict
    task_id: np.ndarray
    replicate: np.ndarray
    seed: np.ndarray
    status: np.ndarray
    message: np.ndarray
    params: dict      # swept name -> values
    metrics: dict     # metric name -> float64 values (NaN where absent)


def read_summary(directory: str | os.PathLike) -> Summary:
    directory = Path(directory)
    if not (directory / MANIFEST).exists():
        raise RunFileError(f"{directory}: not a sweep folder (no {MANIFEST})")
    if not (directory / SUMMARY).exists():
        rebuild_summary(directory)
    with h5py.File(directory / SUMMARY, "r") as f:
        s = f["summary"]

        def col(ds):
            return ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]
        return Summary(json.loads(_py(f.attrs["spec"])), col(s["task_id"]), s["replicate"][()], s["seed"][()],
                       col(s["status"]), col(s["message"]),
                       {k: col(v) for k, v in s["params"].items()},
                       {k: v[()] for k, v in s["metrics"].items()})
