"""Plain NumPy twin of the particle kernel, for tests on small inputs (numba == numpy to round-off).

Written from the update equations in `particles.kernel`'s docstring, one particle at a time, with the random
streams in Python integers (xoshiro256++ from its published definition) and the same order of draws per
step: minibatch indices, the PGD kick (d normals, one uniform, then a fresh minibatch), the noise normals.
Slow by design: readable first.
"""
from __future__ import annotations

import numpy as np

from .landscapes import FINITE_SUM_CODES
from ..rng import ZIG_F, ZIG_K, ZIG_R, ZIG_W

_MASK = (1 << 64) - 1


class Stream:
    """xoshiro256++ on Python ints, with the ziggurat, uniform and bounded-integer draws of `rng`."""

    def __init__(self, state):
        self.s = [int(w) for w in state]

    def u64(self) -> int:
        s0, s1, s2, s3 = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & _MASK  # noqa: E731
        result = (rotl((s0 + s3) & _MASK, 23) + s0) & _MASK
        t = (s1 << 17) & _MASK
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        self.s = [s0, s1, s2, rotl(s3, 45)]
        return result

    def uniform(self) -> float:
        return (self.u64() >> 11) * 2.0 ** -53

    def below(self, n: int) -> int:
        """x n >> 32 for the high half x of a draw, accepted when the low half of x n is at least 2^32 mod n
        (Lemire's unbiased multiply-shift), else drawn again."""
        while True:
            m = (self.u64() >> 32) * n
            if (m & 0xFFFFFFFF) >= (1 << 32) % n:
                return m >> 32

    def normal(self) -> float:
        while True:
            r = self.u64()
            idx, sign, rabs = r & 0xFF, (r >> 8) & 1, (r >> 9) & ((1 << 52) - 1)
            x = rabs * ZIG_W[idx] * (-1.0 if sign else 1.0)
            if rabs < int(ZIG_K[idx]):
                return x
            if idx == 0:
                while True:
                    xx = -np.log1p(-self.uniform()) / ZIG_R
                    yy = -np.log1p(-self.uniform())
                    if yy + yy > xx * xx:
                        return -(ZIG_R + xx) if (rabs >> 8) & 1 else ZIG_R + xx
            if (ZIG_F[idx - 1] - ZIG_F[idx]) * self.uniform() + ZIG_F[idx] < np.exp(-0.5 * x * x):
                return x


def _batch(stream: Stream, n: int, b: int, replace: bool) -> list[int]:
    if replace:
        return [stream.below(n) for _ in range(b)]
    chosen: list[int] = []
    for j in range(n - b, n):  # Floyd's algorithm: B distinct indices
        t = stream.below(j + 1)
        chosen.append(j if t in chosen else t)
    return chosen


def advance(solver, n_steps: int, grad, example_grad, hessian_vector=None, value=None) -> dict:
    """The state after `n_steps` more updates of a copy of `solver` (a ParticleSolver), in NumPy.

    grad(x) and example_grad(x, i) are the landscape's NumPy full and per-example gradients;
    hessian_vector(x, v) = H(x) v is needed when the solver has the modified drift g + c H g (c != 0), and
    value(x) = f(x) for a loss level-set target.
    """
    x = solver.x.copy()
    velocity = solver.velocity.copy()
    states, first_hit = solver.states.copy(), solver.first_hit.copy()
    diverged_at, last_kick = solver.diverged_at.copy(), solver.last_kick.copy()
    kick_gradient, kick_radius, kick_interval = solver.kick
    minibatch = solver.source != 0
    n_examples = len(solver.data)
    c = solver.drift_hessian
    Q = solver.drift_matrix if solver.drift_matrix.size else None
    path = solver.path.copy()

    def corrected(point, g):  # g + c H g (modified equation), then (I + Q) of that (non-gradient part)
        g = g + c * hessian_vector(point, g) if c else g
        return g + Q @ g if Q is not None else g

    def in_target(point):
        if solver.target == 3:   # loss below the level
            return value(point) <= solver.target_level
        if solver.target == 4:   # gradient norm below the level
            return np.linalg.norm(grad(point)) <= solver.target_level
        return np.all((solver.target_lo <= point) & (point <= solver.target_hi)) == (solver.target == 1)

    for p in range(len(x)):
        if diverged_at[p] >= 0:
            continue
        stream = Stream(states[p])

        def gradient(point):
            if not minibatch:
                return grad(point)
            idx = _batch(stream, n_examples, solver.batch, solver.replace)
            if solver.code in FINITE_SUM_CODES:
                return np.mean([example_grad(point, i) for i in idx], axis=0)
            return grad(point) + solver.data[idx].mean(axis=0)

        for n in range(solver.step, solver.step + n_steps):
            eta = _rate(solver.schedule, solver.lr_params, n)
            x_old = x[p].copy()
            g = gradient(x[p])
            if kick_radius > 0 and n - last_kick[p] >= kick_interval and np.linalg.norm(g) <= kick_gradient:
                z = np.array([stream.normal() for _ in range(x.shape[1])])
                x[p] += kick_radius * stream.uniform() ** (1 / x.shape[1]) * z / np.linalg.norm(z)
                last_kick[p] = n
                g = gradient(x[p])
            g = corrected(x[p], g)
            xi = _noise(solver, stream, eta, x[p], example_grad, n_examples)
            if solver.scheme == 1:  # Heun
                x_bar = x[p] - eta * g + xi
                x[p] = x[p] - 0.5 * eta * (g + corrected(x_bar, grad(x_bar))) + xi
            else:
                velocity_p = solver.momentum * velocity[p] - eta * g if solver.momentum else -eta * g
                if solver.momentum:
                    velocity[p] = velocity_p
                x[p] = x[p] + velocity_p + xi
            if not np.all(np.abs(x[p]) <= solver.limit):
                diverged_at[p] = n + 1
                break
            if path.size:
                if x.shape[1] >= 2:
                    path[p, 0] += 0.5 * (x_old[0] * x[p, 1] - x_old[1] * x[p, 0])
                path[p, 1] += np.sum((x[p] - x_old) ** 2)
            if solver.target and first_hit[p] < 0 and in_target(x[p]):
                first_hit[p] = n + 1
        states[p] = np.array(stream.s, dtype=np.uint64)
    return dict(x=x, velocity=velocity, states=states, first_hit=first_hit, diverged_at=diverged_at,
                last_kick=last_kick, path=path)


def _rate(schedule: int, params: np.ndarray, n: int) -> float:
    if schedule == 0:
        return params[0]
    if schedule == 1:
        return params[0] * params[1] ** np.floor(n / params[2])
    return params[1] + 0.5 * (params[0] - params[1]) * (1 + np.cos(np.pi * min(n / params[2], 1.0)))


def _noise(solver, stream: Stream, eta: float, x: np.ndarray, example_grad, n_examples: int) -> np.ndarray:
    d = len(x)
    if solver.noise == 0:
        return np.zeros(d)
    z = np.array([stream.normal() for _ in range(d)])
    factor = np.eye(d) if solver.noise == 1 else solver.factor
    if solver.noise == 3:  # gradient-noise covariance at x
        g = np.array([example_grad(x, i) for i in range(n_examples)])
        factor = np.linalg.cholesky(np.cov(g.T, bias=True).reshape(d, d))
    return np.sqrt(2 * solver.temperature * eta) * factor @ z
