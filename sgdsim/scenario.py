"""Scenarios: named, documented experiments with typed parameters, presets, a run and its figures.

A scenario module in `scenarios/` defines one `Scenario` and is listed in setup.py's `sgdsim.scenarios`
entry-point group, which is how the CLI finds it (so sgdsim never imports its scenarios, and other packages
can add their own).
"""
from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from .errors import ParameterError
from .plugins import load_group, pick
from .io.runfile import RunWriter
from .runloop import active_interrupt

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


@dataclass(frozen=True)
class Param:
    """One typed parameter: default, help, and an optional check returning an error message or None."""
    name: str
    type: type
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    choices: tuple | None = None

    def convert(self, value: Any) -> Any:
        """Parse a string (from --set) or check a Python value; ParameterError names the problem."""
        try:
            if isinstance(value, str) and self.type is not str:
                value = _parse(value, self.type)
            elif self.type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
                raise ValueError
        except ValueError:
            raise ParameterError(f"parameter {self.name} must be {_TYPE_NAMES[self.type]}, got {value!r}") from None
        if self.type is float and not math.isfinite(value):
            raise ParameterError(f"parameter {self.name} must be finite, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"parameter {self.name} must be one of {', '.join(map(str, self.choices))}, "
                                 f"got {value!r}")
        problem = self.check(value) if self.check else None
        if problem:
            raise ParameterError(f"parameter {self.name} {problem}, got {value!r}")
        return value


def _parse(text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError
    return kind(text)


def parse_list(text: str, kind: type, minimum: float) -> list:
    """'0.1, 0.2' -> [0.1, 0.2], sorted without duplicates; every entry above 0 (floats) or at least
    `minimum` (ints). ParameterError names the first bad entry."""
    what = "positive numbers" if kind is float else f"integers >= {minimum}"
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise ParameterError(f"must be a comma-separated list of {what}")
    values = []
    for item in items:
        try:
            value = kind(item)
        except ValueError:
            raise ParameterError(f"must be a comma-separated list of {what} ({item!r} is not "
                                 f"{'a number' if kind is float else 'an integer'})") from None
        if not (math.isfinite(value) and (value > 0 if kind is float else value >= minimum)):
            raise ParameterError(f"must be a comma-separated list of {what} ({item} is not)")
        values.append(value)
    return sorted(set(values))


def list_check(kind: type, minimum: float = 1) -> Callable[[Any], str | None]:
    """A Param check for a comma-separated list (see `parse_list`)."""
    def check(text):
        try:
            parse_list(text, kind, minimum)
        except ParameterError as e:
            return str(e)
        return None
    return check


def positive(value) -> str | None:
    return None if value > 0 else "must be positive"


def non_negative(value) -> str | None:
    return None if value >= 0 else "must be non-negative"


def at_least(bound) -> Callable[[Any], str | None]:
    return lambda value: None if value >= bound else f"must be at least {bound}"


@dataclass(frozen=True)
class Scenario:
    """A named experiment. `run(params, seed, writer, progress)` simulates, stores theory beside the
    measurement and returns the summary lines to print; `plot(run, path)` draws its figure from the file."""
    name: str
    summary: str
    params: tuple[Param, ...]
    run: Callable
    plot: Callable
    presets: dict = field(default_factory=dict)
    validate: Callable[[dict], str | None] | None = None  # cross-parameter check: an error message or None
    estimate: Callable[[dict], tuple[float, float]] | None = None  # params -> (memory bytes, output bytes)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(f"unknown parameter {name!r} for {self.name} "
                             f"(valid: {', '.join(p.name for p in self.params)})")

    def resolve(self, overrides: dict | None = None, preset: str | None = None) -> dict:
        """Defaults, then the preset, then the overrides; every value converted and checked."""
        values = {p.name: p.default for p in self.params}
        if preset is not None:
            if preset not in self.presets:
                raise ParameterError(f"unknown preset {preset!r} for {self.name} "
                                     f"(valid: {', '.join(self.presets) or 'none'})")
            values.update(self.presets[preset])
        for key, value in (overrides or {}).items():
            values[self.param(key).name] = value
        resolved = {p.name: p.convert(values[p.name]) for p in self.params}
        problem = self.validate(resolved) if self.validate else None
        if problem:
            raise ParameterError(problem)
        return resolved

    def write_run(self, params: dict, seed: int, path: str | Path, progress: bool = False
                  ) -> tuple[str, str, list[str]]:
        """Run with resolved `params` and write the run file at `path` (as ``<path>.partial`` until it is
        closed): what `sgdsim run` and every sweep task do. Returns (status, message, summary lines)."""
        with RunWriter(path, scenario=self.name, params=params, seed=seed) as writer:
            try:
                status, message, lines = self.run(params, seed, writer, progress)
            except Exception as e:
                stop = active_interrupt()
                if stop is None or not stop.requested:
                    raise
                # an engine stopped early by the signal and the scenario could not go on with what it returned
                status, lines = "interrupted", []
                message = f"interrupted by {stop.name}; the scenario stopped ({type(e).__name__}: {e})"
            stop = active_interrupt()
            if stop is not None and stop.requested and status == "complete":
                # a run loop stopped early and the scenario finished with what it had reached
                status, message = "interrupted", f"interrupted by {stop.name}; the scenario stopped with what was reached"
            writer.close(status, message)
        return status, message, lines


# ---------------------------------------------------------------------------------------------- resources

STEP_TIME_BYTES = 16   # the int64 step and float64 time stored (and buffered) with every record of an element


def record_bytes(records: int, *value_shapes: tuple, itemsize: int = 8) -> int:
    """Bytes of `records` rows of elements with these value shapes (uncompressed: step, time and value of
    each): the building block of a scenario's `estimate` for what its recorder stores."""
    per_row = sum(STEP_TIME_BYTES + itemsize * math.prod(shape) for shape in value_shapes)
    return int(records) * per_row


PARTICLE_COPIES = 8   # arrays of one row per particle a particle run holds (state, start, velocity, RNG state,
                      # first hits, divergence steps, the final copy, a reduction's temporary): the estimate's margin


def recorder_estimate(recorder, n_steps: int, particles: int, dim: int) -> tuple[int, int]:
    """(memory, output) in bytes of `sgdsim.simulate` with this `Recorder`: the particle arrays, the
    record-step table and the recorded observables (kept in memory too, as `Outcome.observables`) for memory;
    the recorded observables and snapshots for the run file (uncompressed). A ready-made `Scenario.estimate`
    for scenarios built on one particle run (add what else they hold)."""
    if recorder.log_points:
        records = recorder.log_points + 2
    else:
        every = recorder.every or max(1, n_steps // 100)
        records = -(-n_steps // every) + 1
    shapes = [s for s, on in (((dim,), recorder.mean), ((dim, dim), recorder.covariance), ((), recorder.loss))
              if on]
    if recorder.histogram is not None:
        shapes.append((len(recorder.histogram[1]) - 1,))
    observables = record_bytes(records, *shapes)
    snapshots = record_bytes(records, (min(recorder.snapshot, particles), dim)) if recorder.snapshot else 0
    memory = PARTICLE_COPIES * 8 * particles * dim + STEP_TIME_BYTES * records + observables
    return memory, observables + snapshots


_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*([kmgtp]?)i?b?\s*", re.IGNORECASE)


def parse_size(text: str, what: str) -> int:
    """'500M', '8G', '1.5T', '4096' (bytes; powers of 1024) -> bytes; ParameterError names `what`."""
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise ParameterError(f"{what} must be a size such as 500M, 8G or 2T, got {text!r}")
    return int(float(m.group(1)) * 1024 ** (" kmgtp".find(m.group(2).lower() or " ")))


def size_text(n: float) -> str:
    """Bytes as '7.3 TiB', '512 MiB', '0 B'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def available_memory() -> int:
    """Memory available to a new allocation: MemAvailable of /proc/meminfo, else free physical pages."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_disk(path: str | Path) -> int:
    """Free bytes on the filesystem that will hold `path` (its nearest existing ancestor)."""
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_resources(scenario: Scenario, params: dict | list[dict], out: str | Path, *, parallel: int = 1,
                    max_memory: int | None = None, max_output: int | None = None) -> tuple[float, float] | None:
    """Refuse, before anything is allocated, a run (or the runs of a list of parameter sets, `parallel` at a
    time) whose estimated memory exceeds `max_memory` (default: what the machine has available) or whose
    output exceeds `max_output` (default: the free disk where `out` goes): a one-line ParameterError with both
    numbers and what to change. Returns the estimate (largest memory of one run, total output), None if the
    scenario gives none."""
    if scenario.estimate is None:
        return None
    sets = params if isinstance(params, list) else [params]
    estimates = [scenario.estimate(p) for p in sets]
    memory, output = max(m for m, _ in estimates), sum(o for _, o in estimates)
    runs = len(sets)
    parallel = min(parallel, runs)
    need_memory, need_output = memory * parallel, output
    memory_limit = available_memory() if max_memory is None else max_memory
    output_limit = free_disk(out) if max_output is None else max_output
    many = f" ({runs} runs, {parallel} at a time)" if runs > 1 else ""
    if need_memory > memory_limit:
        raise ParameterError(f"{scenario.name}{many} needs about {size_text(need_memory)} of memory, more than the "
                             f"{size_text(memory_limit)} " + ("available" if max_memory is None else "allowed by "
                             "--max-memory") + "; make the run smaller (or raise --max-memory)")
    if need_output > output_limit:
        raise ParameterError(f"{scenario.name}{many} would write about {size_text(need_output)}, more than the "
                             f"{size_text(output_limit)} " + ("free on the disk of " + str(Path(out).absolute().parent)
                             if max_output is None else "allowed by --max-output")
                             + "; record less often (or raise --max-output)")
    return memory, output


def _load_all() -> tuple[dict[str, Scenario], dict[str, str]]:
    """Load every entry point of the `sgdsim.scenarios` group: (scenarios by name, broken ones by name with
    the reason). A scenario that fails to import (e.g. a third-party plug-in with a missing dependency) does
    not take the others down with it; asking for it by name reports why."""
    return load_group("sgdsim.scenarios", Scenario)


def scenarios() -> dict[str, Scenario]:
    """Every installed scenario that loads, by name (the `sgdsim.scenarios` entry-point group)."""
    return _load_all()[0]


def broken_scenarios() -> dict[str, str]:
    """Installed scenarios that fail to import, with the one-line reason."""
    return _load_all()[1]


def is_installed(name: str) -> bool:
    """Whether a scenario of that name is registered (without importing any scenario module)."""
    return bool(entry_points(group="sgdsim.scenarios", name=name))


def get_scenario(name: str) -> Scenario:
    """The installed scenario `name`, importing only its module (a sweep worker loads one scenario per task)."""
    for ep in entry_points(group="sgdsim.scenarios", name=name):
        try:
            return ep.load()
        except Exception:  # noqa: BLE001 -- reported below, as `_load_all` words it
            break
    return pick("scenario", name, *_load_all())


def figure_path(run_path: str | Path) -> Path:
    """Where the figure of a run file goes: beside it, same stem, .png."""
    return Path(run_path).with_suffix(".png")
