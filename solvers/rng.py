"""Per-particle random streams: xoshiro256++ (Blackman & Vigna 2021) with a 256-layer ziggurat for normals.

Each particle owns a 4-word state seeded from the splitmix64 stream of the run seed (word 4p+k of that stream
seeds word k of particle p), so the draws of a particle depend only on (seed, particle) and on how many it
has drawn: results are bit-identical for any number of threads and any chunking of the steps.

The ziggurat follows Marsaglia & Tsang (2000) in the 52-bit form NumPy uses (`random_standard_normal`):
one 64-bit draw gives the layer (8 bits), the sign (1 bit) and the abscissa (52 bits); 99% return at once.
State is passed as a 4-tuple of uint64 so that, once inlined, it lives in registers.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_MANTISSA = 2.0 ** 52
_TWO32 = _U64(1 << 32)
_LOW32 = _U64(0xFFFFFFFF)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 output function (Steele, Lea & Flood 2014), vectorized with uint64 wraparound."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def seed_states(seed: int, n_particles: int, first_particle: int = 0) -> np.ndarray:
    """States (n_particles, 4) uint64 of particles first_particle.. for a run seed in [0, 2**63)."""
    if not 0 <= int(seed) < 2 ** 63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed}")
    base = _splitmix64(np.array([seed], dtype=_U64))[0]
    counter = np.arange(4 * first_particle + 1, 4 * (first_particle + n_particles) + 1, dtype=_U64)
    with np.errstate(over="ignore"):
        states = _splitmix64(base + counter * _GOLDEN).reshape(n_particles, 4)
    states[np.all(states == 0, axis=1), 0] = _U64(1)  # the all-zero state is xoshiro's only fixed point
    return states


def _ziggurat_tables(n: int = 256, r: float = 3.6541528853610088, v: float = 0.00492867323399):
    """Marsaglia & Tsang's tables: k (acceptance bounds), w (widths / 2^52), f (exp(-x^2/2) at edges)."""
    k = np.zeros(n)
    w = np.zeros(n)
    f = np.zeros(n)
    dn = tn = r
    q = v / np.exp(-0.5 * dn * dn)
    k[0] = dn / q * _MANTISSA
    w[0] = q / _MANTISSA
    w[n - 1] = dn / _MANTISSA
    f[0] = 1.0
    f[n - 1] = np.exp(-0.5 * dn * dn)
    for i in range(n - 2, 0, -1):
        dn = np.sqrt(-2.0 * np.log(v / dn + np.exp(-0.5 * dn * dn)))
        k[i + 1] = dn / tn * _MANTISSA
        tn = dn
        f[i] = np.exp(-0.5 * dn * dn)
        w[i] = dn / _MANTISSA
    return k.astype(_U64), w, f, r


ZIG_K, ZIG_W, ZIG_F, ZIG_R = _ziggurat_tables()
ZIG_INV_R = 1.0 / ZIG_R


@jit(inline="always")
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@jit(inline="always")
def next_u64(s):
    """One xoshiro256++ output and the advanced state."""
    s0, s1, s2, s3 = s
    result = _rotl(s0 + s3, 23) + s0
    t = s1 << _U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, (s0, s1, s2, s3)


@jit(inline="always")
def next_double(s):
    """Uniform on [0, 1) with 53 random bits."""
    u, s = next_u64(s)
    return (u >> _U64(11)) * (1.0 / 9007199254740992.0), s


@jit
def _below_retry(s, n, m):
    """Lemire's rejection for a product m = x n whose low half is below n: redraw while it is below
    2^32 mod n, the count of x that would make some outcomes one preimage more likely than others."""
    threshold = (_TWO32 - n) % n
    while (m & _LOW32) < threshold:
        u, s = next_u64(s)
        m = (u >> _U64(32)) * n
    return np.int64(m >> _U64(32)), s


@jit(inline="always")
def next_below(s, n):
    """Uniform integer in [0, n), 1 <= n < 2^32, without bias: Lemire's multiply-shift on the high 32 bits
    of a draw, x n >> 32, rejecting when the low half of x n is below 2^32 mod n (Lemire 2019, ACM TOMACS
    29(1) 3, algorithm 5); the first check, low half < n, fails with probability n / 2^32."""
    u, s = next_u64(s)
    n = _U64(n)
    m = (u >> _U64(32)) * n
    if (m & _LOW32) < n:
        return _below_retry(s, n, m)
    return np.int64(m >> _U64(32)), s


@jit(inline="always")
def _ziggurat_split(r):
    """Layer (8 bits), 52-bit abscissa and signed candidate x from one 64-bit draw (sign without a branch)."""
    idx = np.int64(r & _U64(0xFF))
    sign = np.float64(np.int64((r >> _U64(8)) & _U64(1)))
    rabs = (r >> _U64(9)) & _U64(0x000FFFFFFFFFFFFF)
    x = np.float64(np.int64(rabs)) * ZIG_W[idx] * (1.0 - 2.0 * sign)
    return idx, rabs, x


@jit
def _normal_slow(s, idx, rabs, x):
    """The rare ziggurat branches: the tail beyond r (layer 0) and the wedge test; loops on rejection."""
    while True:
        if idx == 0:
            while True:
                u1, s = next_double(s)
                u2, s = next_double(s)
                xx = -ZIG_INV_R * np.log1p(-u1)
                yy = -np.log1p(-u2)
                if yy + yy > xx * xx:
                    return (-(ZIG_R + xx) if (rabs >> _U64(8)) & _U64(1) else ZIG_R + xx), s
        u, s = next_double(s)
        if (ZIG_F[idx - 1] - ZIG_F[idx]) * u + ZIG_F[idx] < np.exp(-0.5 * x * x):
            return x, s
        r, s = next_u64(s)
        idx, rabs, x = _ziggurat_split(r)
        if rabs < ZIG_K[idx]:
            return x, s


@jit(inline="always")
def next_normal(s):
    """A standard normal draw (ziggurat) and the advanced state."""
    r, s = next_u64(s)
    idx, rabs, x = _ziggurat_split(r)
    if rabs < ZIG_K[idx]:
        return x, s
    return _normal_slow(s, idx, rabs, x)


@jit
def _fill_normals(states, out):
    for p in range(out.shape[0]):
        s = (states[p, 0], states[p, 1], states[p, 2], states[p, 3])
        for j in range(out.shape[1]):
            out[p, j], s = next_normal(s)
        states[p, 0], states[p, 1], states[p, 2], states[p, 3] = s


def normals(states: np.ndarray, n: int) -> np.ndarray:
    """Draw n normals for each particle's stream (advancing `states` in place); shape (particles, n)."""
    out = np.empty((states.shape[0], n))
    _fill_normals(states, out)
    return out


# Lane-vectorized draws. A block of particles keeps its states in the rows of `lanes` (4, L), one column per
# particle ("lane"); each call below draws once for lanes 0..n-1 in a loop over lanes that LLVM compiles to
# SIMD (the xoshiro update, the multiply-shift, the ziggurat's table lookups), then redoes the rare lanes whose
# fast path failed in a scalar pass, with the same code as the scalar draws. Every lane gets exactly the
# values, and consumes exactly the words, of next_below / next_normal on its own stream.

@jit(inline="always")
def _lane_u64(lanes, j):
    r, s = next_u64((lanes[0, j], lanes[1, j], lanes[2, j], lanes[3, j]))
    lanes[0, j], lanes[1, j], lanes[2, j], lanes[3, j] = s
    return r


@jit(inline="always")
def lanes_below(lanes, n, bound, raw, out):
    """out[j] = next_below(lane j, bound) for j < n; raw (L,) uint64 is scratch. The pass that redoes the
    rare lanes whose first check failed stops at the last of them (their count is kept by the SIMD loop)."""
    nb = _U64(bound)
    misses = 0
    for j in range(n):
        m = (_lane_u64(lanes, j) >> _U64(32)) * nb
        raw[j] = m
        out[j] = np.int64(m >> _U64(32))
        misses += (m & _LOW32) < nb
    j = 0
    while misses > 0:
        if (raw[j] & _LOW32) < nb:
            s = (lanes[0, j], lanes[1, j], lanes[2, j], lanes[3, j])
            out[j], s = _below_retry(s, nb, raw[j])
            lanes[0, j], lanes[1, j], lanes[2, j], lanes[3, j] = s
            misses -= 1
        j += 1


@jit(inline="always")
def lanes_normal(lanes, n, raw, out):
    """out[j] = next_normal(lane j) for j < n; raw (L,) uint64 is scratch: the draw of a lane whose fast path
    failed, else 0 (never such a draw: a zero word is accepted at once). About 1% of draws fail, so a block
    of 64 lanes has one about half the time: the SIMD loop counts them, and the scalar pass that redoes them
    is skipped when there are none and stops at the last one (12% fewer ns per normal at 64 lanes)."""
    misses = 0
    for j in range(n):
        r = _lane_u64(lanes, j)
        idx, rabs, x = _ziggurat_split(r)
        out[j] = x
        miss = rabs >= ZIG_K[idx]
        raw[j] = r if miss else _U64(0)
        misses += miss
    j = 0
    while misses > 0:
        if raw[j] != _U64(0):
            idx, rabs, x = _ziggurat_split(raw[j])
            s = (lanes[0, j], lanes[1, j], lanes[2, j], lanes[3, j])
            out[j], s = _normal_slow(s, idx, rabs, x)
            lanes[0, j], lanes[1, j], lanes[2, j], lanes[3, j] = s
            misses -= 1
        j += 1
