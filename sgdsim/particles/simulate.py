"""Run a particle cloud on the one run loop (`sgdsim.runloop.drive`): advance the compiled solver in chunks,
record observables and snapshots to the run file, report first passages and stop on divergence.

Observables are computed from the cloud at each recording step (never from a stored trajectory), reduced in
compiled code over fixed blocks of particles combined in a fixed order (`solvers.particles.observables`):
bit-identical for any Numba or BLAS thread count and any chunking. The record steps come from
`runloop.Schedule` (`Recorder.schedule`). Chunks of about CHUNK_SECONDS of work run past record steps: the
kernel takes the records of the steps it crosses itself (at most RECORDS_PER_CHUNK per call), from the
positions it holds, so a record costs no pass over the particles' state and no Python; with path
observables or `stop_when_all_hit` a chunk stops at every record step instead (same records, same bits).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dynamics import Clock, Dynamics, GradientDescent
from ..errors import ParameterError
from .landscapes import Landscape
from ..io.runfile import RunWriter
from ..runloop import Schedule, Status, active_interrupt, drive, record_steps_array
from ..solvers import Target, get_solver
from ..solvers.particles.observables import Observer

CHUNK_SECONDS = 1.0  # work per call into the compiled kernel: the progress bar's and an interrupt's granularity
# (a call also reads and writes the whole state once: 16 ms at M = 1e6 in 1-D, 30 ms in 10-D)
RECORDS_PER_CHUNK = 64  # records a kernel call takes at most (fewer in many dimensions: solver.records_per_call)


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

    def schedule(self) -> Schedule:
        """The record steps as a `runloop.Schedule`: log-spaced with log_points, else every `every` steps
        (about 100 records without either)."""
        if self.log_points:
            return Schedule(log_points=self.log_points)
        return Schedule(every=self.every or None)

    def steps(self, n_steps: int) -> np.ndarray:
        return record_steps_array(self.schedule(), n_steps)


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


def _clock(dynamics: Dynamics):
    """steps -> t_n = sum_{k<n} eta_k: step * step_time (lr, or lr / substeps for an SME) for a constant rate,
    else the schedule's running sum (`Clock.at`: one stored time per 4096 steps, not a table of every step)."""
    if isinstance(dynamics, GradientDescent) and dynamics.schedule.kind != "constant":
        return Clock(dynamics.lr, dynamics.schedule).at
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
    n_steps = int(n_steps)
    solver = get_solver(dynamics.solver)(landscape=landscape.code, theta=landscape.theta, data=landscape.data,
                                         x0=x0, seed=seed, target=recorder.target, limit=limit, path=recorder.path,
                                         **dynamics.solver_arguments(landscape))
    schedule = recorder.schedule()
    clock = _clock(dynamics)
    sink = _Sink(writer, recorder, landscape, x0.shape, prefix, clock)
    in_kernel = not (recorder.path or recorder.stop_when_all_hit)  # else chunks stop at every record step

    def take(steps, n, passages):
        """Advance n steps taking the records of `steps`; write those before any divergence (and the first
        passages up to each, unless this is the record of step 0 or of an interrupted run)."""
        slots, snaps = solver.advance(n, steps, sink.observer, sink.snapshot)
        bad = solver.diverged_at[solver.diverged_at >= 0]
        keep = len(steps) if bad.size == 0 else int(np.searchsorted(steps, bad.min(), side="left"))
        for r in range(keep):
            sink.record(solver, int(steps[r]), sink.observer.result(*(slots[k][r] for k in sink.KEYS)), snaps[r],
                        passages)
        sink.flush()

    def record(step):  # in-kernel mode: step 0, or a stop off the record steps; else every record step
        take(np.array([step], dtype=np.int64), 0, not in_kernel and step > 0 and not _interrupted())

    def advance_inside(k, steps):
        take(steps, k, True)

    def advance(k):
        if sink.all_hit:
            return 0
        solver.advance(k)

    def diverged():
        found = solver.first_divergence()
        if found is None:
            return None
        step, particle = found
        return (f"diverged at step {step} (particle {particle}): an iterate became non-finite or exceeded "
                f"|x| > {limit:g}; lower the learning rate")

    result = drive(advance_inside if in_kernel else advance, n_steps, schedule, record,
                   diverged=diverged, stopped=lambda: sink.all_hit, progress=progress,
                   target_seconds=CHUNK_SECONDS,
                   records_inside=min(RECORDS_PER_CHUNK, solver.records_per_call) if in_kernel else 0)
    status, message = str(result.status), result.message
    if result.status == Status.DIVERGED:
        sink.events("divergence", solver.diverged_at >= 0, solver.diverged_at)
    elif sink.all_hit:
        message = f"every particle reached the target by step {solver.step}"
    sink.flush()
    return Outcome(status, message, solver.step, solver.x, solver.first_hit, sink.memory,
                   solver.path.copy() if recorder.path else None)


def _interrupted() -> bool:
    stop = active_interrupt()
    return stop is not None and stop.requested


class _Sink:
    """Turns the recorded partial sums into observables and sends them to the writer and to memory; reports
    the first passages of each record step."""
    KEYS = ("sizes", "shifts", "firsts", "seconds", "losses", "counts")

    def __init__(self, writer, recorder, landscape, shape, prefix, clock):
        self.writer, self.recorder, self.landscape, self.prefix, self.clock = writer, recorder, landscape, prefix, clock
        self.memory: dict = {}
        self.elements: dict = {}
        m, d = shape
        self.m = m
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
        self.snapshot = min(recorder.snapshot, m) if writer is not None else 0
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
        self.reported = np.zeros(m, dtype=bool)
        self.all_hit = False

    def record(self, solver, step, reduced, cloud, passages):
        time = float(self.clock([step])[0])
        out = {name: reduced[name] for name in ("mean", "covariance", "loss") if name in self.specs}
        if "path_area" in self.specs:
            out["path_area"] = np.float64(solver.path[:, 0].mean())
            out["path_quadratic_variation"] = np.float64(solver.path[:, 1].mean())
        if "density" in self.specs:
            out["density"] = reduced["counts"] / (self.m * np.diff(self.observer.edges))
        for name, value in out.items():
            steps, times, values = self.memory.setdefault(name, ([], [], []))
            steps.append(int(step)), times.append(time), values.append(value)
            if name in self.elements:
                self.elements[name].append(int(step), time, value)
        if self.snapshot:
            self.elements["cloud"].append(int(step), time, cloud)
        if passages and self.recorder.target is not None:
            new = (solver.first_hit >= 0) & (solver.first_hit <= step) & ~self.reported
            self.events("first_passage", new, solver.first_hit)
            self.reported |= new
            self.all_hit = self.recorder.stop_when_all_hit and bool(self.reported.all())

    def events(self, name, mask, steps):
        if self.writer is None or not mask.any():
            return
        if name not in self.event_writers:
            self.event_writers[name] = self.writer.events(self.prefix + name)
        particles = np.flatnonzero(mask)
        s = steps[particles]
        self.event_writers[name].append(particles, s, self.clock(s).astype(float))

    def flush(self):
        if self.writer is not None:
            self.writer.flush()
