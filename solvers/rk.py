"""Explicit Runge–Kutta integration with Butcher tableaus as data, adaptive step control and dense output.

A tableau (A, b, c) advances y' = f(t, y) by k_i = f(t + c_i h, y + h sum_j A_ij k_j), y_1 = y + h sum_i b_i k_i
(Hairer, Nørsett & Wanner, "Solving ODEs I", sec. II.1). An embedded pair adds weights b_hat of one order
less; e = h sum_i (b_i - b_hat_i) k_i estimates the local error (sec. II.4), and the step is accepted when
the RMS of e / (atol + rtol max(|y_0|, |y_1|)) is at most 1, with h_new = h min(5, max(0.2, 0.9 err^(-1/q)))
(q = error order + 1). Dense output: y(t + theta h) = y_0 + h sum_i k_i (P_i . [theta, theta^2, ...]).

`integrate` is a lean loop: stages preallocated, no per-step allocation beyond f itself, the trajectory
stored only at the requested times. With a NumPy right-hand side it runs at about solve_ivp's speed (the
~30 us per call of f dominate); `rk_kernel` is the same loop compiled with the deep-linear right-hand sides
(3-18x faster on small problems), and this loop is its readable twin.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction as F
from typing import Callable

import numpy as np


@dataclass(frozen=True, eq=False)
class Tableau:
    """Butcher tableau: A (s, s) strictly lower triangular, b, c; optional embedded b_hat (error order
    `error_order`) with FSAL (first stage of the next step = last stage of this one) and dense-output matrix P
    (s, degree) for y(t + theta h)."""
    name: str
    A: np.ndarray
    b: np.ndarray
    c: np.ndarray
    order: int
    b_hat: np.ndarray | None = None
    error_order: int | None = None
    P: np.ndarray | None = None

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def adaptive(self) -> bool:
        return self.b_hat is not None

    @property
    def fsal(self) -> bool:
        """First stage of the next step = last stage of this one (last row of A = b): one call saved per step."""
        return self.adaptive and self.A[-1, :].tolist() == self.b.tolist()


def _arr(rows) -> np.ndarray:
    return np.array([[float(F(x)) for x in r] for r in rows]) if isinstance(rows[0], (list, tuple)) \
        else np.array([float(F(x)) for x in rows])


def _square(rows) -> np.ndarray:
    s = len(rows)
    A = np.zeros((s, s))
    for i, r in enumerate(rows):
        A[i, :len(r)] = [float(F(x)) for x in r]
    return A


RK4 = Tableau("rk4", _square([[], ["1/2"], [0, "1/2"], [0, 0, 1]]), _arr(["1/6", "1/3", "1/3", "1/6"]),
              _arr([0, "1/2", "1/2", 1]), order=4)

# Bogacki & Shampine 1989, 3(2) pair with FSAL; dense output is the cubic Hermite interpolant.
BS32 = Tableau(
    "bs32", _square([[], ["1/2"], [0, "3/4"], ["2/9", "1/3", "4/9"]]), _arr(["2/9", "1/3", "4/9", 0]),
    _arr([0, "1/2", "3/4", 1]), order=3, b_hat=_arr(["7/24", "1/4", "1/3", "1/8"]), error_order=2,
    P=_arr([[1, "-4/3", "5/9"], [0, 1, "-2/3"], [0, "4/3", "-8/9"], [0, -1, 1]]))

# Dormand & Prince 1980, 5(4) pair with FSAL; dense output of order 4 (Shampine 1986, as in scipy's RK45).
DOPRI5 = Tableau(
    "dopri5",
    _square([[], ["1/5"], ["3/40", "9/40"], ["44/45", "-56/15", "32/9"],
             ["19372/6561", "-25360/2187", "64448/6561", "-212/729"],
             ["9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656"],
             ["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84"]]),
    _arr(["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0]),
    _arr([0, "1/5", "3/10", "4/5", "8/9", 1, 1]), order=5,
    b_hat=_arr(["5179/57600", 0, "7571/16695", "393/640", "-92097/339200", "187/2100", "1/40"]), error_order=4,
    P=_arr([[1, "-8048581381/2820520608", "8663915743/2820520608", "-12715105075/11282082432"],
            [0, 0, 0, 0],
            [0, "131558114200/32700410799", "-68118460800/10900136933", "87487479700/32700410799"],
            [0, "-1754552775/470086768", "14199869525/1410260304", "-10690763975/1880347072"],
            [0, "127303824393/49829197408", "-318862633887/49829197408", "701980252875/199316789632"],
            [0, "-282668133/205662961", "2019193451/616988883", "-1453857185/822651844"],
            [0, "40617522/29380423", "-110615467/29380423", "69997945/29380423"]]))

TABLEAUS = {t.name: t for t in (RK4, BS32, DOPRI5)}


def get_tableau(name: str) -> Tableau:
    """The tableau registered under `name`; unknown names list the valid ones."""
    try:
        return TABLEAUS[name]
    except KeyError:
        raise ValueError(f"unknown Runge-Kutta method {name!r} (valid: {', '.join(TABLEAUS)})") from None


@dataclass
class Solution:
    """Trajectory at the requested times; status "complete", "diverged" (non-finite state) or "failed"
    (step size underflow or max_steps), with a message naming the time."""
    t: np.ndarray
    y: np.ndarray
    status: str
    message: str
    n_steps: int
    n_rejected: int
    n_evaluations: int


def _initial_step(f, t0, y0, f0, order, rtol, atol) -> float:
    """Hairer, Nørsett & Wanner sec. II.4, 'starting step size' (as in scipy's select_initial_step)."""
    scale = atol + rtol * np.abs(y0)
    d0, d1 = np.sqrt(np.mean((y0 / scale) ** 2)), np.sqrt(np.mean((f0 / scale) ** 2))
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = f(t0 + h0, y0 + h0 * f0)
    d2 = np.sqrt(np.mean(((f1 - f0) / scale) ** 2)) / h0
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1)


def integrate(f: Callable[[float, np.ndarray], np.ndarray], y0: np.ndarray, t_eval: np.ndarray, *,
              method: str = "dopri5", rtol: float = 1e-8, atol: float = 1e-10, step: float | None = None,
              max_steps: int = 1_000_000, callback: Callable[[float], None] | None = None) -> Solution:
    """Integrate y' = f(t, y) from t_eval[0] (where y = y0) and return y at every t in t_eval (increasing).

    Adaptive (embedded tableaus) unless `step` is given, in which case fixed steps of that size are taken
    (the last one shortened to land on t_eval[-1]). Output between steps comes from the dense output
    (or the cubic Hermite interpolant for tableaus without one). `callback(t)` is called after each step.
    Overflow in f is not an error here: a non-finite stage shrinks the step, and a state that stays
    non-finite ends the run with status "diverged"."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _integrate(f, y0, t_eval, method, rtol, atol, step, max_steps, callback)


def check_arguments(method: str, t_eval, step: float | None) -> tuple[Tableau, np.ndarray]:
    """The tableau of `method` and t_eval as float64, or ValueError (shared with the compiled loop `rk_kernel`)."""
    tab = get_tableau(method)
    t_eval = np.asarray(t_eval, dtype=np.float64)
    if t_eval.ndim != 1 or len(t_eval) < 1 or np.any(np.diff(t_eval) < 0):
        raise ValueError("t_eval must be a non-empty increasing 1-D array")
    if step is None and not tab.adaptive:
        raise ValueError(f"method {tab.name} has no error estimate: give a fixed step")
    if step is not None and not step > 0:
        raise ValueError(f"step must be positive, got {step}")
    return tab, t_eval


def _integrate(f, y0, t_eval, method, rtol, atol, step, max_steps, callback) -> Solution:
    tab, t_eval = check_arguments(method, t_eval, step)
    y = np.array(y0, dtype=np.float64).ravel()
    n, s = y.size, tab.stages
    K = np.empty((s, n))
    out = np.empty((len(t_eval), n))
    out[0] = y
    t, t_end, k_out, n_eval = float(t_eval[0]), float(t_eval[-1]), 1, 1
    K[0] = f(t, y)
    fsal = tab.fsal
    if step is None:
        h = _initial_step(f, t, y, K[0], tab.order, rtol, atol)
        n_eval += 1
        e_weights, expo = tab.b - tab.b_hat, -1.0 / (tab.error_order + 1)
    else:
        h = float(step)
    n_steps = n_rejected = 0
    while k_out < len(t_eval) and t_end > t:
        while k_out < len(t_eval) and t_eval[k_out] <= t:   # repeated times
            out[k_out] = y
            k_out += 1
        if k_out == len(t_eval):
            break
        if n_steps >= max_steps:
            return Solution(t_eval, out[:k_out], "failed", f"max_steps={max_steps} reached at t={t:.6g}",
                            n_steps, n_rejected, n_eval)
        if t_end - t <= 1e-13 * max(1.0, abs(t_end)):   # rounding left of the last step: done
            out[k_out:] = y
            k_out = len(t_eval)
            break
        h = min(h, t_end - t) if t_end - t > 1.000001 * h else t_end - t
        if h <= 1e-14 * max(1.0, abs(t)):
            return Solution(t_eval, out[:k_out], "failed", f"step size underflow at t={t:.6g}",
                            n_steps, n_rejected, n_eval)
        for i in range(1, s):
            K[i] = f(t + tab.c[i] * h, y + h * (tab.A[i, :i] @ K[:i]))
        n_eval += s - 1
        y_new = y + h * (tab.b @ K)
        if step is None:
            scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
            err = np.sqrt(np.mean((h * (e_weights @ K) / scale) ** 2))
            if not np.isfinite(err):
                if not np.all(np.isfinite(y_new)) and h < 1e-10:
                    return Solution(t_eval, out[:k_out], "diverged", f"non-finite state at t={t:.6g}",
                                    n_steps, n_rejected, n_eval)
                h *= 0.2
                n_rejected += 1
                continue
            if err > 1.0:
                h *= max(0.2, 0.9 * err ** expo)
                n_rejected += 1
                continue
            factor = 5.0 if err == 0 else min(5.0, max(0.2, 0.9 * err ** expo))
        elif not np.all(np.isfinite(y_new)):
            return Solution(t_eval, out[:k_out], "diverged", f"non-finite state at t={t + h:.6g}",
                            n_steps, n_rejected, n_eval)
        t_new = t + h
        if fsal:
            f_new = K[-1].copy()
        else:
            f_new = f(t_new, y_new)
            n_eval += 1
        while k_out < len(t_eval) and t_eval[k_out] <= t_new:
            theta = (t_eval[k_out] - t) / h
            out[k_out] = y_new if theta == 1.0 else _dense(tab, K, y, y_new, f_new, h, theta)
            k_out += 1
        n_steps += 1
        t, y = t_new, y_new
        K[0] = f_new
        if callback is not None:
            callback(t)
        if step is None:
            h *= factor
        else:
            h = float(step)
    out[k_out:] = y   # times equal to the last one reached (e.g. t_eval = [t0, t0])
    return Solution(t_eval, out, "complete", "", n_steps, n_rejected, n_eval)


def _dense(tab: Tableau, K: np.ndarray, y0: np.ndarray, y1: np.ndarray, f1: np.ndarray, h: float,
           theta: float) -> np.ndarray:
    """y(t + theta h) from the tableau's dense output, else the cubic Hermite interpolant of (y0, f0, y1, f1)."""
    if tab.P is not None:
        powers = theta ** np.arange(1, tab.P.shape[1] + 1)
        return y0 + h * ((tab.P @ powers) @ K)
    h00, h10, h01, h11 = (2 * theta ** 3 - 3 * theta ** 2 + 1, theta ** 3 - 2 * theta ** 2 + theta,
                          -2 * theta ** 3 + 3 * theta ** 2, theta ** 3 - theta ** 2)
    return h00 * y0 + h10 * h * K[0] + h01 * y1 + h11 * h * f1
