"""Writing HDF5 run files (a subset of H5MD 1.1), streaming and crash-safe (`runread` reads them back).

A run is written to ``<path>.partial`` and renamed to ``<path>`` on a clean ``close()``. Appends are
buffered in memory and written in blocks at each flush. Blocks are streamed in HDF5's SWMR mode, whose
ordered writes keep the file consistent on disk at every instant: a writer killed even in the middle of a
flush leaves a file holding every block up to its last completed flush (seen in 60 of 60 random SIGKILLs;
without SWMR about 1 in 16 left a corrupt chunk). sgdsim reads such a ``.partial`` as it is; plain HDF5 readers
(h5py without swmr=True, h5dump) refuse it ("already open for write") until `sgdsim recover FILE` clears the
SWMR write flags, marks it "killed" with its last flushed step and renames it (`sgdsim.io.recover`). Files are
written in the HDF5 1.10 file format (`LIBVER`:
the lowest bound SWMR allows, and the highest the HDF5 1.10 command-line tools and libraries read), so h5dump,
h5ls and h5py or xarray built on HDF5 1.10 to 2.0 all open them. Structure (new elements, attributes, theory) is written
outside SWMR, by reopening the file, which is brief. ``swmr=False`` (or SGDSIM_SWMR=0) turns streaming
off for filesystems that do not keep write order (some network filesystems). Layout: DESIGN.md.
"""
from __future__ import annotations

import getpass
import importlib.metadata
import json
import math
import os
import pathlib
import signal
import time
from typing import Any

import h5py
import numpy as np

from ..runloop import Status, StopSignal


__all__ = ["RunWriter", "ElementWriter", "EventWriter", "STATUSES", "attr_value", "attr_to_python"]

STATUSES = tuple(str(s) for s in Status if s is not Status.RUNNING)   # killed: set by sgdsim.io.recover
_CHUNK_TARGET = 256 * 1024  # bytes per chunk; inside the 64 KiB - 1 MiB band for all but huge rows
_COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
LIBVER = ("v110", "v110")            # file-format bounds with SWMR: readable by HDF5 >= 1.10 (h5dump 1.10 included)
LIBVER_NO_SWMR = ("earliest", "v110")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"parameter value {obj!r} of type {type(obj).__name__} is not JSON serializable")


def attr_value(value: Any) -> Any:
    """Convert a Python/NumPy value to something h5py stores as an attribute."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, bool, int, float, np.ndarray)):
        return value
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"attribute value {value!r} of type {type(value).__name__} is not supported")


def attr_to_python(value: Any) -> Any:
    """Attribute read from HDF5 -> plain Python scalar (arrays stay arrays)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value




def _set_attrs(obj: h5py.HLObject, attrs: dict | None) -> None:
    for k, v in (attrs or {}).items():
        obj.attrs[k] = attr_value(v)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)  # metadata only: never imports the package
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _growable(group: h5py.Group, name: str, row_shape: tuple, dtype, rows: int) -> h5py.Dataset:
    chunks = (rows, *(max(1, s) for s in row_shape))
    return group.create_dataset(name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=dtype,
                                chunks=chunks, **_COMPRESSION)


def _step_scale(step: h5py.Dataset, *attached: h5py.Dataset) -> None:
    step.make_scale("step")
    for ds in attached:
        ds.dims[0].attach_scale(step)


def _attach_coords(group: h5py.Group, value: h5py.Dataset, coords: dict | None, first_dim: int) -> None:
    """Store coords as datasets beside ``value`` and attach them as dimension scales to value dims
    first_dim, ...; a dimension left without one gets ``dim<i>`` = 0, 1, ... so that every dimension
    is labelled (xarray via h5netcdf needs that, and sees only scales in the same or an enclosing group)."""
    coords = dict(coords or {})
    if len(coords) > value.ndim - first_dim:
        raise ValueError(f"{group.name}: {len(coords)} coords for {value.ndim - first_dim} value dimension(s)")
    names = list(coords) + [f"dim{i}" for i in range(first_dim + len(coords), value.ndim)]
    for i, axis in enumerate(names, start=first_dim):
        if axis in group:
            raise ValueError(f"{group.name}: coordinate name {axis!r} is taken")
        arr = np.asarray(coords[axis]) if axis in coords else np.arange(value.shape[i])
        if arr.ndim != 1 or len(arr) != value.shape[i]:
            raise ValueError(f"{group.name}: coord {axis!r} has shape {arr.shape}, value dim {i} has length "
                             f"{value.shape[i]}")
        ds = group.create_dataset(axis, data=arr)
        ds.make_scale(axis)
        value.dims[i].attach_scale(ds)


class _Buffered:
    """Rows buffered in memory (columns of arrays), written as one block to growable datasets."""

    def __init__(self, writer: RunWriter, group: h5py.Group, names: tuple[str, ...]) -> None:
        self._writer = writer
        self.name = group.name
        self._paths = [f"{group.name}/{n}" for n in names]  # handles die when the writer reopens the file
        self._buf: list[tuple[np.ndarray, ...]] = []
        self._nbytes = 0

    def _push(self, cols: tuple[np.ndarray, ...]) -> None:
        if len(cols[0]):
            self._buf.append(cols)
            self._nbytes += sum(c.nbytes for c in cols)
        if self._nbytes > self._writer.block_bytes:
            self._writer._stream()
            self._write()
            self._writer._h5.flush()

    def _write(self) -> None:
        """Grow every dataset by the same number of rows, then fill them."""
        if not self._buf:
            return
        cols = [np.concatenate(c) for c in zip(*self._buf)]
        self._buf, self._nbytes = [], 0
        dsets = [self._writer._h5[path] for path in self._paths]
        n0, k = dsets[0].shape[0], len(cols[0])
        for ds in dsets:
            ds.resize(n0 + k, axis=0)
        for ds, col in zip(dsets, cols):
            ds[n0:n0 + k] = col


class ElementWriter(_Buffered):
    """Buffered appender for one H5MD element (step, time, value)."""

    def __init__(self, writer: RunWriter, group: h5py.Group, value_shape: tuple, dtype) -> None:
        super().__init__(writer, group, ("step", "time", "value"))
        self.value_shape, self.dtype = value_shape, np.dtype(dtype)

    def append(self, step: int, time: float, value: Any) -> None:
        """Buffer one snapshot; writes (and flushes) the block once the buffer exceeds ``block_bytes``."""
        self._writer._check_open()
        arr = np.array(value, dtype=self.dtype)  # a copy: the caller may reuse its array
        if arr.shape != self.value_shape:
            raise ValueError(f"{self.name}: value of shape {arr.shape}, expected {self.value_shape}")
        self._push((np.array([step], np.int64), np.array([time], np.float64), arr[None]))


class EventWriter(_Buffered):
    """Buffered appender for one event list (particle, step, time)."""

    def __init__(self, writer: RunWriter, group: h5py.Group) -> None:
        super().__init__(writer, group, ("particle", "step", "time"))

    def append(self, particles: Any, steps: Any, times: Any) -> None:
        """Buffer events given as equal-length 1-D arrays (may be empty)."""
        self._writer._check_open()
        cols = (np.array(particles, np.int64, ndmin=1), np.array(steps, np.int64, ndmin=1),
                np.array(times, np.float64, ndmin=1))
        if not all(c.ndim == 1 and len(c) == len(cols[0]) for c in cols):
            raise ValueError(f"{self.name}: particles, steps, times must be 1-D of equal length, "
                             f"got shapes {', '.join(str(c.shape) for c in cols)}")
        self._push(cols)


class RunWriter:
    """Write one run file under ``<path>.partial``; ``close()`` renames it to ``path``."""

    def __init__(self, path: str | os.PathLike, *, scenario: str, params: dict, seed: int,
                 block_bytes: int = 1 << 20, swmr: bool | None = None) -> None:
        import sgdsim
        self._swmr = os.environ.get("SGDSIM_SWMR", "1") != "0" if swmr is None else bool(swmr)
        self._streaming = False
        self._path = pathlib.Path(path)
        self._partial = self._path.with_name(self._path.name + ".partial")
        self.block_bytes = int(block_bytes)
        self._writers: list[_Buffered] = []
        self._claims: list = []
        self._closed = False
        params_json = json.dumps(params, sort_keys=True, default=_json_default)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._h5 = h5py.File(self._partial, "w", libver=LIBVER if self._swmr else LIBVER_NO_SWMR)
        try:
            h5md = self._h5.create_group("h5md")
            h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
            try:
                user = getpass.getuser()
            except Exception:  # no USER/LOGNAME and no passwd entry
                user = ""
            h5md.create_group("author").attrs["name"] = user or "unknown"
            _set_attrs(h5md.create_group("creator"), {"name": "sgdsim", "version": sgdsim.__version__})
            _set_attrs(self._h5.create_group("parameters"), {
                "scenario": str(scenario), "seed": int(seed), "params": params_json,
                "version_numpy": np.__version__, "version_numba": _version("numba"),
                "version_h5py": h5py.__version__, "version_sgdsim": sgdsim.__version__})
            self._h5.create_group("comparison")
            _set_attrs(self._h5, {"status": "running", "message": ""})
            self._stream()
        except BaseException:
            self._h5.close()
            raise

    @property
    def path(self) -> pathlib.Path:
        """Final path (exists only after a clean close)."""
        return self._path

    @property
    def partial_path(self) -> pathlib.Path:
        """Temporary path written while the run is open."""
        return self._partial

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self._path}: run writer is closed")

    def _define(self) -> h5py.File:
        """The file, open for structural changes (leaving SWMR streaming means closing and reopening)."""
        self._check_open()
        if self._streaming:
            self._h5.close()
            self._h5 = self._reopen()
            self._streaming = False
        return self._h5

    def _reopen(self, attempts: int = 100) -> h5py.File:
        """Reopen for writing; a reader holding HDF5's file lock for a moment (h5py, h5dump, `sgdsim inspect`
        on the .partial) is waited for, up to about 10 s, instead of failing the run."""
        for attempt in range(attempts):
            try:
                return h5py.File(self._partial, "r+", libver=LIBVER)
            except BlockingIOError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def _stream(self) -> None:
        """Flush, and go (back) to SWMR streaming if enabled: every structural call ends here, so the file
        is outside SWMR only for the milliseconds of that call."""
        self._h5.flush()
        if self._swmr and not self._streaming:
            self._h5.swmr_mode = True
            self._streaming = True

    def element(self, name: str, value_shape: tuple, *, group: str = "observables", dtype=np.float64,
                attrs: dict | None = None, coords: dict[str, np.ndarray] | None = None) -> ElementWriter:
        """Create element ``/<group>/<name>`` (``/particles/<name>/position`` for particles)."""
        self._define()
        value_shape = tuple(int(s) for s in value_shape)
        if group == "particles" and coords is None and len(value_shape) == 2:
            coords = {"particle": np.arange(value_shape[0]), "spatial": np.arange(value_shape[1])}
        g = self._h5.require_group(group).create_group(name)
        if group == "particles":
            g = g.create_group("position")
        rows = max(1, _CHUNK_TARGET // max(1, np.dtype(dtype).itemsize * math.prod(value_shape)))
        value = _growable(g, "value", value_shape, dtype, rows)
        _step_scale(_growable(g, "step", (), np.int64, max(rows, 1024)), value,
                    _growable(g, "time", (), np.float64, max(rows, 1024)))
        _attach_coords(g, value, coords, 1)
        _set_attrs(g, attrs)
        self._stream()
        self._writers.append(ElementWriter(self, g, value_shape, dtype))
        return self._writers[-1]

    def events(self, name: str) -> EventWriter:
        """Create event list ``/events/<name>`` (particle, step, time)."""
        self._define()
        g = self._h5.require_group("events").create_group(name)
        for col, dtype in (("particle", np.int64), ("step", np.int64), ("time", np.float64)):
            _growable(g, col, (), dtype, 8192)
        self._stream()
        self._writers.append(EventWriter(self, g))
        return self._writers[-1]

    def theory(self, name: str, value: Any, *, source: str, equation: str, step: Any = None, time: Any = None,
               coords: dict[str, np.ndarray] | None = None, attrs: dict | None = None) -> None:
        """Store a prediction: element form if step and time are given, else a plain ``value`` dataset."""
        self._define()
        value = np.asarray(value)
        if (step is None) != (time is None):
            raise ValueError(f"theory {name!r}: give both step and time, or neither")
        g = self._h5.require_group("theory").create_group(name)
        comp = _COMPRESSION if value.ndim and value.size else {}
        if step is not None:
            step = np.asarray(step, np.int64).reshape(-1)
            time = np.asarray(time, np.float64).reshape(-1)
            if not (len(step) == len(time) == (len(value) if value.ndim else -1)):
                raise ValueError(f"theory {name!r}: step, time and value disagree on the number of rows")
            vds = g.create_dataset("value", data=value, **comp)
            _step_scale(g.create_dataset("step", data=step), vds, g.create_dataset("time", data=time))
            _attach_coords(g, vds, coords, 1)
        else:
            _attach_coords(g, g.create_dataset("value", data=value, **comp), coords, 0)
        _set_attrs(g, {"source": str(source), "equation": str(equation), **(attrs or {})})
        self._stream()

    def claims(self, *claims) -> None:
        """Store claims (`sgdsim.compare.claims.Claim`) under ``/claims``: one row per claim as 1-D columns along the
        dimension ``claim`` (layout in `sgdsim.compare.claims`); array claims keep their arrays under
        ``/claims/arrays/<name>``. Calling again adds claims (names must stay unique)."""
        from ..compare.claims import columns
        self._define()
        names = [c.name for c in self._claims + list(claims)]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{self._path}: claim names must be unique, repeated: {', '.join(repeated)}")
        self._claims += list(claims)
        if "claims" in self._h5:
            del self._h5["claims"]
        g = self._h5.create_group("claims")
        cols = columns(self._claims)
        index = g.create_dataset("claim", data=np.arange(len(self._claims), dtype=np.int64))
        index.make_scale("claim")
        for key, col in cols.items():
            ds = g.create_dataset(key, data=col, dtype=h5py.string_dtype() if col.dtype == object else col.dtype)
            ds.dims[0].attach_scale(index)
        for c in self._claims:
            if c.size > 1:
                arrays = g.require_group("arrays").create_group(c.name)
                for what in ("measured", "predicted", "stderr"):
                    value = getattr(c, what)
                    if value is not None:
                        arrays.create_dataset(what, data=np.asarray(value, dtype=np.float64))
        self._stream()

    def comparison(self, **metrics: Any) -> None:
        """Set comparison metrics (floats, ints, strings) as attributes of ``/comparison``."""
        self._define()
        _set_attrs(self._h5["comparison"], metrics)
        self._stream()

    def attrs(self, **kv: Any) -> None:
        """Set extra root attributes (``status`` and ``message`` are set by ``close``)."""
        self._define()
        for k in ("status", "message"):
            if k in kv:
                raise ValueError(f"{self._path}: root attribute {k!r} is set by close()")
        _set_attrs(self._h5, kv)
        self._stream()

    def flush(self) -> None:
        """Write every buffered block and flush the HDF5 file to disk."""
        self._check_open()
        self._stream()
        for w in self._writers:
            w._write()
        self._h5.flush()

    def close(self, status: str = "complete", message: str = "") -> pathlib.Path:
        """Flush, record status/message, close and rename to the final path (idempotent)."""
        if self._closed:
            return self._path
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        try:
            self.flush()
            self._define()
            self._h5.attrs["status"] = status
            self._h5.attrs["message"] = str(message)
        finally:
            self._closed = True
            self._h5.close()
        os.replace(self._partial, self._path)
        return self._path

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.close("complete")
        elif not self._closed:
            if isinstance(exc, (KeyboardInterrupt, StopSignal)):
                name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else signal.Signals(exc.signum).name
                status, msg = "interrupted", f"interrupted by {name}: everything up to the last flush is kept"
            else:
                status, msg = "failed", " ".join(f"{type(exc).__name__}: {exc}".splitlines())
            try:
                self.close(status, msg)
            except Exception:
                pass  # never mask the original exception
        return False
