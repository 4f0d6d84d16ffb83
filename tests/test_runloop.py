"""The run loop: record schedules without per-step arrays, chunks that never cross a record step, divergence
and interrupt stops at chunk boundaries with the state reached recorded."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from sgdsim.errors import ParameterError
from sgdsim.runloop import Interrupt, Schedule, Status, StopSignal, drive, record_steps_array


@pytest.mark.parametrize("schedule, n, expected", [
    (Schedule(every=3), 10, [0, 3, 6, 9, 10]), (Schedule(every=5), 10, [0, 5, 10]),
    (Schedule(steps=(2, 7, 20)), 10, [0, 2, 7, 10]), (Schedule(), 300, list(range(0, 301, 3))),
    (Schedule(log_points=4), 1000, [0, 1, 10, 100, 1000]),
])
def test_schedules(schedule, n, expected):
    assert record_steps_array(schedule, n).tolist() == expected
    assert schedule.count(n) == len(expected)


def test_a_billion_steps_recorded_every_step_builds_nothing_per_step():
    schedule = Schedule(every=1)
    assert schedule.count(10 ** 9) == 10 ** 9 + 1 and schedule.after(123_456_788, 10 ** 9) == 123_456_789


@pytest.mark.parametrize("kw", [dict(every=0), dict(log_points=1), dict(steps=(3, 2)), dict(every=2, log_points=3)])
def test_bad_schedules_are_refused(kw):
    with pytest.raises(ParameterError):
        Schedule(**kw)


class Counter:
    def __init__(self, limit=None):
        self.step, self.chunks, self.records, self.limit = 0, [], [], limit

    def advance(self, k):
        self.chunks.append((self.step, k))
        self.step += k

    def record(self, step):
        assert step == self.step
        self.records.append(step)

    def diverged(self):
        return f"diverged at step {self.step} (member 3)" if self.limit and self.step >= self.limit else None


def test_drive_records_exactly_the_schedule_and_chunks_stop_at_records():
    c = Counter()
    result = drive(c.advance, 1000, Schedule(every=300), c.record)
    assert result == type(result)(Status.COMPLETE, "", 1000)
    assert c.records == [0, 300, 600, 900, 1000]
    records = set(c.records)
    assert all(not any(a < r < a + k for r in records) for a, k in c.chunks)


def test_divergence_stops_the_loop_and_names_step_and_member():
    c = Counter(limit=50)
    result = drive(c.advance, 1000, Schedule(every=100), c.record, diverged=c.diverged)
    assert result.status is Status.DIVERGED and "member 3" in result.message and 50 <= result.steps_done <= 100


def test_sigterm_stops_at_the_next_chunk_and_records_the_step_reached():
    c = Counter()

    def advance(k):
        c.advance(k)
        if c.step >= 40 and not stop.requested:
            os.kill(os.getpid(), signal.SIGTERM)

    with Interrupt() as stop:
        result = drive(advance, 10 ** 6, Schedule(every=100), c.record)
    assert result.status is Status.INTERRUPTED and "SIGTERM" in result.message
    assert c.records[-1] == result.steps_done < 10 ** 6 and stop.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # the handler is restored


def test_outside_a_loop_sigterm_unwinds_at_once():
    with pytest.raises(StopSignal):
        with Interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10 ** 8):   # the handler runs between bytecodes
                pass


def test_an_engine_that_stops_by_itself_is_recorded_once_and_complete():
    c = Counter()

    def advance(k):
        take = min(k, 250 - c.step)
        c.advance(take)
        return take

    result = drive(advance, 1000, Schedule(every=100), c.record, stopped=lambda: c.step >= 250)
    assert result.status is Status.COMPLETE and result.steps_done == 250
    assert c.records == [0, 100, 200, 250]


class InsideCounter(Counter):
    """An engine that takes the records of the steps its chunks cross itself (records_inside)."""

    def advance(self, k, steps):
        assert all(self.step < s <= self.step + k for s in steps)
        self.chunks.append((self.step, k))
        self.records.extend(int(s) for s in steps)
        self.step += k


@pytest.mark.parametrize("per_chunk", [1, 3, 1000])
def test_records_inside_chunks_give_the_same_records(per_chunk):
    engine = InsideCounter()
    result = drive(engine.advance, 100, Schedule(every=7), engine.record, records_inside=per_chunk,
                   target_seconds=1e9)
    assert result.status == Status.COMPLETE and result.steps_done == 100
    assert engine.records == record_steps_array(Schedule(every=7), 100).tolist()
    assert all(sum(s < r <= s + k for r in engine.records) <= per_chunk for s, k in engine.chunks)
    if per_chunk == 1000:  # after the first chunk of 8 steps, one chunk runs past every remaining record
        assert engine.chunks == [(0, 8), (8, 92)]


def test_records_inside_divergence_stops_at_the_chunk():
    engine = InsideCounter(limit=50)
    result = drive(engine.advance, 100, Schedule(every=7), engine.record, diverged=engine.diverged,
                   records_inside=2, target_seconds=1e9)
    assert result.status == Status.DIVERGED and "member 3" in result.message and result.steps_done >= 50


def test_log_schedule_is_numpy_logspace_rounded():
    """The log-spaced steps are those of np.logspace rounded (what Recorder(log_points=...) recorded)."""
    for n, points in ((10_000, 20), (7, 50), (1000, 4), (123_457, 33), (2_000_000, 200)):
        grid = np.unique(np.round(np.logspace(0, np.log10(n), points)).astype(np.int64))
        expected = np.unique(np.concatenate([[0], grid[grid <= n], [n]]))
        assert record_steps_array(Schedule(log_points=points), n).tolist() == expected.tolist()
