"""Soft committee machines learned by online SGD: the exact N -> inf order-parameter ODEs beside the simulation.

Teacher y = sum_m v*_m g(w*_m . x / sqrt N) + sigma zeta, student f = sum_k v_k g(w_k . x / sqrt N), g(x) =
erf(x / sqrt 2), inputs x ~ N(0, I_N), a fresh sample every step (online SGD on (1/2)(f - y)^2, first layer lr,
second layer lr_v, 0 = fixed). Order parameters Q = W W^T / N, R = W W*^T / N, T = W* W*^T / N and v; time
t = steps / N. The ODEs (Saad & Solla, PRE 52, 4225 (1995); Biehl & Schwarze 1995; Goldt, Advani, Saxe,
Krzakala & Zdeborova, NeurIPS 2019, eqs. (10)-(12)) and eps_g(Q, R, T, v) (Saad & Solla 1995, eq. (5)) are
written out in `sgdsim.solvers.highdim.committee_ode`; the simulator in `committee_sgd`. The ODE is
integrated by the project's Runge-Kutta loop (`solvers.rk`, Dormand-Prince 5(4)) with the compiled right-hand
side, for every student from its own exact initial order parameters (or its NumPy twin, engine="numpy").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ParameterError
from .. import runloop
from ..solvers import rk
from ..solvers.highdim import committee_ode as co
from ..solvers.highdim import committee_sgd as cs
from ..solvers.rng import seed_states

generalization_error = co.generalization_error
SOURCE = ("Saad & Solla, PRE 52, 4225 (1995), eqs. (5), (9)-(10); Goldt, Advani, Saxe, Krzakala & Zdeborova, "
          "NeurIPS 2019, eqs. (10)-(12) (lr^2 and noise terms)")


@dataclass(frozen=True, eq=False)
class Teacher:
    """Teacher weights W* (M, N) and second layer v* (M,); T = W* W*^T / N."""
    W: np.ndarray
    v: np.ndarray

    @property
    def N(self) -> int:
        return self.W.shape[1]

    @property
    def T(self) -> np.ndarray:
        return self.W @ self.W.T / self.N


def teacher(N: int, M: int, seed: int) -> Teacher:
    """Teacher rows w*_m orthogonal with |w*_m|^2 = N (Gram-Schmidt of Gaussian vectors), so T = I exactly at
    every N (the T_nm = delta_nm of Saad & Solla 1995), and v* = 1: the soft committee machine."""
    if N < M or M < 1:
        raise ParameterError(f"teacher needs 1 <= M <= N, got N={N}, M={M}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    q, r = np.linalg.qr(rng.standard_normal((N, M)))
    return Teacher(np.ascontiguousarray((q * np.sign(np.diag(r))).T * np.sqrt(N)), np.ones(M))


def initial_students(t: Teacher, K: int, students: int, scale: float, overlap: float, seed: int) -> np.ndarray:
    """W (S, K, N): w_k = scale * xi_k + overlap * w*_k (the second term for k < M only), xi ~ N(0, I_N); so
    Q(0) = scale^2 I + O(N^-1/2) and R_kk(0) = overlap T_kk + O(N^-1/2): `overlap` sets the initial
    asymmetry that ends the plateau."""
    if K < 1 or students < 1:
        raise ParameterError(f"students need K >= 1 and at least one student, got K={K}, students={students}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    W = scale * rng.standard_normal((students, K, t.N))
    m = min(K, len(t.v))
    W[:, :m] += overlap * t.W[:m]
    return W


def order_parameters(W: np.ndarray, t: Teacher) -> tuple[np.ndarray, np.ndarray]:
    """Q (S, K, K) and R (S, K, M) of students W (S, K, N), compiled loops (thread-count independent)."""
    S, K, _ = W.shape
    Q, R = np.empty((S, K, K)), np.empty((S, K, len(t.v)))
    cs.order_parameters(np.ascontiguousarray(W), np.ascontiguousarray(t.W), Q, R)
    return Q, R


def generalization_error_gradient(Q, R, T, v, vstar) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d eps/d Q_ik, d eps/d R_in, d eps/d v_i) of `generalization_error`, every entry of Q an independent
    variable: with x_ab = C_ab / sqrt((1 + C_aa)(1 + C_bb)) and I2' = (2/pi) / sqrt(1 - x^2),
    d eps / d C_ab = (1/2) u_a u_b I2'(x_ab) / sqrt((1 + C_aa)(1 + C_bb))  (a != b),
    d eps / d C_aa = (1/2) u_a^2 I2'(x_aa) / (1 + C_aa)^2 - sum_{b != a} u_a u_b I2'(x_ab) x_ab / (2 (1 + C_aa)),
    d eps / d R_in = d eps / d C_{i,K+n} + d eps / d C_{K+n,i},  d eps / d v_i = -sum_b u_b I2(i, b)
    (derivatives of Saad & Solla 1995, eq. (5))."""
    Q, R, v = (np.asarray(a, dtype=np.float64) for a in (Q, R, v))
    K = Q.shape[-1]
    C = co.covariance(Q, R, np.asarray(T, float))
    one = 1.0 + np.diagonal(C, axis1=-2, axis2=-1)
    norm = np.sqrt(one[..., :, None] * one[..., None, :])
    x = C / norm
    u = co.weights(v, vstar)
    uu = u[..., :, None] * u[..., None, :]
    slope = (2 / math.pi) / np.sqrt(1.0 - x * x)
    G = 0.5 * uu * slope / norm
    off = uu * slope * x / (2 * one[..., :, None])
    n = C.shape[-1]
    eye = np.eye(n, dtype=bool)
    diag = (0.5 * np.diagonal(uu * slope, axis1=-2, axis2=-1) / one ** 2
            - np.sum(np.where(eye, 0.0, off), axis=-1))
    G = np.where(eye, 0.0, G) + diag[..., :, None] * eye
    I2 = (2 / math.pi) * np.arcsin(x)
    dv = -np.einsum("...b,...ib->...i", u, I2[..., :K, :])
    return G[..., :K, :K], G[..., :K, K:] + np.swapaxes(G[..., K:, :K], -1, -2), dv


@dataclass
class Curves:
    """Order parameters over time: t (T,), Q (T, S, K, K), R (T, S, K, M), v (T, S, K), eps (T, S)."""
    t: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    v: np.ndarray
    eps: np.ndarray
    status: str = "complete"
    message: str = ""


def ode(Q0, R0, v0, t: Teacher, times, *, lr: float, lr_v: float = 0.0, noise: float = 0.0,
        engine: str = "numba", rtol: float = 1e-8, atol: float = 1e-10) -> Curves:
    """Integrate the order-parameter ODEs of every student (Q0 (S, K, K), R0 (S, K, M), v0 (S, K)) to the
    increasing `times` (t = steps / N); eps_g along each solution. engine "numba" (compiled right-hand side)
    or "numpy" (its twin); both through `solvers.rk.integrate` (dopri5)."""
    Q0, R0, v0 = (np.asarray(a, dtype=np.float64) for a in (Q0, R0, v0))
    S, K, M = R0.shape
    T, vstar = np.ascontiguousarray(t.T), np.asarray(t.v, float)
    if engine == "numba":
        def f(_, y):
            out = np.empty_like(y)
            co.rhs(y, T, vstar, float(lr), float(lr_v), float(noise) ** 2, K, M, out)
            return out
    elif engine == "numpy":
        def f(_, y):
            return co.rhs_numpy(y, T, vstar, lr, lr_v, noise ** 2, K, M)
    else:
        raise ParameterError(f"unknown engine {engine!r} (valid: numba, numpy)")
    sol = rk.integrate(f, co.pack(Q0, R0, v0), np.asarray(times, float), rtol=rtol, atol=atol)
    Q, R, v = co.unpack(sol.y, K, M)
    return Curves(sol.t[:len(sol.y)], Q, R, v, co.generalization_error(Q, R, T, v, vstar), sol.status, sol.message)


def symmetric_fixed_point(K: int, *, lr: float, noise: float = 0.0, q0: float = 0.1,
                          r0: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """The plateau of the realizable machine (K = M, T = I, v = v* = 1): the fixed point of the ODEs with
    Q = (q - c) I + c 11^T and R = r 11^T (Saad & Solla 1995, sec. IV: the symmetric, unspecialized phase),
    by integrating inside that invariant subspace from (q0, 0, r0) to t = 60 / lr and polishing (q, c, r)
    with a root finder on the subspace's three equations. Returns (Q (K, K), R (K, K))."""
    from scipy.optimize import fsolve
    T, ones = np.eye(K), np.ones(K)

    def state(x):
        q, c, r = x
        return (q - c) * np.eye(K) + c * np.ones((K, K)), np.full((K, K), r)

    def velocity(x):
        Q, R = state(x)
        out = np.empty(co.layout(K, K))
        co.rhs(co.pack(Q[None], R[None], ones[None]), T, ones, float(lr), 0.0, float(noise) ** 2, K, K, out)
        dQ, dR, _ = co.unpack(out, K, K)
        return np.array([dQ[0, 0, 0], dQ[0, 0, 1] if K > 1 else 0.0, dR[0, 0, 0]])

    sol = rk.integrate(lambda _, x: velocity(x), np.array([q0, 0.0, r0]), [0.0, 60.0 / lr])
    x, _, ok, message = fsolve(velocity, sol.y[-1], full_output=True, xtol=1e-13)
    if ok != 1:
        raise ParameterError(f"no symmetric fixed point found for K={K}, lr={lr} ({message})")
    return state(x)


def escape_rate(Q, R, T, vstar, *, lr: float, noise: float = 0.0) -> float:
    """Largest real part of the eigenvalues of the ODE's Jacobian in (Q, R) at a fixed point (central finite
    differences of the compiled right-hand side, second layer fixed): deviations from the plateau grow as
    e^(gamma t), so the plateau lasts ln(1/delta) / gamma for an initial asymmetry delta (Saad & Solla 1995,
    sec. IV; Biehl, Riegler & Wohler 1996)."""
    K, M = np.shape(R)
    T, vstar = np.ascontiguousarray(T, dtype=np.float64), np.asarray(vstar, float)
    y0 = co.pack(np.asarray(Q, float)[None], np.asarray(R, float)[None], np.ones((1, K)))
    n = K * K + K * M
    h = 1e-6
    J = np.empty((n, n))
    for i in range(n):
        plus, minus = y0.copy(), y0.copy()
        plus[i] += h
        minus[i] -= h
        fp, fm = np.empty_like(y0), np.empty_like(y0)
        co.rhs(plus, T, vstar, float(lr), 0.0, float(noise) ** 2, K, M, fp)
        co.rhs(minus, T, vstar, float(lr), 0.0, float(noise) ** 2, K, M, fm)
        J[:, i] = (fp - fm)[:n] / (2 * h)
    return float(np.linalg.eigvals(J).real.max())


def escape_time(t, eps, level: float) -> float:
    """First time after the fall onto the plateau (eps has risen above `level` once: from t = 0 or
    from the first record) at which eps drops below `level`, linearly interpolated; NaN if it never does."""
    t, eps = np.asarray(t, float), np.asarray(eps, float)
    above = np.nonzero(eps >= level)[0]
    if len(above) == 0:
        return float("nan")
    below = np.nonzero(eps[above[0]:] < level)[0]
    if len(below) == 0:
        return float("nan")
    k = above[0] + below[0]
    return float(t[k - 1] + (level - eps[k - 1]) * (t[k] - t[k - 1]) / (eps[k] - eps[k - 1]))


def simulate(t: Teacher, W0: np.ndarray, v0: np.ndarray, record_steps, *, lr: float, lr_v: float = 0.0,
             noise: float = 0.0, seed: int = 0, progress: Callable[[int], None] | None = None,
             on_record: Callable[[int, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None] | None = None
             ) -> Curves:
    """Online SGD of the students W0 (S, K, N), v0 (S, K) (copied), recording Q, R, v and eps_g (closed form
    from Q, R: the exact generalization error of each network) at the increasing `record_steps` (t = step / N).
    Student s draws from stream (seed, s) of `solvers.rng`; `progress(n)` after every chunk of n steps;
    `on_record(step, t, Q, R, v, eps)` at every record as it is taken (e.g. to stream it to a run file).

    The steps run on `sgdsim.runloop.drive` (chunks of about 0.3 s, never past a record): under `sgdsim run` a
    SIGINT/SIGTERM stops at the next chunk with status "interrupted" and the step reached recorded; weights
    that are non-finite (or beyond 1e12) at a record stop it with status "diverged" (that record kept)."""
    W = np.ascontiguousarray(W0, dtype=np.float64).copy()
    v = np.ascontiguousarray(np.broadcast_to(v0, W.shape[:2]), dtype=np.float64).copy()
    record_steps = np.asarray(record_steps, dtype=np.int64)
    if record_steps.ndim != 1 or len(record_steps) < 1 or record_steps[0] < 0 or np.any(np.diff(record_steps) < 0):
        raise ParameterError("record_steps must be a non-empty increasing list of non-negative steps")
    states = seed_states(seed, len(W))
    Ws, vs = np.ascontiguousarray(t.W), np.asarray(t.v, float)
    N = W.shape[2]
    out_Q, out_R, out_v, recorded = [], [], [], []
    wanted = {int(s): int(c) for s, c in zip(*np.unique(record_steps, return_counts=True))}
    state = {"step": 0, "bad": -1}

    def advance(n: int) -> None:
        cs.advance(W, v, Ws, vs, states, float(lr), float(lr_v), float(noise), n)
        state["step"] += n
        if progress is not None:
            progress(n)

    def record(step: int) -> None:
        # a record step once per time it is listed; a step off the list only when an interrupt stopped there
        for _ in range(wanted.get(step, 0 if step == 0 else 1)):
            Q, R = order_parameters(W, t)
            out_Q.append(Q), out_R.append(R), out_v.append(v.copy())
            recorded.append(step)
            if on_record is not None:
                on_record(step, step / N, Q, R, out_v[-1], co.generalization_error(Q, R, t.T, out_v[-1], vs))
            if state["bad"] < 0 and not (np.all(np.isfinite(Q)) and np.all(np.abs(Q) < 1e12)):
                state["bad"] = step

    def diverged() -> str | None:
        if state["bad"] < 0:
            return None
        return f"the students' weights diverged by step {state['bad']} (t = {state['bad'] / N:g}); lower the learning rate"

    result = runloop.drive(advance, int(record_steps[-1]), runloop.Schedule(steps=tuple(wanted)), record,
                           diverged=diverged)
    status, message = str(result.status), result.message
    if result.status is runloop.Status.COMPLETE and state["bad"] >= 0:   # the last record diverged
        status, message = "diverged", diverged()
    elif result.status is runloop.Status.INTERRUPTED:
        message = f"{result.message} (t = {result.steps_done / N:g})"
    Qa, Ra, va = np.array(out_Q), np.array(out_R), np.array(out_v)
    return Curves(np.array(recorded) / N, Qa, Ra, va, co.generalization_error(Qa, Ra, t.T, va, vs), status, message)
