"""Reading run files back: `open_run(path)` (exported as `sgdsim.open`) gives a `Run` with the parameters,
status, elements, events, theory and comparison metrics of a run file written by `runfile.RunWriter`,
complete or left as ``.partial`` by a killed run."""
from __future__ import annotations

import json
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from sgdsim.errors import RunFileError
from sgdsim.io.runfile import attr_to_python
from sgdsim.text import number

__all__ = ["Run", "Element", "Event", "StoredTheory", "open_run"]

_DS_ATTRS = ("CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST")  # HDF5 dimension-scale bookkeeping


def _attrs_dict(obj: h5py.HLObject) -> dict[str, Any]:
    return {k: attr_to_python(v) for k, v in obj.attrs.items() if k not in _DS_ATTRS}


@dataclass(frozen=True, eq=False)
class Element:
    """A time series read from a run file."""
    step: np.ndarray
    time: np.ndarray
    value: np.ndarray
    attrs: dict = field(default_factory=dict)
    coords: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Event:
    """An event list: which particle, at which step and time."""
    particle: np.ndarray
    step: np.ndarray
    time: np.ndarray


@dataclass(frozen=True, eq=False)
class StoredTheory:
    """A stored prediction; ``step``/``time`` are None for the plain-dataset form."""
    value: np.ndarray
    step: np.ndarray | None = None
    time: np.ndarray | None = None
    coords: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)


def _coords(g: h5py.Group) -> dict[str, np.ndarray]:
    """The coordinates of value's dimensions after the first (in dimension order)."""
    value = g["value"]
    first = 1 if "step" in g else 0
    return {ds.name.rsplit("/", 1)[-1]: ds[()] for i in range(first, value.ndim) for ds in value.dims[i].values()}


def _open_for_reading(path: pathlib.Path) -> h5py.File:
    """Open read-only; a file still (or last) streamed in SWMR mode, e.g. by a killed run, is marked
    'open for write' in its superblock and opens as an SWMR reader instead; a .partial without taking the
    file lock."""
    # a .partial may be in the hands of a running writer, which reopens it for every structural change: a
    # reader must not hold HDF5's file lock then, or the writer's reopen fails (seen: inspecting a live run)
    locking = not path.name.endswith(".partial")
    try:
        return h5py.File(path, "r", locking=locking)
    except OSError as e:
        if "already open for write" not in str(e):
            raise
        return h5py.File(path, "r", swmr=True, locking=locking)


class Run:
    """A run file opened read-only; use ``open_run``. Also a context manager."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = pathlib.Path(path)
        if not self.path.exists():
            raise RunFileError(f"{self.path}: no such file")
        try:
            self.h5 = _open_for_reading(self.path)
        except Exception as e:
            reason = " ".join(str(e).split()) or type(e).__name__
            if "unable to lock file" in reason.lower():
                reason += "; is it still being written?"
            raise RunFileError(f"{self.path}: not a readable HDF5 file ({reason})") from None
        try:
            for grp in ("h5md", "parameters"):
                if grp not in self.h5:
                    raise RunFileError(f"{self.path}: not an sgdsim run file (missing /{grp})")
            par = self.h5["parameters"].attrs
            self.scenario: str = attr_to_python(par["scenario"])
            self.seed: int = attr_to_python(par["seed"])
            self.params: dict = json.loads(attr_to_python(par["params"]))
            self.versions: dict = {k[8:]: attr_to_python(v) for k, v in par.items() if k.startswith("version_")}
        except RunFileError:
            self.h5.close()
            raise
        except Exception as e:
            self.h5.close()
            raise RunFileError(f"{self.path}: not an sgdsim run file ({type(e).__name__}: "
                               f"{' '.join(str(e).split())})") from None

    @property
    def status(self) -> str:
        return attr_to_python(self.h5.attrs.get("status", "unknown"))

    @property
    def message(self) -> str:
        return attr_to_python(self.h5.attrs.get("message", ""))

    @property
    def attrs(self) -> dict[str, Any]:
        return _attrs_dict(self.h5)

    @property
    def comparison(self) -> dict[str, Any]:
        return _attrs_dict(self.h5["comparison"]) if "comparison" in self.h5 else {}

    @property
    def claims(self) -> list:
        """The claims stored under ``/claims`` (`sgdsim.compare.claims.Claim`, verdicts recomputed from the stored
        values); [] for a run that states none."""
        from ..compare.claims import from_columns
        g = self.h5.get("claims")
        if not isinstance(g, h5py.Group) or "name" not in g:
            return []
        try:
            cols = {k: g[k].asstr()[()] if h5py.check_string_dtype(g[k].dtype) else g[k][()]
                    for k in g if isinstance(g[k], h5py.Dataset)}
            arrays = {name: {k: a[k][()] for k in a} for name, a in g.get("arrays", {}).items()}
            return from_columns(cols, arrays)
        except Exception as e:
            raise RunFileError(f"{self.path}: unreadable /claims ({type(e).__name__}: "
                               f"{' '.join(str(e).split())})") from None

    def names(self, group: str) -> list[str]:
        """Names stored under a top-level group, e.g. ``names("observables")``; [] if absent."""
        g = self.h5.get(group)
        return sorted(g.keys()) if isinstance(g, h5py.Group) else []

    def _group(self, group: str, name: str) -> h5py.Group:
        names = self.names(group)
        if name not in names:
            raise RunFileError(f"{self.path}: no {group}/{name} (has: {', '.join(names) or 'nothing'})")
        g = self.h5[group][name]
        return g["position"] if group == "particles" else g

    def element(self, name: str, group: str = "observables") -> Element:
        """Read a whole element (``/particles/<name>/position`` for group "particles")."""
        g = self._group(group, name)
        return Element(step=g["step"][()], time=g["time"][()], value=g["value"][()], attrs=_attrs_dict(g),
                       coords=_coords(g))

    def event(self, name: str) -> Event:
        """Read an event list."""
        g = self._group("events", name)
        return Event(particle=g["particle"][()], step=g["step"][()], time=g["time"][()])

    def theory(self, name: str) -> StoredTheory:
        """Read a stored prediction."""
        g = self._group("theory", name)
        step = g["step"][()] if "step" in g else None
        time = g["time"][()] if "time" in g else None
        return StoredTheory(value=g["value"][()], step=step, time=time, coords=_coords(g), attrs=_attrs_dict(g))

    def reached(self) -> str:
        """How far the recording got: the last recorded step and its time over every element, and the last
        step at which every recorded value was finite (what a diverged or interrupted run can still say)."""
        last, last_time, finite = -1, float("nan"), None
        for group in ("particles", "observables"):
            for n in self.names(group):
                g = self._group(group, n)
                if not len(g["step"]):
                    continue
                step = int(g["step"][-1])
                if step > last:
                    last, last_time = step, float(g["time"][-1])
                value = g["value"]
                if value.dtype.kind == "f":
                    ok = np.isfinite(value[()].reshape(len(value), -1)).all(axis=1)
                    bad = np.flatnonzero(~ok)
                    if len(bad):
                        first_bad = int(g["step"][bad[0]])
                        finite = first_bad if finite is None else min(finite, first_bad)
        if last < 0:
            return "nothing was recorded"
        text = f"reached step {last} (t = {number(last_time)})"
        if finite is not None:
            text += f"; recorded values are finite only before step {finite}"
        return text

    def summary(self) -> str:
        """Multi-line human-readable description (used by ``sgdsim inspect``): non-finite numbers print as
        n/a, and a run that did not complete says how far it got."""
        lines = [f"run       {self.path}",
                 f"scenario  {self.scenario}   seed {self.seed}   status {self.status}"]
        if self.message:
            lines.append(f"message   {self.message}")
        if self.status != "complete":
            lines.append(f"reached   {self.reached()}")
        lines.append("params    " + (", ".join(f"{k}={v}" for k, v in self.params.items()) or "(none)"))
        lines.append("versions  " + ", ".join(f"{k} {v}" for k, v in self.versions.items()))
        for group in ("particles", "observables"):
            for n in self.names(group):
                g = self._group(group, n)
                v, s = g["value"], g["step"]
                rng = f"steps {s[0]}..{s[-1]}" if len(s) else "empty"
                dims = f" dims {', '.join(_coords(g))}" if g["value"].ndim > 1 else ""
                lines.append(f"  {group}/{n}: value {v.shape} {v.dtype}, {rng}{dims}")
        for n in self.names("events"):
            lines.append(f"  events/{n}: {len(self.h5['events'][n]['step'])} events")
        for n in self.names("theory"):
            g = self.h5["theory"][n]
            lines.append(f"  theory/{n}: value {g['value'].shape}, source {attr_to_python(g.attrs.get('source', '?'))}")
        comp = self.comparison
        if comp:
            lines.append("comparison")
            lines += [f"  {k} = {number(v, 6)}" if isinstance(v, float) else f"  {k} = {v}" for k, v in comp.items()]
        claims = self.claims
        if claims:
            met = sum(c.met for c in claims)
            lines.append(f"claims    {met} of {len(claims)} met" + ("" if met == len(claims) else ": not met "
                         + ", ".join(f"{c.name} ({c.verdict}, expected {c.expected})" for c in claims if not c.met)))
        return "\n".join(lines)

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self.h5.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sgdsim Run {str(self.path)!r} scenario={self.scenario!r} seed={self.seed}>"


def open_run(path: str | os.PathLike) -> Run:
    """Open a run file (final or ``.partial``) read-only; raises RunFileError if unusable."""
    return Run(path)
