"""sweep.h5: the index of a sweep folder, rebuilt from manifest.json and the run files at any time.

    /runs/<task-id>            external link to runs/<task-id>.h5 (path relative to the folder), for every
                               task whose run file exists
    /summary/task              dimension scale: the task index 0..n-1 (every column below is along it)
    /summary/task_id, index, replicate, seed, status, message          one row per task, in task order
    /summary/params/<name>     the swept parameter values (typed: int64, float64, bool or string)
    /summary/metrics/<name>    every numeric /comparison attribute of any run (float64, NaN where absent)
    /summary/claims/claim      dimension scale: the names of every claim any run states
    /summary/claims/verdict    [task, claim] "holds", "fails", "undetermined", or "" where the run has no such
                               claim; expected likewise; measured, predicted, stderr, score [task, claim]
                               float64 (NaN where absent); met [task, claim] int8 (1 met, 0 not, -1 absent)
    root attrs                 scenario, spec (JSON), counts per status

Every dataset has labelled dimensions (task, claim), so ``xarray.open_dataset("sweep.h5", engine="h5netcdf",
group="summary/claims")`` gives a labelled table. `read_summary(dir)` reads it back as plain arrays
(rebuilding it if missing); `describe_sweep(dir)` is what `sgdsim inspect DIR` prints.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from numbers import Number
from pathlib import Path

import h5py
import numpy as np

from ..errors import RunFileError
from ..io.runfile import attr_to_python
from ..io.runread import open_run
from .runner import MANIFEST, RUNS, SUMMARY, load_manifest

__all__ = ["rebuild_summary", "read_summary", "Summary", "Claims", "describe_sweep"]

_STR = h5py.string_dtype()


def _numeric(value) -> bool:
    return isinstance(value, (Number, np.number, np.bool_)) and not isinstance(value, complex)


CLAIM_FIELDS = ("measured", "predicted", "stderr", "score")


def _row(directory: Path, task: dict) -> tuple[str, str, dict, dict]:
    """(status, message, numeric metrics, claims by name) of one task: from its run file when there is one,
    else the manifest."""
    path = directory / RUNS / f"{task['id']}.h5"
    if path.exists():
        try:
            with open_run(path) as run:
                metrics = {k: float(v) for k, v in run.comparison.items() if _numeric(v)}
                return run.status, run.message, metrics, {c.name: c for c in run.claims}
        except RunFileError as e:
            return "failed", str(e), {}, {}
    return task["state"], task.get("message", ""), {}, {}


def _label(ds: h5py.Dataset, *scales: h5py.Dataset) -> None:
    for axis, scale in enumerate(scales):
        ds.dims[axis].attach_scale(scale)


def _write_claims(s: h5py.Group, rows: list, task: h5py.Dataset) -> None:
    """/summary/claims: per task and claim, the verdict, expectation, numbers and whether it was met."""
    from ..compare.claims import deciding
    names = sorted({name for r in rows for name in r[3]})
    g = s.create_group("claims")
    claim = g.create_dataset("claim", data=np.array(names, dtype=object), dtype=_STR)
    claim.make_scale("claim")
    shape = (len(rows), len(names))
    text = {k: np.full(shape, "", dtype=object) for k in ("verdict", "expected")}
    numbers = {k: np.full(shape, np.nan) for k in CLAIM_FIELDS}
    met = np.full(shape, -1, dtype=np.int8)
    for i, r in enumerate(rows):
        for j, name in enumerate(names):
            c = r[3].get(name)
            if c is None:
                continue
            text["verdict"][i, j], text["expected"][i, j], met[i, j] = c.verdict, c.expected, int(c.met)
            numbers["measured"][i, j], numbers["predicted"][i, j], numbers["stderr"][i, j] = deciding(c)
            numbers["score"][i, j] = c.score
    for key, values in text.items():
        _label(g.create_dataset(key, data=values, dtype=_STR), task, claim)
    for key, values in numbers.items():
        _label(g.create_dataset(key, data=values), task, claim)
    _label(g.create_dataset("met", data=met), task, claim)


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
    metric_names = sorted({k for _, _, m, _ in rows for k in m})
    swept = list(manifest["spec"]["grid"])
    tmp = directory / (SUMMARY + ".tmp")
    with h5py.File(tmp, "w") as f:
        links = f.create_group("runs")
        for t in tasks:
            if (directory / RUNS / f"{t['id']}.h5").exists():
                links[t["id"]] = h5py.ExternalLink(f"{RUNS}/{t['id']}.h5", "/")
        s = f.create_group("summary")
        task = s.create_dataset("task", data=np.arange(len(tasks), dtype=np.int64))
        task.make_scale("task")
        columns = {"task_id": s.create_dataset("task_id", data=np.array([t["id"] for t in tasks], dtype=object),
                                               dtype=_STR)}
        for col in ("index", "replicate", "seed"):
            columns[col] = s.create_dataset(col, data=np.array([t[col] for t in tasks], dtype=np.int64))
        columns["status"] = s.create_dataset("status", data=np.array([r[0] for r in rows], dtype=object), dtype=_STR)
        columns["message"] = s.create_dataset("message", data=np.array([r[1] for r in rows], dtype=object),
                                              dtype=_STR)
        params = s.create_group("params")
        for name in swept:
            col = _column([t["params"][name] for t in tasks])
            columns[f"params/{name}"] = params.create_dataset(name, data=col,
                                                              dtype=_STR if col.dtype == object else col.dtype)
        metrics = s.create_group("metrics")
        for name in metric_names:
            columns[f"metrics/{name}"] = metrics.create_dataset(
                name, data=np.array([r[2].get(name, np.nan) for r in rows], dtype=np.float64))
        for ds in columns.values():
            _label(ds, task)
        _write_claims(s, rows, task)
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
    claims: Claims | None = None


@dataclass(frozen=True)
class Claims:
    """Per task (rows) and claim (columns): verdict and expected ("" where absent), numbers (NaN where
    absent), met (1, 0, or -1 where absent)."""
    names: np.ndarray
    verdict: np.ndarray
    expected: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    stderr: np.ndarray
    score: np.ndarray
    met: np.ndarray


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
        claims = None
        if "claims" in s:
            c = s["claims"]
            claims = Claims(col(c["claim"]), col(c["verdict"]), col(c["expected"]),
                            *(c[k][()] for k in CLAIM_FIELDS), c["met"][()])
        return Summary(json.loads(attr_to_python(f.attrs["spec"])), col(s["task_id"]), s["replicate"][()], s["seed"][()],
                       col(s["status"]), col(s["message"]),
                       {k: col(v) for k, v in s["params"].items()},
                       {k: v[()] for k, v in s["metrics"].items()}, claims)


def describe_sweep(directory: str | os.PathLike, limit: int = 20) -> str:
    """What `sgdsim inspect DIR` prints: the spec, the count of tasks per state, the tasks that did not
    complete (up to `limit`), and per claim how many finished runs met it, per grid point."""
    directory = Path(directory)
    manifest = load_manifest(directory)
    s = read_summary(directory) if (directory / SUMMARY).exists() else None
    spec = manifest["spec"]
    tasks = manifest["tasks"]
    states = [t["state"] for t in tasks]   # the manifest is current while a driver works; sweep.h5 is rebuilt at the end
    lines = [f"sweep     {directory}",
             f"scenario  {spec['scenario']}   preset {spec['preset'] or '-'}   replicates {spec['replicates']}   "
             f"root seed {spec['seed']}",
             "grid      " + ("; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in spec["grid"].items()) or "-"),
             "fixed     " + (", ".join(f"{k}={v}" for k, v in spec["fixed"].items()) or "-"),
             f"tasks     {len(tasks)}: " + ", ".join(f"{states.count(st)} {st}" for st in
                                                   ("complete", "diverged", "failed", "pending") if states.count(st))]
    bad = [(t, st) for t, st in zip(tasks, states) if st != "complete"]
    for t, st in bad[:limit]:
        point = " ".join(f"{k}={v}" for k, v in t["params"].items())
        lines.append(f"  {st}: {t['id']} ({point} replicate={t['replicate']}) {t.get('message', '')}".rstrip())
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more (see {directory / MANIFEST})")
    if s is None:
        lines.append(f"({SUMMARY} not built yet: the claims show once the sweep has run)")
    elif s.claims is None or not len(s.claims.names):
        lines.append("claims    none stated by the finished runs")
    else:
        lines.append("claims    met / runs that state it, per grid point (replicates pooled)")
        points = [tuple((k, v[i]) for k, v in s.params.items()) for i in range(len(s.status))]
        for j, name in enumerate(s.claims.names):
            stated = s.claims.met[:, j] >= 0
            met = s.claims.met[:, j] == 1
            per_point = []
            for point in dict.fromkeys(points):
                sel = stated & np.array([p == point for p in points])
                if sel.any():
                    where = " ".join(f"{k}={v}" for k, v in point) or "all"
                    per_point.append(f"{where}: {int(met[sel].sum())}/{int(sel.sum())}")
            lines.append(f"  {name}: {int(met.sum())}/{int(stated.sum())} met"
                         + (f"   ({'; '.join(per_point)})" if len(per_point) > 1 else ""))
    return "\n".join(lines)
