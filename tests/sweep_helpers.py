"""Shared by the sweep tests: a tiny, cheap double-well sweep and a content comparison of HDF5 files."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from sgdsim.sweep.runner import make_spec

# 50 particles, 40 steps, two records: ~0.5 s a task, mostly HDF5 writing
FIXED = dict(particles=50, steps=40, record_every=40, bins=10, examples=16)
GRID = {"lr": "0.02,0.05"}
REPLICATES = 2
N_TASKS = 4
CLI_ARGS = ["double-well", "--grid", "lr=0.05,0.02", "--replicates", str(REPLICATES),
            "--set", *(f"{k}={v}" for k, v in FIXED.items())]


def spec(**kw):
    return make_spec("double-well", GRID, fixed=FIXED, replicates=REPLICATES, **kw)


def _plain(f: h5py.File, value):
    """An attribute as plain Python, object references (dimension-scale bookkeeping) replaced by the names
    they point to; compared through repr, which is exact for floats and NaN."""
    if isinstance(value, h5py.Reference):
        return f[value].name
    if isinstance(value, (np.ndarray, np.void, list, tuple)) and not isinstance(value, str):
        if isinstance(value, np.ndarray) and value.dtype != object and not value.dtype.names:
            return value.tolist()
        return [_plain(f, v) for v in (value.ravel() if isinstance(value, np.ndarray) else value)]
    return value


def same_content(a: Path, b: Path) -> list[str]:
    """Every difference between two HDF5 files: the set of objects, every attribute, every dataset's dtype,
    shape, chunking, filters and values (NaN equal to NaN). HDF5 may lay out identical content in different
    bytes (metadata flush order under SWMR), so content, not bytes, is what has to agree."""
    diffs: list[str] = []
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names_a, names_b = ["/"], ["/"]
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if sorted(names_a) != sorted(names_b):
            return [f"objects differ: {sorted(set(names_a) ^ set(names_b))}"]
        for name in names_a:
            x, y = fa[name], fb[name]
            if type(x) is not type(y):
                diffs.append(f"{name}: {type(x).__name__} vs {type(y).__name__}")
                continue
            if sorted(x.attrs) != sorted(y.attrs):
                diffs.append(f"{name}: attribute names differ")
            for k in x.attrs:
                if k in y.attrs and repr(_plain(fa, x.attrs[k])) != repr(_plain(fb, y.attrs[k])):
                    diffs.append(f"{name}@{k}: {x.attrs[k]!r} vs {y.attrs[k]!r}")
            if isinstance(x, h5py.Dataset):
                if (x.dtype, x.shape, x.chunks, x.compression, x.shuffle) != \
                        (y.dtype, y.shape, y.chunks, y.compression, y.shuffle):
                    diffs.append(f"{name}: dtype/shape/layout differ")
                elif not np.array_equal(x[()], y[()], equal_nan=x.dtype.kind == "f"):
                    diffs.append(f"{name}: values differ")
    return diffs


def assert_same_runs(reference: Path, other: Path) -> None:
    """Both sweep folders hold the same run files, with the same content."""
    ref = sorted(p.name for p in (reference / "runs").iterdir())
    assert ref == sorted(p.name for p in (other / "runs").iterdir())
    assert all(name.endswith(".h5") for name in ref)
    for name in ref:
        assert same_content(reference / "runs" / name, other / "runs" / name) == [], name
