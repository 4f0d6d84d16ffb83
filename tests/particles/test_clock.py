"""dynamics.Clock: the rates and the continuous time t_n = sum_{k<n} eta_k followed chunk by chunk equal the
per-step table (np.cumsum of every rate) bit for bit, for any chunking, every schedule and given rates."""
import numpy as np
import pytest

from sgdsim.particles.dynamics import Clock, Schedule

SCHEDULES = [Schedule(), Schedule("step", decay=0.5, every=7), Schedule("cosine", lr_min=0.01, every=50)]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s.kind)
@pytest.mark.parametrize("chunks", [[80], [1] * 80, [3, 17, 1, 59], [33, 47]])
def test_chunked_time_is_the_per_step_table(schedule, chunks):
    lr, n = 0.37, sum(chunks)
    rates = schedule.rates(lr, np.arange(n))
    table = np.concatenate([[0.0], np.cumsum(rates)])
    clock = Clock(lr, schedule)
    assert clock.time(0) == 0.0
    step = 0
    for k in chunks:
        taken = clock.take(k)
        np.testing.assert_array_equal(taken, rates[step:step + k])
        inside = np.arange(step, step + k + 1)
        np.testing.assert_array_equal(clock.time(inside), table[inside])
        step += k


def test_given_rates_replace_the_schedule():
    given = np.random.default_rng(3).uniform(0.1, 1.0, 40)
    clock = Clock(5.0, Schedule(), given)
    clock.take(15)
    clock.take(25)
    assert clock.time(40) == np.cumsum(given)[-1]
    np.testing.assert_array_equal(clock.rates(10, 3), given[10:13])


def test_a_wrong_running_sum_would_show():
    """The check above can fail: t from lr x step is not the cumulative sum of a constant rate bit for bit."""
    lr, n = 0.1, 1000
    assert not np.array_equal(np.arange(n + 1) * lr, np.concatenate([[0.0], np.cumsum(np.full(n, lr))]))


@pytest.mark.parametrize("schedule", SCHEDULES[1:], ids=lambda s: s.kind)
def test_time_at_any_step_is_the_per_step_table(schedule):
    """`at` (what simulate uses for events and records of any past step) keeps one time per MARK steps and
    still gives the table's values bit for bit, across marks and in any order of the queries."""
    lr, n = 0.37, 3 * Clock.MARK + 123
    table = np.concatenate([[0.0], np.cumsum(schedule.rates(lr, np.arange(n)))])
    clock = Clock(lr, schedule)
    steps = np.random.default_rng(4).integers(0, n + 1, 500)
    steps[:4] = [n, 0, Clock.MARK, Clock.MARK - 1]
    np.testing.assert_array_equal(clock.at(steps), table[steps])
    np.testing.assert_array_equal(clock.at(steps[::-1].reshape(20, 25)), table[steps[::-1]].reshape(20, 25))
    assert len(clock.marks) == n // Clock.MARK + 1
