"""Deep linear networks x -> W_N ... W_1 x on the user's side: initializations, balancedness, and runs of the
three dynamics (discrete GD/SGD on the factors, the factor gradient flow, the end-to-end ODE of Arora, Cohen
& Hazan 2018 Theorem 1), plus GD, AdaGrad and Adam on the depth-1 model as baselines. The two flows run on
the compiled Runge–Kutta loop `solvers.rk_kernel` (engine="numba", default) or its NumPy twin (engine="numpy").

Conventions (as in `sgdsim.solvers.linear_flows`): X (n, d_in), Y (n, d_out), W_1 (h_1, d_in) ... W_N
(d_out, h_{N-1}), loss L(W_e) = (1/(p n)) sum |X W_e^T - Y|^p. Time of discrete training is t = step * lr.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import runloop
from ..errors import ParameterError
from ..solvers.deep_linear import flows as lf
from ..solvers import rk
from ..solvers import rk_kernel

end_to_end = lf.end_to_end
ENGINES = ("numba", "numpy")


def loss(We: np.ndarray, X: np.ndarray, Y: np.ndarray, p: float = 2.0) -> float:
    """L(W_e) = (1/(p n)) sum_i |W_e x_i - y_i|_p^p."""
    return lf.lp_loss_grad(We, X, Y, p)[0]


def _dims(d_in: int, d_out: int, depth: int, widths: Sequence[int] | None) -> list[int]:
    if depth < 1:
        raise ParameterError(f"depth must be at least 1, got {depth}")
    widths = list(widths) if widths is not None else [max(d_in, d_out)] * (depth - 1)
    if len(widths) != depth - 1:
        raise ParameterError(f"depth {depth} needs {depth - 1} hidden widths, got {len(widths)}")
    if any(int(w) < 1 for w in widths):
        raise ParameterError(f"hidden widths must be positive, got {widths}")
    return [d_in, *map(int, widths), d_out]


def balanced_init(target: np.ndarray, depth: int, widths: Sequence[int] | None = None) -> list[np.ndarray]:
    """Factors with W_N ... W_1 = target and W_{j+1}^T W_{j+1} = W_j W_j^T (balanced), from the SVD
    target = U diag(s) V^T: W_1 = Z_1 S^{1/N} V^T, W_j = Z_j S^{1/N} Z_{j-1}^T, W_N = U S^{1/N} Z_{N-1}^T with
    Z_j the first r columns of the identity (r = rank kept = min(dims)). Every hidden width must be at least
    the rank of the target."""
    target = np.asarray(target, dtype=np.float64)
    d_out, d_in = target.shape
    dims = _dims(d_in, d_out, depth, widths)
    U, s, Vt = np.linalg.svd(target, full_matrices=False)
    rank = int(np.sum(s > s.max(initial=0.0) * 1e-14)) if s.size else 0
    if min(dims) < rank:
        raise ParameterError(f"hidden width {min(dims)} is below the rank {rank} of the target end-to-end matrix")
    r = min(dims)
    U, s, Vt = U[:, :r], s[:r], Vt[:r]
    root = s ** (1.0 / depth)
    Ws = []
    for j in range(depth):
        left = U if j == depth - 1 else np.eye(dims[j + 1], r)
        right = Vt if j == 0 else np.eye(dims[j], r).T
        Ws.append((left * root) @ right)
    return Ws


def gaussian_init(dims: Sequence[int], scale: float, rng: np.random.Generator) -> list[np.ndarray]:
    """W_j with i.i.d. N(0, scale^2) entries; dims = [d_in, h_1, ..., h_{N-1}, d_out]."""
    if len(dims) < 2 or min(dims) < 1:
        raise ParameterError(f"dims must list at least d_in and d_out, all positive, got {list(dims)}")
    return [scale * rng.standard_normal((dims[j + 1], dims[j])) for j in range(len(dims) - 1)]


def balancedness(Ws: Sequence[np.ndarray]) -> list[np.ndarray]:
    """D_j = W_{j+1}^T W_{j+1} - W_j W_j^T, j = 1..N-1: conserved by the gradient flow without weight decay
    (Arora, Cohen & Hazan 2018; Du, Hu & Lee 2018), decaying as exp(-2 lambda t) with it."""
    return [Ws[j + 1].T @ Ws[j + 1] - Ws[j] @ Ws[j].T for j in range(len(Ws) - 1)]


balancedness_norm = lf.balancedness_norm   # max_j |D_j|_F (0 for depth 1)


@dataclass
class Trajectory:
    """A recorded run: time (t = step * lr for discrete training), loss L(W_e), W_e (T, d_out, d_in),
    the largest balancedness max_j |D_j|_F (factor dynamics only; NaN otherwise), the last factors, status."""
    time: np.ndarray
    loss: np.ndarray
    We: np.ndarray
    unbalance: np.ndarray
    factors: list | None
    status: str
    message: str
    steps: np.ndarray | None = None


def _check_data(X, Y) -> tuple[np.ndarray, np.ndarray]:
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise ParameterError(f"X must be (n, d_in) and Y (n, d_out) with the same n, got {X.shape} and {Y.shape}")
    return X, Y


def _times(times) -> np.ndarray:
    t = np.asarray(times, np.float64)
    if t.ndim != 1 or len(t) < 1 or np.any(np.diff(t) < 0) or t[0] < 0:
        raise ParameterError("times must be a non-empty increasing list of non-negative numbers")
    return t


def _pause(t: float) -> None:
    """The callback that only lets the compiled Runge–Kutta loop pause (see `_integrate`)."""


def _integrate(engine: str, rhs: str, flow, ipar: list[int], y0: np.ndarray, times, **kwargs) -> rk.Solution:
    """The compiled loop `rk_kernel.integrate` (engine "numba") or its NumPy twin `rk.integrate` with the
    readable right-hand side `flow.rhs` (engine "numpy"): same steps, same results to rounding.

    The compiled loop always returns to the interpreter every `rk_kernel.CHUNK` steps (a no-op callback when
    none is given; pausing changes no operation), so a SIGINT/SIGTERM under `sgdsim run` is acted on within a
    chunk: no run loop drives the flows, so the guard unwinds at once and the run file is closed
    "interrupted" (the NumPy loop runs Python code at every stage and needs nothing)."""
    if engine == "numba":
        if kwargs.get("callback") is None:
            kwargs["callback"] = _pause
        return rk_kernel.integrate(rhs, y0, _times(times), flow.X, flow.Y, [flow.p, flow.weight_decay], ipar,
                                   **kwargs)
    if engine == "numpy":
        return rk.integrate(flow.rhs, y0, _times(times), **kwargs)
    raise ParameterError(f"unknown engine {engine!r} (valid: {', '.join(ENGINES)})")


def factor_flow(Ws0: Sequence[np.ndarray], X, Y, times, *, p: float = 2.0, weight_decay: float = 0.0,
                rtol: float = 1e-10, atol: float = 1e-12, method: str = "dopri5", callback=None,
                engine: str = "numba") -> Trajectory:
    """Gradient flow of the factors, integrated by the adaptive Runge–Kutta loop (`engine`: "numba", compiled,
    or "numpy", `solvers.rk.integrate`) and recorded at `times` (the first is the time of Ws0).
    `callback(t)` is called after every step ("numpy") or every `rk_kernel.CHUNK` steps ("numba")."""
    X, Y = _check_data(X, Y)
    flow = lf.FactorFlow([W.shape for W in Ws0], X, Y, p, weight_decay)
    ipar = [len(Ws0)] + [d for shape in flow.shapes for d in shape]
    sol = _integrate(engine, "factors", flow, ipar, flow.pack(Ws0), times, method=method, rtol=rtol, atol=atol,
                     callback=callback)
    facs = [flow.unpack(y) for y in sol.y]
    We = np.array([lf.end_to_end(f) for f in facs])
    return Trajectory(sol.t[:len(We)], np.array([loss(w, X, Y, p) for w in We]), We,
                      np.array([balancedness_norm(f) for f in facs]), facs[-1] if facs else None,
                      sol.status, sol.message)


def end_to_end_flow(We0: np.ndarray, depth: int, X, Y, times, *, p: float = 2.0, weight_decay: float = 0.0,
                    rtol: float = 1e-10, atol: float = 1e-12, method: str = "dopri5", callback=None,
                    engine: str = "numba") -> Trajectory:
    """The end-to-end ODE (Arora, Cohen & Hazan 2018 Theorem 1) from W_e(0) = We0, recorded at `times`
    (Claim 2's single-output form when d_out = 1); `engine` and `callback` as in `factor_flow`."""
    X, Y = _check_data(X, Y)
    flow = lf.EndToEndFlow(depth, X, Y, p, weight_decay)
    We0 = np.asarray(We0, np.float64)
    if We0.shape != flow.shape:
        raise ParameterError(f"We0 must have shape {flow.shape} (d_out, d_in), got {We0.shape}")
    rhs = "single-output" if flow.shape[0] == 1 else "end-to-end"
    sol = _integrate(engine, rhs, flow, [flow.depth, *flow.shape], We0.ravel(), times, method=method, rtol=rtol,
                     atol=atol, callback=callback)
    We = sol.y.reshape((-1,) + flow.shape)
    return Trajectory(sol.t[:len(We)], np.array([loss(w, X, Y, p) for w in We]), We,
                      np.full(len(We), np.nan), None, sol.status, sol.message)


def _recorded(record_steps) -> np.ndarray:
    steps = np.asarray(record_steps, dtype=np.int64)
    if steps.ndim != 1 or not len(steps) or np.any(steps < 0) or np.any(np.diff(steps) <= 0):
        raise ParameterError("record_steps must be increasing non-negative integers")
    return steps


def _run(advance, record_steps, observe, lr: float, what: str, progress: bool, stream=None):
    """Drive `advance` through the record steps (`sgdsim.runloop`): rows of `observe()` at each of them (and at
    the step an interrupt reached), each also given to `stream.append(step, time, row)` as it is taken; the
    run cut at the first non-finite weights or loss (status diverged, the step named) or at an interrupt."""
    wanted = set(int(s) for s in record_steps)
    rows, steps_done = [], []
    state = {"diverged_after": -1, "step": 0}

    def record(step):
        if step in wanted or step > 0:   # a step off the schedule: where an interrupt stopped the run
            rows.append(observe())
            steps_done.append(step)
            if stream is not None and np.isfinite(rows[-1][0]):
                stream.append(step, step * lr, rows[-1])

    def go(k):
        bad = advance(k)
        if bad >= 0:
            state["diverged_after"] = state["step"] + bad
        state["step"] += k

    def diverged():
        if state["diverged_after"] >= 0:
            return f"{what}non-finite weights at step {state['diverged_after']}"
        if rows and not np.isfinite(rows[-1][0]):
            return f"{what}non-finite loss at step {steps_done[-1]}"
        return None

    try:
        result = runloop.drive(go, int(record_steps[-1]),
                               runloop.Schedule(steps=tuple(int(s) for s in record_steps)), record,
                               diverged=diverged, progress=progress)
    finally:
        if stream is not None:
            stream.flush()
    if result.status is runloop.Status.DIVERGED and rows and not np.isfinite(rows[-1][0]):
        rows, steps_done = rows[:-1], steps_done[:-1]   # the non-finite record is not kept
    return rows, np.array(steps_done, np.int64), str(result.status), result.message


class Stream:
    """Streams the records of one trajectory to a run file as they are taken: elements ``loss_<name>`` (L(W_e),
    without the weight-decay term), ``balancedness_<name>`` (factor dynamics) and, with `modes` = (U, V^T),
    ``modes_<name>`` (u_k = U_k^T W_e V_k per mode k), each with step and time t = step * lr; `attrs` is added
    to every element's attributes. The file is flushed at the first record, then whenever FLUSH_SECONDS have
    passed since the last flush (a flush costs milliseconds), and when the trajectory ends or stops, so a run
    killed at any moment keeps every record up to its last flush."""

    FLUSH_SECONDS = 0.5

    def __init__(self, writer, name: str, *, factors: bool, modes: tuple | None = None,
                 attrs: dict | None = None) -> None:
        self.writer, self.modes = writer, modes
        extra = dict(attrs or {})
        self.loss = writer.element(f"loss_{name}", (), attrs={
            "description": "L(W_e) = (1/(p n)) sum |W_e x - y|_p^p (without weight decay)", **extra})
        self.balance = writer.element(f"balancedness_{name}", (), attrs={
            "description": "max_j |W_{j+1}^T W_{j+1} - W_j W_j^T|_F during GD", **extra}) if factors else None
        self.mode = None
        if modes is not None:
            k = modes[0].shape[1]
            self.mode = writer.element(f"modes_{name}", (k,), coords={"mode": np.arange(k)}, attrs={
                "description": "u_k = U_k^T W_e V_k during GD on the factors", **extra})
        self.flushed = None

    def project(self, We: np.ndarray) -> np.ndarray:
        """u_k = U_k^T W_e V_k of the `modes` (U, V^T)."""
        U, Vt = self.modes
        return np.einsum("ik,ij,kj->k", U, We, Vt)

    def append(self, step: int, t: float, row: tuple) -> None:
        self.loss.append(int(step), float(t), row[0])
        if self.mode is not None:
            self.mode.append(int(step), float(t), self.project(row[1]))
        if self.balance is not None:
            self.balance.append(int(step), float(t), row[2])
        if self.flushed is None or time.perf_counter() - self.flushed >= self.FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.writer.flush()
        self.flushed = time.perf_counter()


def train_factors(Ws0: Sequence[np.ndarray], X, Y, lr: float, record_steps, *, p: float = 2.0,
                  weight_decay: float = 0.0, batch: int | None = None, seed: int = 0,
                  progress: bool = False, writer=None, name: str = "", modes: tuple | None = None,
                  attrs: dict | None = None) -> Trajectory:
    """Discrete GD (batch None) or minibatch SGD on the factors (`solvers.deep_linear.flows.factor_gd_steps`) through
    the run loop: recorded at `record_steps` (loss on the full data without the weight-decay term, W_e, the
    balancedness norm); time t = step * lr. With a run `writer`, every record is streamed to it as it is taken
    (`Stream`: elements loss_<name>, balancedness_<name> and, given modes = (U, V^T), modes_<name>), so a run
    killed at any moment leaves every record up to the last flush; under `sgdsim run` a SIGINT/SIGTERM stops
    at the next chunk with status "interrupted" and the step reached recorded."""
    X, Y = _check_data(X, Y)
    if lr <= 0:
        raise ParameterError(f"lr must be positive, got {lr}")
    if batch is not None and not 1 <= batch <= len(X):
        raise ParameterError(f"batch {batch} must be between 1 and the number of examples {len(X)}")
    record_steps = _recorded(record_steps)
    Ws = [np.array(W, dtype=np.float64) for W in Ws0]
    rng = np.random.default_rng(seed) if batch is not None and batch < len(X) else None
    stream = Stream(writer, name, factors=True, modes=modes, attrs=attrs) if writer is not None else None

    def observe():
        We = lf.end_to_end(Ws)
        return lf.lp_loss_grad(We, X, Y, p)[0], We, lf.balancedness_norm(Ws)

    rows, steps, status, message = _run(
        lambda k: lf.factor_gd_steps(Ws, X, Y, p, lr, k, weight_decay=weight_decay, batch=batch, rng=rng),
        record_steps, observe, lr, "", progress, stream)
    losses, Wes, unbalance = _columns(rows, (Y.shape[1], X.shape[1]), 3)
    return Trajectory(steps * lr, losses, Wes, unbalance, Ws, status, message, steps)


def _columns(rows, shape, width):
    if not rows:
        return np.zeros(0), np.zeros((0,) + shape), np.zeros(0)
    columns = list(zip(*rows))
    return (np.array(columns[0], float), np.array(columns[1], float),
            np.array(columns[2], float) if width > 2 else np.full(len(rows), np.nan))


OPTIMIZERS = ("gd", "adagrad", "adam")


def train_depth1(W0: np.ndarray, X, Y, optimizer: str, lr: float, record_steps, *, p: float = 2.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, progress: bool = False,
                 writer=None, name: str = "", attrs: dict | None = None) -> Trajectory:
    """Full-batch GD, AdaGrad (Duchi, Hazan & Singer 2011: W -= lr g / (sqrt(sum g^2) + eps)) or Adam (Kingma
    & Ba 2015, bias-corrected) on the depth-1 model W (d_out, d_in), through the run loop; t = step * lr.
    With a run `writer`, the loss is streamed as it is recorded (element loss_<name>, `Stream`)."""
    X, Y = _check_data(X, Y)
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"unknown optimizer {optimizer!r} (valid: {', '.join(OPTIMIZERS)})")
    record_steps = _recorded(record_steps)
    W = np.array(W0, np.float64)
    m, v = np.zeros_like(W), np.zeros_like(W)
    taken = [0]

    def advance(k):
        nonlocal m, v
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(k):
                g = lf.lp_loss_grad(W, X, Y, p)[1]
                taken[0] += 1
                if optimizer == "gd":
                    W[...] -= lr * g
                elif optimizer == "adagrad":
                    v += g * g
                    W[...] -= lr * g / (np.sqrt(v) + eps)
                else:
                    m = betas[0] * m + (1 - betas[0]) * g
                    v = betas[1] * v + (1 - betas[1]) * g * g
                    W[...] -= lr * (m / (1 - betas[0] ** taken[0])) / (np.sqrt(v / (1 - betas[1] ** taken[0])) + eps)
                if not np.isfinite(W.sum()):
                    return i + 1
        return -1

    stream = Stream(writer, name, factors=False, attrs=attrs) if writer is not None else None
    rows, steps, status, message = _run(advance, record_steps, lambda: (loss(W, X, Y, p), W.copy()), lr,
                                        f"{optimizer}: ", progress, stream)
    losses, Wes, unbalance = _columns(rows, W.shape, 2)
    return Trajectory(steps * lr, losses, Wes, unbalance, None, status, message, steps)


def predict_loss_curve(X, Y, times, depth: int, We0: np.ndarray, *, p: float = 2.0, weight_decay: float = 0.0,
                       rtol: float = 1e-10, atol: float = 1e-12, engine: str = "numba") -> np.ndarray:
    """L(W_e(t)) at `times` from the end-to-end ODE: the loss curve of gradient flow on a depth-`depth`
    linear network started balanced at end-to-end matrix We0 (and the small-lr limit of GD, t = step * lr).
    NaN past a divergence."""
    traj = end_to_end_flow(We0, depth, X, Y, times, p=p, weight_decay=weight_decay, rtol=rtol, atol=atol,
                           engine=engine)
    out = np.full(len(np.atleast_1d(times)), np.nan)
    out[:len(traj.loss)] = traj.loss
    return out


def lp_minimum(X, Y, p: float = 2.0, tol: float = 1e-13, max_iter: int = 200) -> tuple[np.ndarray, float]:
    """(W*, L(W*)): the minimizer of the convex l_p loss (least squares for p = 2; damped Newton from it for
    p > 2, with gradient (1/n) X^T (r |r|^{p-2}) and Hessian ((p-1)/n) X^T diag|r|^{p-2} X per output)."""
    X, Y = _check_data(X, Y)
    W = np.linalg.lstsq(X, Y, rcond=None)[0].T
    if p == 2:
        return W, loss(W, X, Y, p)
    n = len(X)
    for k in range(Y.shape[1]):
        w, y = W[k].copy(), Y[:, k]
        f = lambda v: float(np.sum(np.abs(X @ v - y) ** p)) / (p * n)  # noqa: E731
        for _ in range(max_iter):
            r = X @ w - y
            g = X.T @ (r * np.abs(r) ** (p - 2)) / n
            H = (p - 1) * (X.T * np.abs(r) ** (p - 2)) @ X / n
            step = np.linalg.lstsq(H, g, rcond=None)[0]
            a, f0 = 1.0, f(w)
            while f(w - a * step) > f0 - 0.25 * a * float(g @ step) and a > 1e-12:
                a *= 0.5
            w = w - a * step
            if float(g @ step) < tol * max(f0, 1e-300):
                break
        W[k] = w
    return W, loss(W, X, Y, p)
