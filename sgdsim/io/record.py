"""Recording training loops that run outside sgdsim (e.g. PyTorch or JAX) into run files, and importing
trajectories saved as NPZ, so that `sgdsim compare` and `sgdsim.open` treat them like any simulated run.

    with sgdsim.record("mlp.h5", params={"width": 64, "batch": 32}, lr=0.05, seed=1) as rec:
        for step in range(n_steps):
            ...
            if step % 10 == 0:
                rec.log(step, loss=float(loss), weights={"W1": W1, "W2": W2})

Everything goes through `runfile.RunWriter`, so the file has exactly the run-file layout (DESIGN.md):
each logged name becomes the element ``/observables/<name>`` (a dict value ``weights={"W1": ...}`` becomes
``/observables/weights_W1``), created on its first use with the shape and dtype of that first value; the
file is ``<path>.partial`` with status "running" until the recording closes, then renamed; buffered rows are
flushed every `flush_seconds`, so a killed loop leaves a readable ``.partial`` holding everything up to the
last flush. No deep-learning framework is needed: any value ``np.asarray`` accepts is fine. Converting a
tensor is the caller's job, e.g. ``t.detach().cpu().numpy()`` for PyTorch (``np.asarray`` refuses a tensor
that requires grad or lives on a GPU).

A prediction goes beside what is logged with `Recording.theory` (``/theory/<name>``, which `sgdsim compare
--theory stored` and `sgdsim plot` use), and two helpers compute what such loops record next: `gradient_noise`
(the trace of the per-example gradient covariance and the SGD temperature) and `sharpness` (the top Hessian
eigenvalue by power iteration on a Hessian-vector product the caller supplies).
"""
from __future__ import annotations

import math
import os
import time as _time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..particles.dynamics import minibatch_noise_factor
from ..errors import ParameterError, RunFileError
from .runfile import ElementWriter, RunWriter, attr_value

__all__ = ["Recording", "record", "import_npz", "GradientNoise", "gradient_noise", "sharpness"]

_KINDS = "fiub"  # float, signed and unsigned integer, bool: stored in the dtype of the first value


def _step(step: Any) -> int:
    if isinstance(step, (int, np.integer)) and not isinstance(step, (bool, np.bool_)):
        value = int(step)
    elif isinstance(step, (float, np.floating)) and float(step).is_integer():
        value = int(step)
    else:
        raise ParameterError(f"step must be an integer, got {step!r}")
    if not 0 <= value < 2 ** 63:
        raise ParameterError(f"step must be in [0, 2**63), got {step!r}")
    return value


def _positive(name: str, value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a positive number, got {value!r}")
    return value


class Recording:
    """A run file being recorded from an outside training loop; make one with `record`. A context manager:
    a clean exit closes it as "complete" (or "diverged", see `close`), an exception as "failed"."""

    def __init__(self, path: str | os.PathLike, params: dict | None = None, *, scenario: str = "external",
                 seed: int = 0, lr: float | None = None, flush_seconds: float = 5.0,
                 swmr: bool | None = None) -> None:
        params = dict(params or {})
        if lr is not None:
            lr = _positive("lr", lr)
            if "lr" in params and params["lr"] != lr:
                raise ParameterError(f"lr={lr} disagrees with params['lr']={params['lr']!r}")
            params["lr"] = lr
        elif "lr" in params:
            lr = _positive("params['lr']", params["lr"])
        self.lr: float | None = lr
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
            raise ParameterError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        if not (isinstance(flush_seconds, (int, float)) and flush_seconds >= 0):
            raise ParameterError(f"flush_seconds must be a number >= 0, got {flush_seconds!r}")
        self.flush_seconds = float(flush_seconds)
        try:
            self.writer = RunWriter(path, scenario=scenario, params=params, seed=int(seed), swmr=swmr)
        except TypeError as e:  # a parameter value JSON cannot store
            raise ParameterError(f"params: {e}") from None
        except OSError as e:
            raise RunFileError(f"{path}: cannot create the run file ({' '.join(str(e).split())})") from None
        self._elements: dict[str, tuple[ElementWriter, int]] = {}  # name -> (writer, first step)
        self._last_step: dict[str, int] = {}
        self._declared: dict[str, dict] = {}
        self._nonfinite: tuple[str, int] | None = None
        self._flushed_at = _time.monotonic()
        self.closed = False

    @property
    def path(self) -> Path:
        """The final path (the file is ``<path>.partial`` until `close`)."""
        return self.writer.path

    def declare(self, name: str, *, coords: dict[str, Any] | None = None, attrs: dict | None = None) -> None:
        """Give quantity `name` coordinates (one 1-D array per value dimension, in order, e.g.
        ``{"x": grid}``) and attributes (e.g. ``{"kind": "density"}``, which `compare` reads as a density on
        the grid), before its first `log`."""
        if name in self._elements:
            raise ParameterError(f"quantity {name!r}: declare it before its first log")
        try:
            for value in (attrs or {}).values():
                attr_value(value)
        except TypeError as e:
            raise ParameterError(f"quantity {name!r}: {e}") from None
        self._declared[_check_name(name)] = {"coords": coords, "attrs": attrs}

    def log(self, step: int, time: float | None = None, /, **quantities: Any) -> None:
        """Record named arrays or scalars at `step` (and `time`: default lr * step, or step without lr).

        A dict value is expanded to one quantity per key, ``<name>_<key>``. Each quantity keeps its own steps,
        which must increase; its shape is set by its first value. All values are checked before any is
        written, so a call that raises records nothing. Non-finite values are recorded as they are, and the
        recording then closes with status "diverged".
        """
        if self.closed:
            raise ParameterError(f"{self.path}: the recording is closed")
        step = _step(step)
        t = (step * self.lr if self.lr is not None else float(step)) if time is None else time
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise ParameterError(f"time at step {step} must be a number, got {time!r}") from None
        if not math.isfinite(t):
            raise ParameterError(f"time at step {step} must be finite, got {t}")
        rows = {}
        for name, value in _expand(quantities, step).items():
            arr = _array(name, value, step)
            if name in self._elements:
                el, first = self._elements[name]
                if arr.shape != el.value_shape:
                    raise ParameterError(f"quantity {name!r} at step {step}: value of shape {arr.shape}, expected "
                                         f"{el.value_shape} (the shape of its first value, at step {first})")
                if step <= self._last_step[name]:
                    raise ParameterError(f"quantity {name!r}: step {step} is not after its previous step "
                                         f"{self._last_step[name]}")
            else:
                _check_coords(name, self._declared.get(name, {}).get("coords"), arr.shape)
            rows[name] = arr
        for name, arr in rows.items():
            if name not in self._elements:
                spec = self._declared.get(name, {})
                el = self.writer.element(name, arr.shape, dtype=arr.dtype, coords=spec.get("coords"),
                                         attrs=spec.get("attrs"))
                self._elements[name] = (el, step)
            self._elements[name][0].append(step, t, arr)
            self._last_step[name] = step
            if self._nonfinite is None and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                self._nonfinite = (name, step)
        if _time.monotonic() - self._flushed_at >= self.flush_seconds:
            self.flush()

    def theory(self, name: str, value: Any, *, source: str, equation: str, step: Any = None, time: Any = None,
               coords: dict | None = None, attrs: dict | None = None) -> None:
        """Store a prediction as ``/theory/<name>``: a curve over time when `step` and `time` are given (one
        value row per step; time in the units of the logged times, e.g. lr * step), else a stationary value
        (a limit, an equilibrium). Named like a logged quantity, it is what ``sgdsim compare --theory stored``
        holds that quantity against and what ``sgdsim plot`` draws dashed beside it. `source` (paper) and
        `equation` say where it comes from."""
        if self.closed:
            raise ParameterError(f"{self.path}: the recording is closed")
        _check_name(name)
        try:
            self.writer.theory(name, value, source=source, equation=equation, step=step, time=time, coords=coords,
                               attrs=attrs)
        except (ValueError, TypeError) as e:
            raise ParameterError(f"theory {name!r}: {' '.join(str(e).split())}") from None

    def flush(self) -> None:
        """Write every buffered row to disk now."""
        self.writer.flush()
        self._flushed_at = _time.monotonic()

    def close(self, status: str | None = None, message: str = "") -> Path:
        """Close and rename to the final path. Default status: "diverged" (message naming the quantity and
        step) if a non-finite value was logged, else "complete"."""
        if status is None:
            status = "complete"
            if self._nonfinite is not None:
                status = "diverged"
                message = message or "{} became non-finite at step {}".format(*self._nonfinite)
        self.closed = True
        return self.writer.close(status, message)  # idempotent

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.close()
            return False
        self.closed = True
        return self.writer.__exit__(exc_type, exc, tb)  # closes as "failed" with the exception's message


def record(path: str | os.PathLike, params: dict | None = None, *, scenario: str = "external", seed: int = 0,
           lr: float | None = None, flush_seconds: float = 5.0, swmr: bool | None = None) -> Recording:
    """Start recording a training loop into the run file `path` (see the module docstring).

    `params` (JSON-serialisable) are stored as the run's parameters; `lr`, if given, is stored as
    ``params["lr"]`` and makes the default time of a logged step lr * step (so ``sgdsim compare --time lr``
    works); `scenario` and `seed` label the run. Buffered rows reach the disk at least every `flush_seconds`.
    """
    return Recording(path, params, scenario=scenario, seed=seed, lr=lr, flush_seconds=flush_seconds, swmr=swmr)


def _check_name(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ParameterError(f"quantity name {name!r} must be non-empty and contain no '/'")
    return name


def _check_coords(name: str, coords: dict | None, shape: tuple) -> None:
    if len(coords or {}) > len(shape):
        raise ParameterError(f"quantity {name!r}: {len(coords)} coords for {len(shape)} value dimension(s)")
    for i, (axis, c) in enumerate((coords or {}).items()):
        c = np.asarray(c)
        if c.ndim != 1 or len(c) != shape[i] or axis in ("step", "time", "value"):
            raise ParameterError(f"quantity {name!r}: coord {axis!r} has shape {c.shape}, value dimension {i} "
                                 f"has length {shape[i]} (and a coord may not be called step, time or value)")


def _expand(quantities: dict[str, Any], step: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in quantities.items():
        items = {f"{name}_{k}": v for k, v in value.items()} if isinstance(value, dict) else {name: value}
        for key, v in items.items():
            if key in out:
                raise ParameterError(f"quantity {key!r} is given twice at step {step}")
            out[_check_name(key)] = v
    return out


def _array(name: str, value: Any, step: int) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise ParameterError(f"quantity {name!r} at step {step}: cannot convert {type(value).__name__} to an array "
                             f"({' '.join(str(e).split())}); convert tensors first, e.g. "
                             f"t.detach().cpu().numpy()") from None
    if arr.dtype.kind not in _KINDS:
        raise ParameterError(f"quantity {name!r} at step {step}: values must be numbers or booleans, got dtype "
                             f"{arr.dtype} ({type(value).__name__})")
    return arr


def import_npz(npz_path: str | os.PathLike, run_path: str | os.PathLike, *, params: dict | None = None,
               scenario: str = "imported", seed: int = 0, lr: float | None = None,
               coords: dict[str, dict] | None = None, attrs: dict[str, dict] | None = None) -> Path:
    """Write the trajectory saved in an NPZ file as a run file; returns its path.

    The NPZ holds ``step`` (1-D integers, increasing), optionally ``time`` (same length; default lr * step,
    or step without lr) and named arrays with one row per step (first axis), each becoming
    ``/observables/<name>``. `coords` and `attrs` map a name to its coordinates and attributes (see
    `Recording.declare`); `params`, `scenario`, `seed`, `lr` as in `record`.
    """
    npz_path = Path(npz_path)
    if not npz_path.exists():
        raise RunFileError(f"{npz_path}: no such file")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("a single array (.npy), not an archive of named arrays")
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise RunFileError(f"{npz_path}: not a readable NPZ file ({' '.join(str(e).split())})") from None
    if "step" not in arrays:
        raise ParameterError(f"{npz_path}: no 'step' array (has: {', '.join(sorted(arrays)) or 'nothing'})")
    steps = arrays.pop("step")
    if steps.ndim != 1 or steps.dtype.kind not in "iu":
        raise ParameterError(f"{npz_path}: 'step' must be a 1-D integer array, got shape {steps.shape} dtype "
                             f"{steps.dtype}")
    if np.any(np.diff(steps) <= 0):
        raise ParameterError(f"{npz_path}: 'step' must be strictly increasing")
    times = arrays.pop("time", None)
    if times is not None and times.shape != steps.shape:
        raise ParameterError(f"{npz_path}: 'time' has shape {times.shape}, 'step' has {steps.shape}")
    if not arrays:
        raise ParameterError(f"{npz_path}: no named arrays besides step and time")
    for name, arr in arrays.items():
        if arr.ndim == 0 or len(arr) != len(steps):
            raise ParameterError(f"{npz_path}: array {name!r} has shape {arr.shape}; every named array needs one "
                                 f"row per step ({len(steps)})")
    for name in set(coords or {}) | set(attrs or {}):
        if name not in arrays:
            raise ParameterError(f"{npz_path}: coords/attrs given for {name!r}, which is not in the file "
                                 f"(has: {', '.join(sorted(arrays))})")
    with Recording(run_path, params, scenario=scenario, seed=seed, lr=lr) as rec:
        for name in arrays:
            rec.declare(name, coords=(coords or {}).get(name), attrs=(attrs or {}).get(name))
        for i, s in enumerate(steps):
            rec.log(s, None if times is None else times[i], **{k: a[i] for k, a in arrays.items()})
    return rec.path


# ---------------------------------------------------------------------------------------------- helpers

@dataclass(frozen=True)
class GradientNoise:
    """What `gradient_noise` measures at one point of training."""
    grad_norm: float     # |g|, g = (1/N) sum_i g_i, the full-batch gradient
    trace: float         # tr C, C = (1/N) sum_i (g_i - g)(g_i - g)^T, the per-example gradient covariance
    temperature: float   # T = lr tr C_B / 2, C_B the covariance of one minibatch gradient


def gradient_noise(per_example_grads: Any, *, lr: float, batch: int, replace: bool = False) -> GradientNoise:
    """Gradient-noise trace and SGD temperature from the per-example gradients g_i (N rows, any shape after).

    tr C = (1/N) sum_i |g_i - g|^2. A minibatch of B examples has gradient covariance C_B = k C with k from
    `dynamics.minibatch_noise_factor` ((N - B) / (B (N - 1)) without replacement, 1 / B with), and
    SGD with rate lr is, to first order, Langevin dynamics at temperature T = lr tr C_B / 2, the total over
    parameters (Mandt, Hoffman & Blei 2017, eq. 9 with an isotropic reading of C; Jastrzebski et al. 2017:
    T ~ lr / B), which is what `sgdsim.networks` records as sgd_temperature for minibatches without
    replacement.
    """
    g = np.asarray(per_example_grads, dtype=np.float64)
    if g.ndim < 1 or len(g) < 2:
        raise ParameterError(f"per-example gradients need at least 2 rows (examples), got shape {g.shape}")
    g = g.reshape(len(g), -1)
    if not np.all(np.isfinite(g)):
        raise ParameterError("per-example gradients must be finite")
    n = len(g)
    lr = _positive("lr", lr)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 1 <= batch <= (n if not replace
                                                                                                   else 2 ** 63):
        raise ParameterError(f"batch must be an integer in [1, {n}] (the number of examples), got {batch!r}")
    mean = g.mean(axis=0)
    trace = float(np.mean(np.sum((g - mean) ** 2, axis=1)))
    return GradientNoise(float(np.linalg.norm(mean)), trace, lr * trace * minibatch_noise_factor(n, batch, replace) / 2)


def sharpness(hvp, dim: int, *, iters: int = 100, tol: float = 1e-6, seed: int = 0) -> float:
    """The largest-magnitude eigenvalue of a Hessian H given only through v -> H v (`hvp`, e.g. double
    backpropagation or finite differences of gradients), by power iteration: v <- Hv / |Hv|, lambda = v.Hv,
    from a normal start drawn with default_rng(seed), until lambda changes by at most tol relative, or
    `iters` times. Near a minimum (H positive semi-definite) this is the top eigenvalue, the sharpness
    (Cohen et al. 2021 compare it with 2 / lr). Convergence is geometric in the ratio of the two largest
    |eigenvalues|; the result is a lower bound on |lambda_max| when it has not converged."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ParameterError(f"dim must be a positive integer, got {dim!r}")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 1:
        raise ParameterError(f"iters must be a positive integer, got {iters!r}")
    v = np.random.default_rng(seed).standard_normal(int(dim))
    v /= np.linalg.norm(v)
    lam = math.inf
    for _ in range(int(iters)):
        hv = np.asarray(hvp(v), dtype=np.float64).reshape(-1)
        if hv.shape != v.shape or not np.all(np.isfinite(hv)):
            raise ParameterError(f"hvp must return a finite vector of length {dim}, got shape {hv.shape}")
        new = float(v @ hv)
        norm = np.linalg.norm(hv)
        if norm == 0:
            return 0.0
        v = hv / norm
        done = abs(new - lam) <= tol * abs(new)
        lam = new
        if done:
            break
    return lam
