"""The block-vectorized particle kernel (solvers/particles/block.py), the lane draws it uses (solvers/rng.py) and
the observables reduced in compiled code (solvers/particles/observables.py).

- The block kernel is bit-identical to the scalar kernel (positions, streams, first passages, divergence
  steps) and equals the NumPy twin `solvers.particles.reference` (streams and events exactly, positions to round-off,
  as the scalar kernel does), on every configuration it covers.
- Bounded integers are unbiased (Lemire's rejection): a bound where the multiply-shift alone is off by 1/6.
- Observables equal NumPy's (np.cov, np.histogram) and are bit-identical for NUMBA_NUM_THREADS 1/2,
  OPENBLAS_NUM_THREADS 1/2 and any chunking of the steps.

Numba compiles three block-kernel variants here: double-well/tilt/none, least-squares/minibatch/none,
quadratic/full/isotropic (the scalar kernel reuses variants of test_particles.py).
"""
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from sgdsim.particles import dynamics as D
from sgdsim.particles import landscapes as L
from sgdsim.particles.simulate import Recorder, simulate
from sgdsim.solvers import ParticleSolver, Target
from sgdsim.solvers.particles import reference
from sgdsim.solvers import rng as R
from sgdsim.solvers.particles.observables import Observer

RNG = np.random.default_rng(5)
A3, B3 = RNG.normal(size=(40, 3)), RNG.normal(size=40)

# landscape, dynamics, x0 (particles are not a multiple of a block, to leave a ragged last block); the least-squares
# batches 4, 2 and 7 take the kernel's four-example groups only, single examples only, and both
CASES = {
    "tilt-replace": (L.finite_sum_double_well(32, 3.0, seed=2), D.SGD(lr=0.05, batch=3),
                     np.linspace(-1.5, 1.5, 300)[:, None]),
    "tilt-distinct-cosine-diverging": (
        L.finite_sum_double_well(32, 3.0, seed=2),
        D.SGD(lr=0.05, batch=5, replace=False, schedule=D.Schedule("cosine", every=30)),
        np.concatenate([np.linspace(-1.5, 1.5, 290), np.linspace(20.0, 60.0, 10)])[:, None]),
    "least-squares-replace": (L.Regression(A3, B3), D.SGD(lr=0.05, batch=4), RNG.normal(size=(150, 3))),
    "least-squares-batch-2": (L.Regression(A3, B3), D.SGD(lr=0.05, batch=2), RNG.normal(size=(150, 3))),
    "least-squares-distinct": (L.Regression(A3, B3), D.SGD(lr=0.05, batch=7, replace=False),
                               RNG.normal(size=(150, 3))),
    "langevin-quadratic": (L.Quadratic([0.5, 2.0, 8.0]), D.Langevin(lr=0.02, temperature=0.3),
                           RNG.normal(scale=0.5, size=(130, 3))),
}
TARGET = {1: Target((0.0,), (5.0,), "enter"), 3: Target((-0.6,) * 3, (0.6,) * 3, "exit")}


def _solver(name, vectorized, seed=11):
    landscape, dynamics, x0 = CASES[name]
    solver = ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data, x0=x0,
                            seed=seed, target=TARGET[landscape.dim], limit=1e3,
                            **dynamics.solver_arguments(landscape))
    assert solver.vectorized  # every case here is one the block kernel covers
    solver.vectorized = vectorized
    return solver


@pytest.mark.parametrize("name", CASES)
def test_block_kernel_is_bit_identical_to_scalar_kernel_and_equals_the_twin(name):
    landscape = CASES[name][0]
    block, scalar = _solver(name, True), _solver(name, False)
    for solver in (block, scalar):
        solver.advance(7)
    expected = reference.advance(block, 33, grad=lambda x: landscape.grad(x[None])[0],
                                 example_grad=lambda x, i: landscape.example_grads(x)[i])
    for solver in (block, scalar):
        solver.advance(33)
    for key in ("x", "states", "first_hit", "diverged_at"):
        assert np.array_equal(getattr(block, key), getattr(scalar, key)), key
    np.testing.assert_allclose(block.x, expected["x"], rtol=1e-10, atol=1e-12)
    for key in ("states", "first_hit", "diverged_at"):
        np.testing.assert_array_equal(getattr(block, key), expected[key], err_msg=key)


def test_block_cases_exercise_what_they_claim():
    """Divergence, first passages, ziggurat rejections and repeated draws without replacement all happen."""
    diverging = _solver("tilt-distinct-cosine-diverging", True)
    diverging.advance(40)
    assert 0 < np.sum(diverging.diverged_at > 0) < len(diverging.x)
    assert np.all(diverging.diverged_at[-10:] > 0)
    langevin = _solver("langevin-quadratic", True)
    langevin.advance(40)
    assert 0 < np.sum(langevin.first_hit > 0) < len(langevin.x)
    # about 1% of ziggurat draws take the slow path: some lane consumed more than one word per normal
    probe = _solver("langevin-quadratic", True)
    words = np.array([_words_used(s0, s1) for s0, s1 in zip(probe.states, langevin.states)])
    assert np.any(words > 40 * 3)


def _words_used(start, end, limit=1000):
    """How many xoshiro256++ outputs took a stream from `start` to `end`."""
    stream = reference.Stream(start)
    target = [int(w) for w in end]
    for n in range(limit + 1):
        if stream.s == target:
            return n
        stream.u64()
    raise AssertionError("end state not reached")


@numba.njit
def _lane_below_draws(states, bound, n_draws):
    lanes = np.ascontiguousarray(states.T)
    raw = np.empty(lanes.shape[1], np.uint64)
    out = np.empty((n_draws, lanes.shape[1]), np.int64)
    for t in range(n_draws):
        R.lanes_below(lanes, lanes.shape[1], bound, raw, out[t])
    return out.T.copy(), lanes.T.copy()


@numba.njit
def _scalar_below_draws(states, bound, n_draws):
    out = np.empty((states.shape[0], n_draws), np.int64)
    for p in range(states.shape[0]):
        s = (states[p, 0], states[p, 1], states[p, 2], states[p, 3])
        for t in range(n_draws):
            out[p, t], s = R.next_below(s, bound)
    return out


BOUND = 3 << 30  # 2^32 / BOUND = 4/3: multiply-shift alone gives k = 0 mod 3 with probability 1/2, not 1/3


def test_bounded_draws_lanes_equal_scalar_and_twin_through_rejections():
    states = R.seed_states(3, 20)
    lanes, end = _lane_below_draws(states, BOUND, 50)
    assert np.array_equal(lanes, _scalar_below_draws(states, BOUND, 50))
    twin = []
    for p in range(3):
        stream = reference.Stream(states[p])
        twin.append([stream.below(BOUND) for _ in range(50)])
        assert stream.s == [int(w) for w in end[p]]
    assert np.array_equal(lanes[:3], np.array(twin))
    assert _words_used(states[0], end[0], 200) > 50  # the rejection path ran


def test_bounded_draws_are_unbiased():
    draws = _scalar_below_draws(R.seed_states(4, 100), BOUND, 200).ravel()
    assert draws.min() >= 0 and draws.max() < BOUND
    frac = np.mean(draws % 3 == 0)
    se = np.sqrt(frac * (1 - frac) / draws.size)
    assert abs(frac - 1 / 3) < 4 * se
    assert abs(frac - 1 / 2) > 20 * se  # the multiply-shift without rejection would be rejected by far


def test_observables_equal_numpy():
    rng = np.random.default_rng(3)
    reg = L.Regression(A3, B3)
    x = rng.normal(loc=2.0, size=(9000, 3))  # more than two blocks of partial sums
    edges = np.array([-1.0, 0.0, 0.5, 2.0, 2.5, 4.0])
    x[:5, 1] = edges[[0, 2, 3, 5, 5]]  # on edges, the last one twice (closed last bin)
    x[5, 1] = 7.0  # outside
    obs = Observer(code=reg.code, theta=reg.theta, data=reg.data, histogram=(1, edges)).observe(x)
    np.testing.assert_allclose(obs["mean"], x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(obs["covariance"], np.cov(x, rowvar=False), rtol=1e-12)
    np.testing.assert_allclose(obs["loss"], reg.value(x).mean(), rtol=1e-12)
    assert np.array_equal(obs["counts"], np.histogram(x[:, 1], edges)[0])
    dw = L.DoubleWell(1)
    one = Observer(code=dw.code, theta=dw.theta, data=dw.data).observe(np.array([[0.5]]))
    assert one["covariance"].shape == (1, 1) and one["covariance"][0, 0] == 0.0
    np.testing.assert_allclose(one["loss"], dw.value(np.array([[0.5]]))[0], rtol=1e-15)


_THREAD_SCRIPT = textwrap.dedent("""
    import sys
    import numba
    import numpy as np
    from sgdsim import dynamics as D, landscapes as L
    from sgdsim.simulate import Recorder, simulate
    rng = np.random.default_rng(0)
    dw = L.finite_sum_double_well(64, 4.0, seed=1)
    reg = L.Regression(rng.normal(size=(50, 3)), rng.normal(size=50))
    out = {}
    for name, land, dyn, x0 in (("tilt", dw, D.SGD(lr=0.05, batch=2), np.linspace(-1.5, 1.5, 9000)[:, None]),
                                ("ls", reg, D.SGD(lr=0.05, batch=4, replace=False), rng.normal(size=(9000, 3)))):
        rec = Recorder(every=int(sys.argv[2]), histogram=(0, np.linspace(-2, 2, 41)))
        o = simulate(land, dyn, x0, n_steps=60, seed=5, recorder=rec, progress=False)
        out[name + "_x"] = o.positions
        for key, (steps, times, values) in o.observables.items():
            out[name + "_" + key] = np.array(values)[np.isin(steps, [0, 30, 60])]
    np.savez(sys.argv[1], **out)
    print(numba.get_num_threads())
""")


def test_positions_and_observables_bit_identical_across_threads_blas_and_chunkings(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_THREAD_SCRIPT)
    runs = {(1, 1, 30): None, (2, 2, 30): None, (1, 2, 30): None, (2, 1, 10): None}  # numba, blas, every
    procs = {}
    for numba_threads, blas, every in runs:
        env = dict(os.environ, NUMBA_NUM_THREADS=str(numba_threads), OPENBLAS_NUM_THREADS=str(blas),
                   OMP_NUM_THREADS=str(blas), MKL_NUM_THREADS=str(blas))
        out = tmp_path / f"r{numba_threads}{blas}{every}.npz"
        procs[numba_threads, blas, every] = (out, subprocess.Popen(
            [sys.executable, str(script), str(out), str(every)], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    for (numba_threads, _, _), (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert stdout.strip() == str(numba_threads)
    results = [dict(np.load(out)) for out, _ in procs.values()]
    assert set(results[0]) >= {"tilt_x", "tilt_covariance", "tilt_density", "ls_loss", "ls_covariance"}
    for other in results[1:]:
        for key, value in results[0].items():
            assert np.array_equal(value, other[key]), key
    assert not np.array_equal(results[0]["tilt_mean"][0], results[0]["tilt_mean"][-1])  # the clouds moved


def test_records_taken_inside_the_kernel_equal_the_observer_for_any_chunking():
    """One kernel call crossing several record steps gives each record's observables bit for bit as
    `Observer.observe` on the cloud at that step (the same lane reduction), and the scalar kernel (which stops
    at each record step) gives the same partial sums; records and final states do not depend on how the steps
    are chunked, nor on how many records a chunk holds."""
    landscape, dynamics, _ = CASES["langevin-quadratic"]
    x0 = RNG.normal(scale=0.5, size=(9000, 3))  # three blocks of partial sums, the last one ragged
    obs = Observer(code=landscape.code, theta=landscape.theta, data=landscape.data, histogram=(1, np.linspace(-1, 1, 9)))

    def make(vectorized=True):
        s = ParticleSolver(landscape=landscape.code, theta=landscape.theta, data=landscape.data, x0=x0, seed=4,
                           **dynamics.solver_arguments(landscape))
        s.vectorized = vectorized
        return s

    steps = np.array([0, 3, 4, 10, 17, 30])
    one = make()
    slots, snaps = one.advance(30, steps, obs, snapshot=5)
    inside = obs.results(slots)
    stepwise, chunked, scalar = make(), make(), make(False)
    for r, step in enumerate(steps):
        stepwise.advance(step - stepwise.step)
        expected = obs.observe(stepwise.x)
        for key, value in expected.items():
            assert np.array_equal(inside[r][key], value), (step, key)
        assert np.array_equal(snaps[r], stepwise.x[:5])
    np.testing.assert_allclose(inside[-1]["covariance"], np.cov(stepwise.x, rowvar=False), rtol=1e-12)
    parts = [chunked.advance(4, steps[:3], obs), chunked.advance(26, steps[3:], obs)]
    scalar_slots, _ = scalar.advance(30, steps, obs)
    for key in slots:
        assert np.array_equal(np.concatenate([p[0][key] for p in parts]), slots[key]), key
        assert np.array_equal(scalar_slots[key], slots[key]), key
    for s in (stepwise, chunked, scalar):
        assert np.array_equal(s.x, one.x) and np.array_equal(s.states, one.states)


def test_simulate_records_do_not_depend_on_records_per_chunk(monkeypatch):
    """simulate with one record per kernel call (a chunk stops at each record step, as before the kernel took
    records itself) and with up to 64 per call: the same observables and final cloud, bit for bit."""
    import sgdsim.particles.simulate as S
    landscape, dynamics, x0 = CASES["tilt-replace"]
    rec = Recorder(every=3, histogram=(0, np.linspace(-2, 2, 17)), target=TARGET[1])
    outs = []
    for per_chunk in (1, 64):
        monkeypatch.setattr(S, "RECORDS_PER_CHUNK", per_chunk)
        outs.append(simulate(landscape, dynamics, x0, n_steps=40, seed=2, recorder=rec, progress=False))
    a, b = outs
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.first_hit, b.first_hit)
    assert set(a.observables) == {"mean", "covariance", "loss", "density"}
    for key, (steps, times, values) in a.observables.items():
        assert steps == list(range(0, 40, 3)) + [40]
        assert steps == b.observables[key][0] and times == b.observables[key][1]
        assert all(np.array_equal(u, v) for u, v in zip(values, b.observables[key][2])), key
