"""Run a particle cloud: advance the compiled solver in chunks between recording times, record observables
and snapshots to the run file, report first passages and stop on divergence.

Observables are computed from the current cloud at each recording step (never from a stored trajectory),
reduced in compiled code over fixed blocks of particles combined in a fixed order (`solvers.particles.observables`):
bit-identical for any Numba or BLAS thread count. The solver advances in chunks of about CHUNK_SECONDS of
work, measured as it goes (never past the next recording step); a chunk costs the steps plus one read and
write of the particles' state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .dynamics import Dynamics, GradientDescent
from ..errors import ParameterError
from .landscapes import Landscape
from ..io.runfile import RunWriter
from ..runloop import cooperative
from ..solvers import Target, get_solver
from ..solvers.particles.observables import Observer

CHUNK_SECONDS = 0.5  # work per call into the compiled kernel: the progress bar's granularity


@dataclass(frozen=True)
class Recorder:
    """What to record and when: every `every` steps, or at `log_points` log-spaced steps (always 0 and the
    last); `snapshot` particles per snapshot (the first ones: particles are exchangeable); `histogram` as
    (axis, edges) for the density of one coordinate; `target` for first-passage events (a box or a level set
    of the loss or the gradient norm, `Target`); `path` for the path observables summed along every
    particle's steps since step 0 (the kernel's): `path_area`, the mean Stratonovich area
    sum (x_0 dx_1 - x_1 dx_0) / 2 of the first two coordinates, and `path_quadratic_variation`, the mean
    sum |dx|^2 (per-particle values in `Outcome.path`)."""
    every: int | None = None
    log_points: int | None = None
    snapshot: int = 0
    mean: bool = True
    covariance: bool = True
    loss: bool = True
    histogram: tuple | None = None
    target: Target | None = None
    stop_when_all_hit: bool = False
    path: bool = False

    def steps(self, n_steps: int) -> np.ndarray:
        if self.log_points:
            s = np.unique(np.round(np.logspace(0, np.log10(max(n_steps, 1)), self.log_points)).astype(np.int64))
            return np.unique(np.concatenate([[0], s[s <= n_steps], [n_steps]]))
        every = self.every or max(1, n_steps // 100)
        return np.unique(np.concatenate([np.arange(0, n_steps, every), [n_steps]])).astype(np.int64)


@dataclass
class Outcome:
    """What a run returns: status and message, final cloud, first-passage steps, in-memory observables."""
    status: str
    message: str
    steps_done: int
    positions: np.ndarray
    first_hit: np.ndarray
    observables: dict = field(default_factory=dict)   # name -> (steps, times, values)
    path: np.ndarray | None = None   # (M, 2) per particle: area, quadratic variation (with Recorder(path=True))


def _clock(dynamics: Dynamics, n_steps: int):
    """steps -> t_n = sum_{k<n} eta_k: step * step_time (lr, or lr / substeps for an SME) for a constant rate,
    else the schedule's cumulative sum, tabulated once per run."""
    if isinstance(dynamics, GradientDescent) and dynamics.schedule.kind != "constant":
        table = np.concatenate([[0.0], np.cumsum(dynamics.schedule.rates(dynamics.lr, np.arange(n_steps)))])
        return lambda steps: table[np.asarray(steps, dtype=np.int64)]
    return lambda steps: np.asarray(steps) * dynamics.step_time


def simulate(landscape: Landscape, dynamics: Dynamics, x0: np.ndarray, *, n_steps: int, seed: int,
             recorder: Recorder = Recorder(), writer: RunWriter | None = None, progress: bool = True,
             limit: float = 1e10, prefix: str = "") -> Outcome:
    """Advance the cloud x0 (M, d) for n_steps under `dynamics` on `landscape`, recording as `recorder` says.

    Recorded names get `prefix` (e.g. "sgd_d8_"), so one run file can hold several clouds. With a target,
    the first-passage event list exists even when no particle reaches it.

    A run that diverges (non-finite or |x| > limit) stops with status "diverged" and a message naming the
    step and the particle; everything recorded before it stays in the file.
    """
    x0 = np.asarray(x0, dtype=float)
    if x0.ndim != 2 or x0.shape[1] != landscape.dim:
        raise ParameterError(f"x0 must have shape (particles, {landscape.dim}), got {x0.shape}")
    if not (isinstance(n_steps, (int, np.integer)) and n_steps >= 0):
        raise ParameterError(f"n_steps must be a non-negative integer, got {n_steps!r}")
    solver = get_solver(dynamics.solver)(landscape=landscape.code, theta=landscape.theta, data=landscape.data,
                                         x0=x0, seed=seed, target=recorder.target, limit=limit, path=recorder.path,
                                         **dynamics.solver_arguments(landscape))
    record_steps = recorder.steps(n_steps)
    clock = _clock(dynamics, n_steps)
    times = clock(record_steps)
    sink = _Sink(writer, recorder, landscape, x0.shape, prefix)
    reported = np.zeros(len(x0), dtype=bool)
    chunk = 8  # steps of the first chunk, which measures the cost of a step
    status, message = "complete", ""
    bar = tqdm(total=n_steps, disable=None if progress else True, delay=1.0, unit="step", leave=False)
    with cooperative() as stop, bar:   # SIGINT/SIGTERM under `sgdsim run`: stop at the next chunk
        sink.record(solver, record_steps[0], times[0])
        for target_step, t in zip(record_steps[1:], times[1:]):
            while solver.step < target_step:
                n = min(chunk, target_step - solver.step)
                began = time.perf_counter()
                solver.advance(n)
                chunk = max(1, int(CHUNK_SECONDS * n / max(time.perf_counter() - began, 1e-9)))
                bar.update(n)
                diverged = solver.first_divergence()
                if diverged is not None:
                    step, particle = diverged
                    status = "diverged"
                    message = (f"diverged at step {step} (particle {particle}): an iterate became non-finite "
                               f"or exceeded |x| > {limit:g}; lower the learning rate")
                    sink.events("divergence", solver.diverged_at >= 0, solver.diverged_at, clock)
                    break
                if stop is not None and stop.requested:
                    status = "interrupted"
                    message = f"interrupted by {stop.name} at step {solver.step} of {n_steps}"
                    sink.record(solver, solver.step, float(clock([solver.step])[0]))
                    break
            if status != "complete":
                break
            sink.record(solver, target_step, t)
            if recorder.target is not None:
                new = (solver.first_hit >= 0) & ~reported
                sink.events("first_passage", new, solver.first_hit, clock)
                reported |= new
                if recorder.stop_when_all_hit and reported.all():
                    message = f"every particle reached the target by step {solver.step}"
                    break
            sink.flush()
    sink.flush()  # the early exits (divergence, every particle at the target) skip the flush in the loop
    return Outcome(status, message, solver.step, solver.x, solver.first_hit, sink.memory,
                   solver.path.copy() if recorder.path else None)


class _Sink:
    """Computes the recorded observables of the cloud and sends them to the writer and to memory."""

    def __init__(self, writer, recorder, landscape, shape, prefix):
        self.writer, self.recorder, self.landscape, self.prefix = writer, recorder, landscape, prefix
        self.memory: dict = {}
        self.elements: dict = {}
        m, d = shape
        self.specs = {}
        if recorder.mean:
            self.specs["mean"] = ((d,), {"spatial": np.arange(d)})
        if recorder.covariance:
            self.specs["covariance"] = ((d, d), {"spatial_i": np.arange(d), "spatial_j": np.arange(d)})
        if recorder.loss:
            self.specs["loss"] = ((), {})
        if recorder.path:
            self.specs["path_area"] = ((), {})
            self.specs["path_quadratic_variation"] = ((), {})
        if recorder.histogram is not None:
            axis, edges = recorder.histogram
            edges = np.asarray(edges, dtype=float)
            self.specs["density"] = ((len(edges) - 1,), {"x": 0.5 * (edges[1:] + edges[:-1])})
        self.snapshot = min(recorder.snapshot, m)
        self.observer = Observer(code=landscape.code, theta=landscape.theta, data=landscape.data,
                                 mean=recorder.mean, covariance=recorder.covariance, loss=recorder.loss,
                                 histogram=recorder.histogram)
        if writer is not None:
            for name, (shape_, coords) in self.specs.items():
                attrs = {"edges": edges, "axis": axis} if name == "density" else None
                self.elements[name] = writer.element(prefix + name, shape_, coords=coords or None, attrs=attrs)
            if self.snapshot:
                self.elements["cloud"] = writer.element(prefix + "cloud", (self.snapshot, d), group="particles")
        self.event_writers: dict = {}
        if writer is not None and recorder.target is not None:
            self.event_writers["first_passage"] = writer.events(prefix + "first_passage")

    def _observe(self, solver) -> dict:
        x = solver.x
        reduced = self.observer.observe(x) if set(self.specs) - {"path_area", "path_quadratic_variation"} else {}
        out = {name: reduced[name] for name in ("mean", "covariance", "loss") if name in self.specs}
        if "path_area" in self.specs:
            out["path_area"] = np.float64(solver.path[:, 0].mean())
            out["path_quadratic_variation"] = np.float64(solver.path[:, 1].mean())
        if "density" in self.specs:
            out["density"] = reduced["counts"] / (len(x) * np.diff(self.observer.edges))
        return out

    def record(self, solver, step, time):
        for name, value in self._observe(solver).items():
            steps, times, values = self.memory.setdefault(name, ([], [], []))
            steps.append(int(step)), times.append(float(time)), values.append(value)
            if name in self.elements:
                self.elements[name].append(int(step), float(time), value)
        if self.snapshot and self.writer is not None:
            self.elements["cloud"].append(int(step), float(time), solver.x[:self.snapshot])

    def events(self, name, mask, steps, clock):
        if self.writer is None or not mask.any():
            return
        if name not in self.event_writers:
            self.event_writers[name] = self.writer.events(self.prefix + name)
        particles = np.flatnonzero(mask)
        s = steps[particles]
        self.event_writers[name].append(particles, s, clock(s).astype(float))

    def flush(self):
        if self.writer is not None:
            self.writer.flush()
