"""The one run loop every engine uses: a schedule of record steps, chunks sized by measured time, a progress
bar, divergence stops that name the step and the member, and SIGINT/SIGTERM turned into a clean stop.

An engine gives three callables: ``advance(k)`` (k more steps, compiled, never calling back into Python),
``record(step)`` (observables of the current state to the run file, flushed), and optionally
``diverged()`` (a message naming the step and the member, or None). `drive` advances between record steps in
chunks of about `target_seconds` of work, measured as it goes, so the progress bar, the signal check and the
divergence check cost nothing per step. A SIGINT or SIGTERM is noted by `Interrupt` and acted on at the next
chunk boundary: the state reached is recorded and the loop returns `Status.INTERRUPTED`; the caller closes the
run file with that status and exits with `Interrupt.exit_code` (130 for SIGINT, 143 for SIGTERM).
"""
from __future__ import annotations

import enum
import functools
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from .errors import ParameterError

__all__ = ["Status", "Schedule", "Interrupt", "StopSignal", "LoopResult", "drive", "active_interrupt"]


class Status(str, enum.Enum):
    """How a run ended (the run file's root attribute `status`); `running` while it is written, `killed` set by
    `sgdsim recover` on the file of a run killed with SIGKILL."""
    RUNNING = "running"
    COMPLETE = "complete"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    KILLED = "killed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Schedule:
    """Record steps: every `every` steps, or `log_points` log-spaced steps, or the given `steps`; step 0 and the
    last step are always recorded. Steps are generated one at a time (`after`), never as a per-step array."""
    every: int | None = None
    log_points: int | None = None
    steps: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        given = [v is not None for v in (self.every, self.log_points, self.steps)]
        if sum(given) > 1:
            raise ParameterError("a schedule takes one of every, log_points or steps")
        if self.every is not None and self.every < 1:
            raise ParameterError(f"record every must be >= 1 step, got {self.every}")
        if self.log_points is not None and self.log_points < 2:
            raise ParameterError(f"log-spaced recording needs >= 2 points, got {self.log_points}")
        if self.steps is not None:
            steps = tuple(int(s) for s in self.steps)
            if any(s < 0 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
                raise ParameterError("given record steps must be increasing and >= 0")
            object.__setattr__(self, "steps", steps)

    def after(self, step: int, n_steps: int) -> int:
        """The first record step > step (n_steps at the latest)."""
        if step >= n_steps:
            return n_steps
        if self.steps is not None:
            later = [s for s in self.steps if step < s < n_steps]
            return later[0] if later else n_steps
        if self.log_points is not None:
            grid = _log_grid(n_steps, self.log_points)
            later = grid[np.searchsorted(grid, step, side="right")] if step < grid[-1] else n_steps
            return min(int(later), n_steps)
        every = self.every or max(1, n_steps // 100)
        return min((step // every + 1) * every, n_steps)

    def __call__(self, n_steps: int) -> Iterator[int]:
        """Every record step of a run of n_steps, from 0 to n_steps."""
        step = 0
        yield 0
        while step < n_steps:
            step = self.after(step, n_steps)
            yield step

    def count(self, n_steps: int) -> int:
        """How many record steps (for resource estimates); O(records), never O(steps)."""
        if self.every is not None or (self.steps is None and self.log_points is None):
            every = self.every or max(1, n_steps // 100)
            return -(-n_steps // every) + 1 if n_steps else 1
        return sum(1 for _ in self(n_steps))


@functools.lru_cache(maxsize=64)
def _log_grid(n_steps: int, points: int) -> np.ndarray:
    """The log-spaced record steps >= 1: `points` values 10^(k log10(n) / (points - 1)) rounded to integers
    (half to even), duplicates merged, as np.logspace gives them (so n_steps itself is last)."""
    grid = np.unique(np.round(np.logspace(0, np.log10(max(n_steps, 1)), points)).astype(np.int64))
    return grid[grid <= n_steps]


class StopSignal(BaseException):
    """SIGTERM (or SIGINT) arriving outside a chunked loop: unwinds like KeyboardInterrupt, so the run file is
    closed with status "interrupted" at its last flush."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


_ACTIVE: list[Interrupt] = []
_DRIVING = [0]


class Interrupt:
    """Within `with Interrupt() as stop:` (what `sgdsim run` does), SIGINT and SIGTERM are noted in
    `stop.signal`: a run loop (`drive`) that is running stops at its next chunk boundary with the state reached
    recorded; outside one, the signal unwinds at once (KeyboardInterrupt for SIGINT, StopSignal for SIGTERM).
    A second SIGINT always unwinds at once. Outside the main thread it installs nothing."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict = {}

    def _note(self, signum, frame) -> None:
        again = self.signal is not None
        self.signal = signum
        if _DRIVING[0] == 0 or (again and signum == signal.SIGINT):
            raise KeyboardInterrupt if signum == signal.SIGINT else StopSignal(signum)

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._note)
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        _ACTIVE.remove(self)
        return False

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by it (130 SIGINT, 143 SIGTERM)."""
        return 128 + int(self.signal) if self.signal is not None else 0


def active_interrupt() -> Interrupt | None:
    """The innermost `Interrupt` guard in force, if any."""
    return _ACTIVE[-1] if _ACTIVE else None


class cooperative:
    """`with cooperative() as stop:` marks a loop that checks `stop.requested` (stop is the active guard or
    None) at its chunk boundaries itself, so a signal only sets the flag instead of unwinding from wherever
    the interpreter happens to be (an exception raised inside a finalizer or a C callback can be lost)."""

    def __enter__(self) -> Interrupt | None:
        _DRIVING[0] += 1
        return active_interrupt()

    def __exit__(self, *exc) -> bool:
        _DRIVING[0] -= 1
        return False


@dataclass(frozen=True)
class LoopResult:
    status: Status
    message: str
    steps_done: int


def drive(advance: Callable[..., int | None], n_steps: int, schedule: Schedule, record: Callable[[int], None], *,
          diverged: Callable[[], str | None] | None = None, stopped: Callable[[], bool] | None = None,
          progress: bool = False, unit: str = "step", target_seconds: float = 0.3, start: int = 0,
          records_inside: int = 0) -> LoopResult:
    """Advance from step `start` to `n_steps`, calling `record(step)` at every record step of `schedule`.

    `advance(k)` takes k steps, or fewer when the engine stops by itself (it then returns how many it took and
    `stopped()` is true): the step reached is recorded and the loop ends complete. Chunks grow or shrink to
    about `target_seconds` of work (never past the next record step); after every chunk come the progress bar,
    the divergence check (stop, status diverged, its message) and the interrupt check (under an `Interrupt`
    guard: record the step reached, status interrupted).

    With `records_inside` = R > 0 the engine takes the records itself: chunks run past record steps (at most
    R of them per chunk) and are called as `advance(k, steps)`, `steps` the record steps in (step, step + k]
    (an int64 array), which the engine records as it crosses them (dropping those at or after a divergence);
    `record(step)` is then called only for step `start` and for a stop or an interrupt off a record step."""
    step, last = start, start
    record(step)
    problem = diverged() if diverged is not None else None
    if problem:
        return LoopResult(Status.DIVERGED, problem, step)

    def following(s: int) -> int:
        return schedule.after(s, n_steps) if s < n_steps else n_steps + 1

    upcoming = following(step)   # the next record step
    chunk = 8   # the first chunk measures the cost of a step (and pays for compilation)
    bar = tqdm(total=n_steps - start, disable=None if progress else True, delay=1.0, unit=unit, leave=False)
    with cooperative() as interrupt, bar:
        while step < n_steps:
            end = min(n_steps, step + chunk)
            inside: list[int] = []
            if records_inside:
                while upcoming <= end and len(inside) < records_inside:
                    inside.append(upcoming)
                    upcoming = following(upcoming)
                if len(inside) == records_inside:
                    end = inside[-1]
            else:
                end = min(end, upcoming)
            k = end - step
            began = time.perf_counter()
            taken = advance(k, np.asarray(inside, dtype=np.int64)) if records_inside else advance(k)
            taken = k if taken is None else int(taken)
            elapsed = time.perf_counter() - began
            step += taken
            bar.update(taken)
            if taken:
                chunk = max(1, min(1 << 40, int(target_seconds * taken / max(elapsed, 1e-9))))
            problem = diverged() if diverged is not None else None
            if problem:
                return LoopResult(Status.DIVERGED, problem, step)
            last = max([last, *(s for s in inside if s <= step)])
            if taken < k and stopped is not None and stopped():
                if step != last:
                    record(step)
                return LoopResult(Status.COMPLETE, "", step)
            if interrupt is not None and interrupt.requested:
                if step != last:
                    record(step)
                return LoopResult(Status.INTERRUPTED, f"interrupted by {interrupt.name} at step {step} "
                                                      f"of {n_steps}", step)
            if not records_inside and step == upcoming:
                record(step)
                last, upcoming = step, following(step)
    return LoopResult(Status.COMPLETE, "", step)


def record_steps_array(schedule: Schedule, n_steps: int) -> np.ndarray:
    """All record steps as an array (its length is the number of records, not of steps)."""
    return np.fromiter(schedule(n_steps), dtype=np.int64)
