"""ParticleSolver: the state of a particle cloud and the compiled kernel that advances it.

The solver knows arrays and codes only (no sgdsim objects): `sgdsim.particles.dynamics` translates a landscape and a
dynamics config into the keyword arguments below. Between calls to `advance` nothing is compiled or
re-seeded, so advancing 10 steps twice equals advancing 20 steps once, bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernel as K
from .._jit import LiteralDispatch
from .landscapes import gradients, values
from .block import advance_block, covers, lanes_for, records_per_call
from .observables import Observer
from ..rng import seed_states

_GRADIENTS = {"full": K.GRAD_FULL, "minibatch": K.GRAD_MINIBATCH, "tilt": K.GRAD_TILT}
_NOISES = {"none": K.NOISE_NONE, "isotropic": K.NOISE_ISOTROPIC, "constant": K.NOISE_CONSTANT,
           "gradient": K.NOISE_GRADIENT}
_SCHEMES = {"euler": K.SCHEME_EULER, "heun": K.SCHEME_HEUN}
_SCHEDULES = {"constant": K.SCHEDULE_CONSTANT, "step": K.SCHEDULE_STEP, "cosine": K.SCHEDULE_COSINE}
_TARGETS = {"enter": K.TARGET_ENTER, "exit": K.TARGET_EXIT, "loss-below": K.TARGET_LOSS_BELOW,
            "gradient-below": K.TARGET_GRADIENT_BELOW}


_ADVANCE = LiteralDispatch(K.advance, literal_positions=(7, 10, 18, 21))  # code, source, noise, scheme
_ADVANCE_BLOCK = LiteralDispatch(advance_block, literal_positions=(5, 8, 13))  # code, source, noise


def _code(table: dict, name: str, what: str) -> int:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r} (valid: {', '.join(table)})")
    return table[name]


@dataclass(frozen=True)
class Target:
    """A box lo <= x <= hi; `mode` "enter" records the first step inside it, "exit" the first outside; or a
    level set: "loss-below" the first step with f(x) <= level, "gradient-below" with |grad f(x)| <= level
    (lo and hi unused)."""
    lo: tuple = ()
    hi: tuple = ()
    mode: str = "enter"
    level: float = 0.0

    @classmethod
    def loss_below(cls, level: float) -> "Target":
        return cls(mode="loss-below", level=float(level))

    @classmethod
    def gradient_below(cls, level: float) -> "Target":
        return cls(mode="gradient-below", level=float(level))


class ParticleSolver:
    """M particles in d dimensions under SGD, Langevin (optionally with the modified drift g + c H g of a
    stochastic modified equation, or a non-gradient part -(I + Q) g) or perturbed GD (see `particles.kernel`);
    `path=True` accumulates the path observables in `self.path` (M, 2): area increment, quadratic variation.
    `vectorized` says whether `advance` runs the block-vectorized kernel (`particles.block`; set it False to
    force the scalar kernel, which gives the same bits)."""

    name = "particles"

    def __init__(self, *, landscape: int, theta: np.ndarray, data: np.ndarray, x0: np.ndarray, seed: int,
                 gradient: str = "full", batch: int = 0, replace: bool = True,
                 schedule: str = "constant", lr_params: tuple = (0.01,), momentum: float = 0.0,
                 drift_hessian: float = 0.0, drift_matrix: np.ndarray | None = None, path: bool = False, noise: str = "none", temperature: float = 0.0, factor: np.ndarray | None = None,
                 scheme: str = "euler", kick_gradient: float = 0.0, kick_radius: float = 0.0,
                 kick_interval: int = 0, target: Target | None = None, limit: float = 1e10,
                 first_particle: int = 0):
        self.x = np.ascontiguousarray(x0, dtype=np.float64).copy()
        if self.x.ndim != 2:
            raise ValueError(f"x0 must have shape (particles, dimension), got {self.x.shape}")
        m, d = self.x.shape
        self.code = int(landscape)
        self.theta = np.ascontiguousarray(theta, dtype=np.float64)
        self.data = np.ascontiguousarray(data, dtype=np.float64)
        if self.data.ndim != 2:
            raise ValueError(f"data must be a 2-D array (examples, columns), got shape {self.data.shape}")
        self.source = _code(_GRADIENTS, gradient, "gradient source")
        if self.source != K.GRAD_FULL and not 1 <= batch <= len(self.data):
            raise ValueError(f"batch must be in [1, {len(self.data)}] (the number of examples), got {batch}")
        self.batch, self.replace = int(batch), bool(replace)
        self.schedule = _code(_SCHEDULES, schedule, "schedule")
        self.lr_params = np.asarray(lr_params, dtype=np.float64)
        self.momentum = float(momentum)
        self.drift_hessian = float(drift_hessian)
        if self.drift_hessian != 0.0 and (self.source != K.GRAD_FULL or self.momentum != 0.0):
            raise ValueError("the modified drift g + c H g needs the full gradient and no momentum")
        self.drift_matrix = (np.zeros((0, 0)) if drift_matrix is None
                             else np.ascontiguousarray(drift_matrix, dtype=np.float64))
        if drift_matrix is not None and self.drift_matrix.shape != (d, d):
            raise ValueError(f"drift matrix must be ({d}, {d}), got {self.drift_matrix.shape}")
        self.noise = _code(_NOISES, noise, "noise")
        self.temperature = float(temperature)
        self.factor = np.eye(d) if factor is None else np.ascontiguousarray(factor, dtype=np.float64)
        if self.factor.shape != (d, d):
            raise ValueError(f"noise factor must be ({d}, {d}), got {self.factor.shape}")
        self.scheme = _code(_SCHEMES, scheme, "scheme")
        if self.scheme == K.SCHEME_HEUN and (self.noise == K.NOISE_GRADIENT or self.source != K.GRAD_FULL
                                             or self.momentum != 0.0):
            raise ValueError("the Heun scheme needs the full gradient, constant diffusion and no momentum")
        self.kick = (float(kick_gradient), float(kick_radius), int(kick_interval))
        self.target = K.TARGET_NONE if target is None else _code(_TARGETS, target.mode, "target mode")
        box = target is not None and self.target <= K.TARGET_EXIT
        self.target_lo = np.broadcast_to(np.asarray(target.lo if box else 0.0, float), (d,)).copy()
        self.target_hi = np.broadcast_to(np.asarray(target.hi if box else 0.0, float), (d,)).copy()
        self.target_level = float(target.level) if target is not None else 0.0
        self.limit = float(limit)
        self.states = seed_states(seed, m, first_particle)
        self.velocity = np.zeros((m, d) if self.momentum != 0.0 else (0, d))
        self.first_hit = np.full(m, -1, dtype=np.int64)
        if target is not None:  # a particle that starts in the target hits at step 0
            self.first_hit[self._in_target()] = 0
        self.path = np.zeros((m if path else 0, 2))
        self.diverged_at = np.full(m, -1, dtype=np.int64)
        self.last_kick = np.full(m, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self.step = 0
        self.vectorized = covers(code=self.code, source=self.source, noise=self.noise, scheme=self.scheme,
                                 momentum=self.momentum, drift_hessian=self.drift_hessian,
                                 drift_matrix=self.drift_matrix, kick_radius=self.kick[1], path=self.path,
                                 target=self.target)
        # records one `advance` call should take at most (the scalar kernel stops at each anyway)
        self.records_per_call = records_per_call(d) if self.vectorized else 1 << 20

    def _in_target(self) -> np.ndarray:
        """Which particles are in the target now (the box, or the level set)."""
        if self.target == K.TARGET_LOSS_BELOW:
            return self.losses() <= self.target_level
        if self.target == K.TARGET_GRADIENT_BELOW:
            g = np.empty_like(self.x)
            gradients(self.code, self.x, self.theta, self.data, g)
            return np.sqrt(np.sum(g * g, axis=1)) <= self.target_level
        inside = np.all((self.target_lo <= self.x) & (self.x <= self.target_hi), axis=1)
        return inside == (self.target == K.TARGET_ENTER)

    def advance(self, n_steps: int, record_steps=None, observer: Observer | None = None, snapshot: int = 0):
        """Run `n_steps` updates of every live particle (compiled; no Python in between): on the
        block-vectorized kernel when `self.vectorized` (bit-identical to the scalar kernel), else the scalar one.

        With `record_steps` (increasing, within step..step+n_steps) and an `observer`, also take the records
        of those steps and return (partial sums, snapshots): `observer.slots` arrays holding each record's
        partial sums (`observer.results` turns them into observables) and the first `snapshot` particles
        (records, snapshot, d). The block kernel reduces them in its lanes as it crosses the steps; the
        scalar kernel stops at each and reduces the cloud with the same code: the same bits either way."""
        n_steps = int(n_steps)
        if record_steps is None:
            self._run(n_steps, self._no_records())
            return None
        steps = np.ascontiguousarray(record_steps, dtype=np.int64)
        if steps.size and (steps[0] < self.step or steps[-1] > self.step + n_steps or np.any(np.diff(steps) <= 0)):
            raise ValueError(f"record steps must be increasing and within {self.step}..{self.step + n_steps}")
        m, d = self.x.shape
        slots = observer.slots(len(steps), m, d)
        snap = np.zeros((len(steps), min(int(snapshot), m), d))
        if self.vectorized and n_steps > 0:
            h, c, e = observer.moments
            self._run(n_steps, (steps, observer.covariance, observer.loss, h, c, e, observer.axis, observer.edges,
                                observer.scale, slots["sizes"], slots["shifts"], slots["firsts"], slots["seconds"],
                                slots["losses"], slots["counts"], snap))
            return slots, snap
        end = self.step + n_steps
        one = observer.slots(1, m, d)
        for r, step in enumerate(steps):  # the scalar kernel, or no step to take: stop at each record step
            if step > self.step:
                self._run(int(step) - self.step, self._no_records())
            observer.block_sums(self.x, one)
            for key, value in one.items():
                slots[key][r] = value[0]
            snap[r] = self.x[:snap.shape[1]]
        if end > self.step:
            self._run(end - self.step, self._no_records())
        return slots, snap

    def _no_records(self) -> tuple:
        if getattr(self, "_empty", None) is None:
            d = self.x.shape[1]
            self._empty = (np.zeros(0, np.int64), False, False, np.zeros((0, 0)), np.zeros(0), 0.0, 0,
                           np.zeros(1), 0.0, np.zeros((0, 0), np.int64), np.zeros((0, 0, d)), np.zeros((0, 0, d)),
                           np.zeros((0, 0, d, d)), np.zeros((0, 0)), np.zeros((0, 0, 0), np.int64),
                           np.zeros((0, 0, d)))
        return self._empty

    def _run(self, n_steps: int, records: tuple) -> None:
        if self.vectorized:
            _ADVANCE_BLOCK(lanes_for(self.x.shape[1]), self.x, self.states, self.first_hit, self.diverged_at,
                           self.code, self.theta, self.data, self.source, self.batch, self.replace, self.schedule,
                           self.lr_params, self.noise, self.temperature, self.target, self.target_lo,
                           self.target_hi, self.limit, self.step, n_steps, *records)
            self.step += n_steps
            return
        _ADVANCE(self.x, self.velocity, self.states, self.first_hit, self.diverged_at, self.last_kick, self.path,
                  self.code, self.theta, self.data, self.source, self.batch, self.replace,
                  self.schedule, self.lr_params, self.momentum, self.drift_hessian, self.drift_matrix,
                  self.noise, self.temperature, self.factor, self.scheme,
                  *self.kick, self.target, self.target_lo, self.target_hi, self.target_level, self.limit,
                  self.step, n_steps)
        self.step += n_steps

    def losses(self) -> np.ndarray:
        """f at every particle."""
        out = np.empty(len(self.x))
        values(self.code, self.x, self.theta, self.data, out)
        return out

    def first_divergence(self) -> tuple[int, int] | None:
        """(step, particle) of the earliest divergence, ties to the lowest particle; None if all finite."""
        bad = np.flatnonzero(self.diverged_at >= 0)
        if bad.size == 0:
            return None
        p = bad[np.lexsort((bad, self.diverged_at[bad]))[0]]
        return int(self.diverged_at[p]), int(p)
