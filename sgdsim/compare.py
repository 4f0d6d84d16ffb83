"""Hold a run against another run or a theory: align time, interpolate, measure the discrepancy per quantity,
store the metrics in the run's ``/comparison`` and draw overlays (``sgdsim compare``).

Quantities are the elements of ``/observables``: every name present in both runs (``against``) or predicted
by the theory, narrowed by ``quantities``. Time axis (``time``):
  "time"  the recorded time column of each element (default);
  "lr"    t = lr * step with lr read from each run's parameters;
  "step"  the step column.
A theory predicts in continuous time t (= lr * step for SGD, DESIGN.md), so with "step" its times are divided
by the run's lr. The reference is interpolated linearly (piecewise-linear in time, exact at its own times)
onto the measured times that lie inside the range of the reference times (up to a relative 1e-12, so that
lr * step computed twice still matches); it is never extrapolated, and no overlap is an error. A theory may
be stationary (time None): the same reference at every measured time.

Metrics per quantity, over every overlapping time and component, with a = measured, b = reference:
  abs error  e = |a - b|                                  -> <q>_max_abs_error, <q>_rms_abs_error
  rel error  e / max(|b|, REL_FLOOR * max|b|)             -> <q>_max_rel_error, <q>_rms_rel_error
(the floor, a fraction of the reference's largest magnitude over the compared range, keeps the relative
error finite where the reference crosses zero; an identically zero reference gives 0 where e = 0, inf
elsewhere), and <q>_n_times, the number of compared times. A density (an element with attribute
kind="density", or the ``edges`` of its grid, as `simulate` writes histograms) also gets, at each time,
  L1 = sum_i |p_i - q_i| and KL(p || q) = sum_i p_i log(p_i / q_i)  (Kullback & Leibler 1951),
with p_i, q_i the masses value * cell width of the grid cells, normalised to 1 on the grid for KL only;
-> <q>_l1_final, <q>_kl_final, <q>_l1_max, <q>_kl_max, and the series in ``/comparison/<q>/{time,l1,kl}``.
"""
from __future__ import annotations

import math
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from . import theory as _theory
from .errors import ParameterError, RunFileError
from .runread import Element, Run, open_run

__all__ = ["THEORIES", "TIME_AXES", "REL_FLOOR", "Comparison", "QuantityComparison", "compare", "interpolate",
           "discrepancy", "density_metrics", "compare_path", "theory_help"]

TIME_AXES = ("time", "lr", "step")
REL_FLOOR = 1e-3
OVERLAP_SLACK = 1e-12  # relative: a time one rounding away from the reference range still counts as inside
MAX_PANELS = 6
_METRICS = ("max_abs_error", "rms_abs_error", "max_rel_error", "rms_rel_error", "n_times", "l1_final", "kl_final",
            "l1_max", "kl_max")  # <quantity>_<metric>; a new compare deletes those of the previous one

Prediction = dict[str, tuple[np.ndarray | None, np.ndarray]]  # quantity -> (continuous time t or None, value)


# --------------------------------------------------------------------------------------------- theories


def _double_well_temperature(run: Run, theory: str) -> float:
    if run.scenario != "double-well" and run.params.get("landscape") != "double-well":
        raise ParameterError(f"theory {theory} is for double-well runs (scenario double-well, or params "
                             f"landscape='double-well' and temperature=T); {run.path.name} is scenario "
                             f"{run.scenario!r}")
    for where, value in (("params", run.params.get("temperature")), ("comparison", run.comparison.get("temperature"))):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ParameterError(f"{run.path.name}: temperature in {where} must be a positive number, "
                                     f"got {value!r}")
            return float(value)
    raise ParameterError(f"theory {theory} needs the temperature: {run.path.name} has no 'temperature' "
                         f"parameter and no stored /comparison temperature")


def _density_1d(run: Run, theory: str) -> Element:
    if "density" not in run.names("observables"):
        raise ParameterError(f"theory {theory} needs a 'density' element; {run.path.name} has: "
                             f"{', '.join(run.names('observables')) or 'nothing'}")
    density = run.element("density")
    if density.value.ndim != 2:
        raise ParameterError(f"theory {theory} needs a 1-D density, got values of shape {density.value.shape[1:]}")
    return density


def _double_well(x: np.ndarray) -> np.ndarray:
    return (x * x - 1.0) ** 2


def gibbs(run: Run) -> Prediction:
    """Gibbs density of the double well: `density`, stationary, for double-well runs.

    p(x) = exp(-f(x)/T) / Z with f = (x^2 - 1)^2, averaged over each cell of the run's `density` grid and
    normalised on the grid's range (`theory.gibbs_bin_probabilities`): the stationary law of the Langevin
    limit dx = -f'(x) dt + sqrt(2T) dW of SGD at the SGD temperature T (Mandt, Hoffman & Blei 2017;
    Gardiner 2009). T is the run's `temperature` parameter, else the one the double-well scenario stores in
    /comparison. Needs scenario double-well (or params landscape="double-well") and a 1-D `density`.
    """
    temperature = _double_well_temperature(run, "gibbs")
    edges = _edges(_density_1d(run, "gibbs"))
    return {"density": (None, _theory.gibbs_bin_probabilities(_double_well, edges, temperature) / np.diff(edges))}


FP_CELLS_PER_BIN = 8   # Fokker-Planck cells per bin of the run's density grid
FP_PAD = 0.5           # reflecting walls this far beyond the run's grid (and its start point)


def fokker_planck(run: Run) -> Prediction:
    """Fokker-Planck density of the double well: `density` over time, for double-well runs.

    dp/dt = d/dx (f'(x) p) + T d^2 p/dx^2 with f = (x^2 - 1)^2: the density of the Langevin limit of SGD at
    time t = lr * step (Chaudhari & Soatto 2018, eq. 6), from a point mass in the cell holding the run's
    `start` (cells [x_k, x_k + h), so that a start on a bin edge lands in the bin np.histogram puts it in), solved by
    `sgdsim.fokker_planck` (finite volumes, reflecting walls FP_PAD beyond the run's grid, FP_CELLS_PER_BIN
    cells per bin, BDF2 with time step lr) and integrated over each bin of the run's `density` grid at its
    recorded steps. T as for `gibbs`; needs params lr and start, and no momentum (heavy-ball SGD is not
    this SDE in t = lr * step).
    """
    from . import fokker_planck as fp

    temperature = _double_well_temperature(run, "fokker-planck")
    density = _density_1d(run, "fokker-planck")
    lr = _lr(run)
    start = run.params.get("start")
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise ParameterError(f"theory fokker-planck needs the start point: {run.path.name} has no numeric "
                             f"'start' parameter (got {start!r})")
    if run.params.get("momentum", 0.0) != 0.0:
        raise ParameterError(f"theory fokker-planck is for SGD without momentum; {run.path.name} has "
                             f"momentum={run.params['momentum']}")
    edges = _edges(density)
    h = float(np.min(np.diff(edges))) / FP_CELLS_PER_BIN
    lo = edges[0] - h * math.ceil((edges[0] - min(edges[0], start) + FP_PAD) / h)  # faces on the first edge
    cells = math.ceil((max(edges[-1], start) + FP_PAD - lo) / h)
    problem = fp.problem(loss=lambda x: _double_well(x[:, 0]), temperature=temperature, lo=lo, hi=lo + cells * h,
                         cells=cells)
    p0 = np.zeros(cells)  # the point mass in the cell [x_k, x_k + h) holding start, as np.histogram bins it
    p0[int(np.floor((start - lo) / h + 1e-9))] = 1.0 / h
    _increasing(density.step.astype(float), "density steps")
    out = problem.evolve(p0, density.step * lr, dt=lr)
    if out.status != "complete":
        raise ParameterError(f"theory fokker-planck: {out.message}")
    probs = np.array([problem.bin_probabilities(p, edges) for p in out.density])
    return {"density": (out.times, probs / np.diff(edges))}


_MODES = re.compile(r"modes_depth([0-9]+)")


def deep_linear(run: Run) -> Prediction:
    """Saxe mode strengths of deep linear networks: `modes_depth<N>` over time, for saxe-modes runs.

    u_k(t) solving du/dt = N u^(2-2/N) (s_k - u) (Saxe, McClelland & Ganguli 2014, eq. 6 for N = 2 and sec. 3
    for deeper nets; `linear_theory.saxe_mode`) at t = lr * step: gradient flow on N balanced factors with
    whitened inputs, one column per singular mode. s_k from params singular_values or the run's
    /theory/singular_values; u0 from params u0 when the start is decoupled (init "decoupled" or absent), else
    each mode's |u_k| at the first record (what saxe-modes does for a Gaussian start; approximate). Needs lr
    and elements modes_depth<N>, or `modes` with a depth parameter.
    """
    from . import linear_theory as lt

    observables, params = run.names("observables"), run.params
    depths = {q: int(m.group(1)) for q in observables if (m := _MODES.fullmatch(q))}
    if "modes" in observables and "depth" in params:
        depths["modes"] = params["depth"]
    if not depths:
        raise ParameterError(f"theory deep-linear needs mode strengths: elements modes_depth<N> or modes with a "
                             f"'depth' parameter; {run.path.name} has: {', '.join(observables) or 'nothing'}")
    if "singular_values" in params:
        s = np.asarray(params["singular_values"], float).ravel()
    elif "singular_values" in run.names("theory"):
        s = np.asarray(run.theory("singular_values").value, float).ravel()
    else:
        raise ParameterError(f"theory deep-linear needs the singular values of Sigma_yx: {run.path.name} has no "
                             f"'singular_values' parameter and no /theory/singular_values")
    decoupled = params.get("init", "decoupled") == "decoupled"
    if decoupled and "u0" not in params:
        raise ParameterError(f"theory deep-linear needs the initial mode strength: {run.path.name} has no 'u0' "
                             f"parameter")
    lr = _lr(run)
    out: Prediction = {}
    for q, depth in depths.items():
        el = run.element(q)
        if el.value.shape[1:] != s.shape or isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ParameterError(f"theory deep-linear, {q}: needs one column per singular value ({len(s)}) and an "
                                 f"integer depth >= 1; got values of shape {el.value.shape[1:]}, depth {depth!r}")
        u0 = np.full(len(s), float(params["u0"])) if decoupled else np.clip(np.abs(el.value[0]), 1e-12, s / 2)
        t = lr * el.step.astype(float)
        try:
            out[q] = (t, np.stack([lt.saxe_mode(t, sk, uk, depth) for sk, uk in zip(s, u0)], axis=1))
        except ParameterError as e:
            raise ParameterError(f"theory deep-linear, {q}: {e}") from None
    return out


def stored(run: Run) -> Prediction:
    """The run's own stored predictions: each /theory/<q> named like an observable <q>, for any run.

    A prediction in element form (step, time, value) is compared over its time column (t = lr * step in the
    sgdsim scenarios), a plain dataset of the observable's value shape as stationary; other shapes are left
    out. What the prediction is and where it comes from is in its attributes (source, equation).
    """
    observables = run.names("observables")
    out: Prediction = {}
    for q in run.names("theory"):
        if q in observables:
            th = run.theory(q)
            shape = run.h5["observables"][q]["value"].shape[1:]
            if (th.value.shape[1:] if th.time is not None else th.value.shape) == shape:
                out[q] = (th.time, th.value)
    return out


THEORIES: dict[str, Callable[[Run], Prediction]] = {"gibbs": gibbs, "fokker-planck": fokker_planck,
                                                    "deep-linear": deep_linear, "stored": stored}


def theory_help() -> str:
    """The registered theories, each with the first line of its docstring (for ``sgdsim compare --help``)."""
    return "; ".join(f"{name} ({(fn.__doc__ or '').strip().splitlines()[0].rstrip('.')})"
                     for name, fn in THEORIES.items())


# --------------------------------------------------------------------------------------------- numerics


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
        rel = np.divide(err, scale, out=np.where(err == 0, 0.0, np.inf), where=scale > 0)
        return {"max_abs_error": float(np.max(err)), "rms_abs_error": float(np.sqrt(np.mean(err ** 2))),
                "max_rel_error": float(np.max(rel)), "rms_rel_error": float(np.sqrt(np.mean(rel ** 2)))}


def _cell_widths(el: Element) -> np.ndarray:
    """Width (area, volume) of each grid cell of a density element: from its ``edges`` attribute for a 1-D
    grid, else from its coordinates (cells bounded by the midpoints between grid points); 1 along an axis
    without a coordinate."""
    shape = el.value.shape[1:]
    if "edges" in el.attrs and len(shape) == 1:
        return np.diff(_edges(el))
    widths = np.ones(shape)
    for axis, (name, c) in enumerate(el.coords.items()):
        c = np.asarray(c, dtype=float)
        if name.startswith("dim") or len(c) < 2:
            continue
        mid = (c[1:] + c[:-1]) / 2
        w = np.abs(np.diff(np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])))
        widths = widths * w.reshape([-1 if k == axis else 1 for k in range(len(shape))])
    return widths


def _edges(el: Element) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------- comparison


@dataclass(eq=False)
class QuantityComparison:
    """One quantity: the measured rows inside the overlap, the reference interpolated onto them, metrics."""
    name: str
    time: np.ndarray
    measured: np.ndarray
    reference: np.ndarray
    reference_time: np.ndarray | None   # the reference's own times on the aligned axis (None: stationary)
    reference_value: np.ndarray
    metrics: dict[str, float]
    coords: dict = field(default_factory=dict)
    l1: np.ndarray | None = None        # densities only: at each time
    kl: np.ndarray | None = None


@dataclass(eq=False)
class Comparison:
    """The result of `compare`: per-quantity comparisons, what was compared, and where things were written."""
    run: Path
    against: Path | None
    theory: str | None
    time_axis: str
    quantities: list[QuantityComparison]
    skipped: dict[str, str] = field(default_factory=dict)
    figure: Path | None = None
    written: bool = False

    @property
    def metrics(self) -> dict[str, Any]:
        """Everything written to /comparison: ``<quantity>_<metric>`` plus what was compared with what."""
        out: dict[str, Any] = {"compare_against": str(self.against or ""), "compare_theory": self.theory or "",
                               "compare_time": self.time_axis,
                               "compare_quantities": ",".join(q.name for q in self.quantities)}
        for q in self.quantities:
            out |= {f"{q.name}_{k}": v for k, v in q.metrics.items()}
        return out

    def table(self) -> str:
        """A human-readable table of the metrics (printed by ``sgdsim compare``)."""
        ref = f"theory {self.theory}" if self.theory else str(self.against)
        lines = [f"compare {self.run} against {ref}   (time axis: {self.time_axis}; reference interpolated "
                 f"linearly onto the measured times, never extrapolated)",
                 f"  {'quantity':<22} {'times':>5} {'max rel':>10} {'rms rel':>10} {'max abs':>10} {'rms abs':>10}"
                 f" {'L1 final':>10} {'KL final':>10}"]
        for q in self.quantities:
            m = q.metrics
            dens = f" {m['l1_final']:10.4g} {m['kl_final']:10.4g}" if "l1_final" in m else ""
            lines.append(f"  {q.name:<22} {m['n_times']:5d} {m['max_rel_error']:10.4g} {m['rms_rel_error']:10.4g} "
                         f"{m['max_abs_error']:10.4g} {m['rms_abs_error']:10.4g}{dens}")
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


def compare_path(run_path: str | os.PathLike) -> Path:
    """Default overlay figure path: ``<stem>-compare.png`` beside the run file."""
    p = Path(run_path)
    stem = p.name[:-len(".partial")] if p.name.endswith(".partial") else p.name
    return p.with_name(Path(stem).stem + "-compare.png")


def _axis(run: Run, el: Element, mode: str) -> np.ndarray:
    if mode == "time":
        return el.time.astype(float)
    if mode == "step":
        return el.step.astype(float)
    return _lr(run) * el.step.astype(float)


def _lr(run: Run) -> float:
    lr = run.params.get("lr")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ParameterError(f"{run.path.name}: needs a positive 'lr' parameter to align t = lr * step "
                             f"(has {lr!r}); use --time time or --time step")
    return float(lr)


def _increasing(t: np.ndarray, what: str) -> None:
    if len(t) == 0 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
        raise ParameterError(f"{what}: times must be finite and strictly increasing (and not empty)")


def _is_density(el: Element) -> bool:
    return el.attrs.get("kind") == "density" or "edges" in el.attrs


def _one(name: str, el: Element, t: np.ndarray, ref_t: np.ndarray | None, ref_v: np.ndarray,
         ref_coords: dict | None) -> QuantityComparison:
    ref_v = np.asarray(ref_v)
    shape = el.value.shape[1:]
    if len(t) == 0:
        raise ParameterError(f"{name}: the run recorded no values")
    if ref_v.shape[1 if ref_t is not None else 0:] != shape:
        raise ParameterError(f"{name}: measured values have shape {shape}, reference "
                             f"{ref_v.shape[1 if ref_t is not None else 0:]}")
    if ref_coords is not None and any(not np.array_equal(ref_coords.get(k, c), c) for k, c in el.coords.items()):
        raise ParameterError(f"{name}: the measured and reference grids (coordinates) differ")
    if ref_t is None:
        inside = np.ones(len(t), dtype=bool)
        reference = np.repeat(np.asarray(ref_v, float)[None], len(t), axis=0)
    else:
        _increasing(ref_t, f"{name} (reference)")
        slack = OVERLAP_SLACK * max(abs(ref_t[0]), abs(ref_t[-1]))
        inside = (t >= ref_t[0] - slack) & (t <= ref_t[-1] + slack)
        if not inside.any():
            raise ParameterError(f"{name}: no overlap between measured times [{t.min():g}, {t.max():g}] and "
                                 f"reference times [{ref_t[0]:g}, {ref_t[-1]:g}]")
        reference = interpolate(ref_t, ref_v, np.clip(t[inside], ref_t[0], ref_t[-1]))
    measured = el.value[inside].astype(float)
    metrics: dict[str, Any] = {**discrepancy(measured, reference), "n_times": int(inside.sum())}
    l1 = kl = None
    if _is_density(el):
        try:
            l1, kl = density_metrics(measured, reference, _cell_widths(el))
        except ParameterError as e:
            raise ParameterError(f"{name}: {e}") from None
        metrics |= {"l1_final": float(l1[-1]), "kl_final": float(kl[-1]),
                    "l1_max": float(np.max(l1)), "kl_max": float(np.max(kl))}
    return QuantityComparison(name, t[inside], measured, reference, ref_t, np.asarray(ref_v, float), metrics,
                              el.coords, l1, kl)


def _select(available: list[str], candidates: list[str], requested: list[str] | None, what: str) -> list[str]:
    if requested:
        unknown = [q for q in requested if q not in candidates]
        if unknown:
            raise ParameterError(f"unknown quantity {unknown[0]!r} for {what}; valid quantities: "
                                 f"{', '.join(candidates) or 'none'}")
        return list(dict.fromkeys(requested))
    if not candidates:
        raise ParameterError(f"no quantity to compare with {what}: the run has "
                             f"{', '.join(available) or 'no observables'}")
    return candidates


def compare(run: str | os.PathLike, *, against: str | os.PathLike | None = None, theory: str | None = None,
            quantities: list[str] | None = None, time: str = "time", write: bool = True, plot: bool = True,
            out: str | os.PathLike | None = None) -> Comparison:
    """Compare the run file `run` against another run (`against`) or a registered theory (`THEORIES`).

    See the module docstring for the alignment and the metrics. With `write`, the metrics replace those of
    any previous compare in the run's /comparison (the run must be complete: a ``.partial`` or "running"
    file is refused; ``write=False`` reads it only). With `plot`, the overlay figure goes to `out` (default
    ``<stem>-compare.png`` beside the run). Bad input raises ParameterError / RunFileError in one line.
    """
    if (against is None) == (theory is None):
        raise ParameterError("compare needs exactly one of against (a run file) or theory (a name)")
    if time not in TIME_AXES:
        raise ParameterError(f"unknown time axis {time!r}; valid: {', '.join(TIME_AXES)}")
    if theory is not None and theory not in THEORIES:
        raise ParameterError(f"unknown theory {theory!r}; valid theories: {', '.join(THEORIES)}")
    path = Path(run)
    with open_run(path) as r:
        if write and (path.name.endswith(".partial") or r.status == "running"):
            raise RunFileError(f"{path}: the run is still being written (status {r.status}); compare it once it "
                               f"is complete, or without writing (--no-write)")
        available = r.names("observables")
        if theory is not None:
            prediction = THEORIES[theory](r)
            names = _select(available, [q for q in prediction if q in available], quantities, f"theory {theory}")
            timed = any(t is not None for t, _ in prediction.values())
            lr = _lr(r) if time == "step" and timed else 1.0   # theory times are t = lr * step
            results = []
            for q in names:
                t_ref, v_ref = prediction[q]
                t_ref = None if t_ref is None else np.asarray(t_ref, float) / lr
                el = r.element(q)
                results.append(_one(q, el, _axis(r, el, time), t_ref, v_ref, None))
            skipped = {}
        else:
            with open_run(against) as o:
                common = [q for q in available if q in o.names("observables")]
                shapes = {q: (r.h5["observables"][q]["value"].shape[1:], o.h5["observables"][q]["value"].shape[1:])
                          for q in common}
                same = [q for q in common if shapes[q][0] == shapes[q][1]]
                names = _select(available, same if not quantities else common, quantities, f"run {against}")
                skipped = {q: f"value shapes differ ({shapes[q][0]} vs {shapes[q][1]})"
                           for q in common if q not in same and q not in names}
                results = []
                for q in names:
                    el, ref = r.element(q), o.element(q)
                    results.append(_one(q, el, _axis(r, el, time), _axis(o, ref, time), ref.value, ref.coords))
        result = Comparison(path, None if against is None else Path(against), theory, time, results, skipped)
    if write:
        _write(path, result)
        result.written = True
    if plot:
        result.figure = overlay(result, Path(out) if out else compare_path(path))
    return result


def _write(path: Path, result: Comparison) -> None:
    """Replace the previous compare's metrics in /comparison (attrs and per-time groups) with these."""
    try:
        h5 = h5py.File(path, "a")
    except OSError as e:
        raise RunFileError(f"{path}: cannot open for writing ({' '.join(str(e).split())})") from None
    with h5:
        g = h5.require_group("comparison")
        old = [q for q in str(g.attrs.get("compare_quantities", "")).split(",") if q]
        for key in [k for k in g.attrs if k.startswith("compare_")] + [f"{q}_{m}" for q in old for m in _METRICS]:
            if key in g.attrs:
                del g.attrs[key]
        for q in old:
            if isinstance(g.get(q), h5py.Group):
                del g[q]
        metrics = result.metrics
        for k, v in metrics.items():
            g.attrs[k] = v
        for q in result.quantities:
            if q.l1 is not None:
                sub = g.create_group(q.name)
                for name, data in (("time", q.time), ("l1", q.l1), ("kl", q.kl)):
                    sub.create_dataset(name, data=data)


# --------------------------------------------------------------------------------------------- figure

_AXIS_LABEL = {"time": "time (as recorded)", "lr": "t = lr x step", "step": "step"}


def overlay(result: Comparison, path: Path) -> Path:
    """One panel per quantity (the first MAX_PANELS): measured (solid) against the reference (dashed black),
    with the metrics in the panel title; a density is drawn over its grid at the last compared time."""
    from .plotting import THEORY, figure, save

    shown = result.quantities[:MAX_PANELS]
    ref = f"theory {result.theory}" if result.theory else f"run {result.against.name}"
    more = f"; first {len(shown)} of {len(result.quantities)} quantities" if len(shown) < len(result.quantities) else ""
    ncols = min(3, len(shown))
    title = (f"{result.run.name} (solid) vs {ref} (dashed black){more}. Reference interpolated linearly onto "
             f"the measured times (never extrapolated); time axis: {_AXIS_LABEL[result.time_axis]}")
    fig, axes = figure(ncols, math.ceil(len(shown) / ncols), width=max(4.6, 7.0 / ncols), height=3.6,
                       title=textwrap.fill(title, 62 * ncols + 10 * (ncols == 1)))
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    for ax, q in zip(axes, shown):
        m = q.metrics
        if q.l1 is not None and q.measured.ndim == 2:
            x = np.asarray(next(iter(q.coords.values()), np.arange(q.measured.shape[1])), float)
            if len(q.time) > 1:
                ax.plot(x, q.measured[0], color="C0", lw=0.9, alpha=0.45, label=f"measured, t = {q.time[0]:.4g}")
            ax.plot(x, q.measured[-1], color="C0", lw=1.8, label=f"measured, t = {q.time[-1]:.4g}")
            ax.plot(x, q.reference[-1], label=ref, **THEORY)
            ax.set(xlabel=next(iter(q.coords), "grid index"), ylabel=q.name,
                   title=f"{q.name}: L1 {m['l1_final']:.3g}, KL {m['kl_final']:.3g} (final)")
        else:
            flat = q.measured.reshape(len(q.measured), -1)
            ref_flat = q.reference_value.reshape(len(q.reference_value) if q.reference_time is not None else 1, -1)
            picks = np.unique(np.linspace(0, flat.shape[1] - 1, min(4, flat.shape[1])).round().astype(int))
            for n, k in enumerate(picks):
                index = np.unravel_index(k, q.measured.shape[1:])
                label = "measured" if flat.shape[1] == 1 else ", ".join(
                    f"{axis} {np.asarray(c)[i]:g}" for (axis, c), i in zip(q.coords.items(), index))
                ax.plot(q.time, flat[:, k], color=f"C{n}", lw=1.5, marker="o" if len(q.time) < 30 else None,
                        ms=3, label=label)
                if q.reference_time is None:
                    ax.axhline(ref_flat[0, k], **THEORY, label=ref if n == len(picks) - 1 else None)
                else:
                    keep = (q.reference_time >= q.time[0]) & (q.reference_time <= q.time[-1])
                    ax.plot(q.reference_time[keep], ref_flat[keep, k], **THEORY,
                            label=ref if n == len(picks) - 1 else None)
            ax.set(xlabel=_AXIS_LABEL[result.time_axis], ylabel=q.name,
                   title=f"{q.name}: max rel {m['max_rel_error']:.2g}, rms abs {m['rms_abs_error']:.2g}")
        ax.legend(fontsize=7)
    return save(fig, path)
