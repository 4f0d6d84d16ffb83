"""The numerics of `sgdsim compare`: linear interpolation onto the measured times, the discrepancy metrics,
the L1 and KL of densities on a grid (cell masses), and the checks on time axes (definitions in the module
docstring of `sgdsim.compare`)."""
from __future__ import annotations

import math

import numpy as np

from ..particles import theory as _theory
from ..errors import ParameterError
from ..io.runread import Element, Run

REL_FLOOR = 1e-3  # relative errors are taken against max(|b|, REL_FLOOR * max|b|)


def interpolate(t_ref: np.ndarray, v_ref: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation of rows v_ref (n, ...) given at strictly increasing t_ref onto t, which
    must lie in [t_ref[0], t_ref[-1]]; exact (bit for bit) at the nodes t_ref."""
    v_ref = np.asarray(v_ref, dtype=float)
    t = np.asarray(t, dtype=float)
    if len(t_ref) == 1:
        return np.repeat(v_ref[:1], len(t), axis=0)
    i = np.clip(np.searchsorted(t_ref, t, side="right") - 1, 0, len(t_ref) - 2)
    w = ((t - t_ref[i]) / (t_ref[i + 1] - t_ref[i])).reshape(-1, *([1] * (v_ref.ndim - 1)))
    return v_ref[i] * (1.0 - w) + v_ref[i + 1] * w


def discrepancy(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Max and RMS absolute and relative errors of measured a against reference b (see the module docstring)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - b)
        scale = np.maximum(np.abs(b), REL_FLOOR * np.max(np.abs(b)))
        rel = np.divide(err, scale, out=np.full(err.shape, np.nan), where=scale > 0)  # NaN: reference all 0
        return {"max_abs_error": float(np.max(err)), "rms_abs_error": float(np.sqrt(np.mean(err ** 2))),
                "max_rel_error": float(np.max(rel)), "rms_rel_error": float(np.sqrt(np.mean(rel ** 2)))}


def cell_widths(el: Element) -> np.ndarray:
    """Width (area, volume) of each grid cell of a density element: from its ``edges`` attribute for a 1-D
    grid, else from its coordinates (cells bounded by the midpoints between grid points); 1 along an axis
    without a coordinate."""
    shape = el.value.shape[1:]
    if "edges" in el.attrs and len(shape) == 1:
        return np.diff(grid_edges(el))
    widths = np.ones(shape)
    for axis, (name, c) in enumerate(el.coords.items()):
        c = np.asarray(c, dtype=float)
        if name.startswith("dim") or len(c) < 2:
            continue
        mid = (c[1:] + c[:-1]) / 2
        w = np.abs(np.diff(np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])))
        widths = widths * w.reshape([-1 if k == axis else 1 for k in range(len(shape))])
    return widths


def grid_edges(el: Element) -> np.ndarray:
    if "edges" in el.attrs:
        edges = np.asarray(el.attrs["edges"], dtype=float)
        if edges.shape == (el.value.shape[1] + 1,):
            return edges
    x = np.asarray(next(iter(el.coords.values()), np.arange(el.value.shape[1])), dtype=float)
    if len(x) < 2:
        raise ParameterError("a density grid needs at least 2 cells")
    mid = (x[1:] + x[:-1]) / 2
    return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])


def density_metrics(a: np.ndarray, b: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L1 and KL(p || q) at each time between measured densities a (n, *grid) and reference b, masses
    value * width (see the module docstring); KL is NaN at a time where a mass sums to 0."""
    p = (np.asarray(a, float) * widths).reshape(len(a), -1)
    q = (np.asarray(b, float) * widths).reshape(len(b), -1)
    l1 = np.abs(p - q).sum(axis=1)
    kl = np.full(len(p), np.nan)
    for k, (pk, qk) in enumerate(zip(p, q)):
        sp, sq = pk.sum(), qk.sum()
        if sp > 0 and sq > 0:
            kl[k] = _theory.kl_divergence(pk / sp, qk / sq)
    return l1, kl


def lr_of(run: Run) -> float:
    lr = run.params.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ParameterError(f"{run.path.name}: needs a positive 'lr' parameter to align t = lr * step "
                             f"(has {lr!r}); use --time time or --time step")
    return float(lr)


def check_increasing(t: np.ndarray, what: str) -> None:
    if len(t) == 0 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
        raise ParameterError(f"{what}: times must be finite and strictly increasing (and not empty)")
