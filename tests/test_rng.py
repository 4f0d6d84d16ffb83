"""Per-particle random streams (solvers/rng.py): seeding, the xoshiro256++ generator against a plain-Python
reference of the published algorithm, and the ziggurat normals against the normal law (moments, KS, tails)."""
import numpy as np
import pytest
import scipy.stats

from sgdsim.solvers import rng as R

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def _splitmix64_mix(z: int) -> int:
    """The splitmix64 output function (Steele, Lea & Flood 2014), in Python ints mod 2**64."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _splitmix64_stream(state: int, n: int) -> list[int]:
    """The first n outputs of the splitmix64 generator whose state starts at `state` (x += golden; mix(x))."""
    out = []
    for _ in range(n):
        state = (state + GOLDEN) & MASK
        out.append(_splitmix64_mix(state))
    return out


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


def _xoshiro256pp(s: list[int], n: int) -> list[int]:
    """Blackman & Vigna's reference xoshiro256++ `next()` (prng.di.unimi.it/xoshiro256plusplus.c)."""
    s = list(s)
    out = []
    for _ in range(n):
        out.append((_rotl((s[0] + s[3]) & MASK, 23) + s[0]) & MASK)
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
    return out


def test_splitmix64_reference_vector():
    # the reference implementation seeded with 1234567 starts 6457827717110365317, 3203168211198807973
    assert _splitmix64_stream(1234567, 2) == [6457827717110365317, 3203168211198807973]


def test_seed_states_follow_the_documented_splitmix64_stream():
    seed, m = 12345, 7
    states = R.seed_states(seed, m)
    base = _splitmix64_mix(seed)
    expected = np.array(_splitmix64_stream(base, 4 * m), dtype=np.uint64).reshape(m, 4)
    assert states.dtype == np.uint64 and states.shape == (m, 4)
    np.testing.assert_array_equal(states, expected)


def test_seed_states_deterministic_and_distinct():
    a = R.seed_states(3, 500)
    np.testing.assert_array_equal(a, R.seed_states(3, 500))
    b = R.seed_states(4, 500)
    words = np.concatenate([a.ravel(), b.ravel()])
    assert len(np.unique(words)) == words.size  # no word repeated across particles or across the two seeds
    # and the streams themselves differ: first normals of every particle distinct across particles and seeds
    first = np.concatenate([R.normals(a.copy(), 1).ravel(), R.normals(b.copy(), 1).ravel()])
    assert len(np.unique(first)) == first.size


def test_seed_range_checked():
    with pytest.raises(ValueError, match="seed"):
        R.seed_states(-1, 3)
    with pytest.raises(ValueError, match="seed"):
        R.seed_states(2 ** 63, 3)


def test_first_particle_offset_equals_slice_of_bigger_seeding():
    big = R.seed_states(99, 40)
    part = R.seed_states(99, 15, first_particle=17)
    np.testing.assert_array_equal(part, big[17:32])
    np.testing.assert_array_equal(R.normals(part, 50), R.normals(big, 50)[17:32])


def test_xoshiro256pp_matches_reference_algorithm():
    state = R.seed_states(2024, 1)[0]
    # a hand-made state with high bits set in every word exercises the wraparound of the sums and rotations
    special = np.array([0xFFFFFFFFFFFFFFFF, 0x8000000000000001, 0x0123456789ABCDEF, 0xFEDCBA9876543210],
                       dtype=np.uint64)
    for words in (state, special):
        s = tuple(np.uint64(w) for w in words)
        got = []
        for _ in range(1000):
            u, s = R.next_u64(s)
            got.append(int(u))
            s = tuple(np.uint64(w) for w in s)  # Numba hands the state back as Python ints
        assert got == _xoshiro256pp([int(w) for w in words], 1000)


def _draw(n_particles=400, n_per=10_000, seed=7):
    return R.normals(R.seed_states(seed, n_particles), n_per).ravel()


@pytest.fixture(scope="module")
def draws():
    return _draw()


def test_normals_mean_and_variance(draws):
    n = draws.size
    mean = draws.mean()
    var = draws.var()
    se_mean = draws.std() / np.sqrt(n)
    m4 = np.mean((draws - mean) ** 4)
    se_var = np.sqrt((m4 - var ** 2) / n)
    assert abs(mean) < 4 * se_mean
    assert abs(var - 1.0) < 4 * se_var
    # the sample kurtosis of a normal is 3: a wrong layer table shows up here first
    se_m4 = np.sqrt((np.mean((draws - mean) ** 8) - m4 ** 2) / n)
    assert abs(m4 - 3.0) < 4 * se_m4


def test_normals_ks(draws):
    assert scipy.stats.kstest(draws, "norm").pvalue > 1e-3


@pytest.mark.parametrize("cut", [3.5, R.ZIG_R, 4.0])
def test_normal_tails(draws, cut):
    """Beyond r = 3.654 every draw comes from the ziggurat's tail branch: its mass must be 2 Phi(-cut)."""
    n = draws.size
    p = 2 * scipy.stats.norm.sf(cut)
    frac = np.mean(np.abs(draws) > cut)
    assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / n)
    # both signs of the tail are produced equally
    k_pos, k_neg = np.sum(draws > cut), np.sum(draws < -cut)
    assert abs(k_pos - k_neg) < 5 * np.sqrt(k_pos + k_neg)


def test_normal_streams_independent_across_particles():
    z = R.normals(R.seed_states(11, 20_000), 2)
    # correlation of neighbouring particles' draws and of successive draws of one particle: SE = 1/sqrt(n)
    n = len(z) - 1
    assert abs(np.mean(z[1:, 0] * z[:-1, 0])) < 4 / np.sqrt(n)
    assert abs(np.mean(z[:, 0] * z[:, 1])) < 4 / np.sqrt(len(z))
