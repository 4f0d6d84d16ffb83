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
lr * step computed twice still matches); it is never extrapolated, and no overlap is an error. A stationary
prediction (time None: a limit, an equilibrium, a final value) is compared with the last recorded time only.

Only what is comparable is compared, and the table says what was left out and why: entries where the
measured or the reference value is not finite (e.g. a diverged run's) are left out of the metrics
(<q>_n_nonfinite counts them) and a quantity without any finite pair is skipped; where the reference is
identically 0 the relative errors are undefined (NaN, and said so). Comparing runs of different scenarios draws a
warning.

Metrics per quantity, over every overlapping time and component, with a = measured, b = reference:
  abs error  e = |a - b|                                  -> <q>_max_abs_error, <q>_rms_abs_error
  rel error  e / max(|b|, REL_FLOOR * max|b|)             -> <q>_max_rel_error, <q>_rms_rel_error
(the floor, a fraction of the reference's largest magnitude over the compared range, keeps the relative
error finite where the reference crosses zero; an identically zero reference leaves them undefined, NaN),
<q>_n_times, the number of compared times, and <q>_n_nonfinite, the entries left out. A density (an element with attribute
kind="density", or the ``edges`` of its grid, as `simulate` writes histograms) also gets, at each time,
  L1 = sum_i |p_i - q_i| and KL(p || q) = sum_i p_i log(p_i / q_i)  (Kullback & Leibler 1951),
with p_i, q_i the masses value * cell width of the grid cells, normalised to 1 on the grid for KL only;
-> <q>_l1_final, <q>_kl_final, <q>_l1_max, <q>_kl_max, and the series in ``/comparison/<q>/{time,l1,kl}``.
"""
from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .metrics import (REL_FLOOR, cell_widths, check_increasing, density_metrics, discrepancy,
                              interpolate, lr_of)
from .registry import get_theory, theories, theory_help
from ..errors import ParameterError, RunFileError
from ..io.runfile import LIBVER
from ..io.runread import Element, Run, open_run
from ..text import number

__all__ = ["theories", "TIME_AXES", "REL_FLOOR", "Comparison", "QuantityComparison", "compare", "interpolate",
           "discrepancy", "density_metrics", "compare_path", "theory_help"]

TIME_AXES = ("time", "lr", "step")
OVERLAP_SLACK = 1e-12  # relative: a time one rounding away from the reference range still counts as inside
MAX_PANELS = 6
_METRICS = ("max_abs_error", "rms_abs_error", "max_rel_error", "rms_rel_error", "n_times", "n_nonfinite",
            "l1_final", "kl_final", "l1_max", "kl_max")  # <quantity>_<metric>; a new compare deletes those of the previous one

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
    warnings: list[str] = field(default_factory=list)
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
        notes = []
        for q in self.quantities:
            m = q.metrics
            cells = [m["max_rel_error"], m["rms_rel_error"], m["max_abs_error"], m["rms_abs_error"]]
            cells += [m["l1_final"], m["kl_final"]] if "l1_final" in m else []
            lines.append(f"  {q.name:<22} {m['n_times']:5d} " + " ".join(f"{number(v):>10}" for v in cells))
            if q.reference_time is None:
                notes.append(f"  {q.name}: stationary prediction, compared at the last recorded time")
            if m["n_nonfinite"]:
                notes.append(f"  {q.name}: {m['n_nonfinite']} non-finite entries left out")
            if not math.isfinite(m["max_rel_error"]) and math.isfinite(m["max_abs_error"]):
                notes.append(f"  {q.name}: relative error undefined (the reference is 0)")
        lines += notes + [f"  skipped {name}: {why}" for name, why in self.skipped.items()]
        lines += [f"  warning: {w}" for w in self.warnings]
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
    return lr_of(run) * el.step.astype(float)


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
    if ref_t is None:  # stationary: the last recorded time only
        inside = np.arange(len(t)) == len(t) - 1
        reference = np.asarray(ref_v, float)[None]
    else:
        check_increasing(ref_t, f"{name} (reference)")
        slack = OVERLAP_SLACK * max(abs(ref_t[0]), abs(ref_t[-1]))
        inside = (t >= ref_t[0] - slack) & (t <= ref_t[-1] + slack)
        if not inside.any():
            raise ParameterError(f"{name}: no overlap between measured times [{t.min():g}, {t.max():g}] and "
                                 f"reference times [{ref_t[0]:g}, {ref_t[-1]:g}]")
        reference = interpolate(ref_t, ref_v, np.clip(t[inside], ref_t[0], ref_t[-1]))
    measured = el.value[inside].astype(float)
    finite = np.isfinite(measured) & np.isfinite(reference)
    if not finite.any():
        raise _NotComparable("no entry where both the measured and the reference value are finite")
    metrics: dict[str, Any] = {**discrepancy(measured[finite], reference[finite]), "n_times": int(inside.sum()),
                               "n_nonfinite": int(finite.size - finite.sum())}
    l1 = kl = None
    if _is_density(el):
        try:
            l1, kl = density_metrics(measured, reference, cell_widths(el))
        except ParameterError as e:
            raise ParameterError(f"{name}: {e}") from None
        metrics |= {"l1_final": float(l1[-1]), "kl_final": float(kl[-1]),
                    "l1_max": float(np.max(l1)), "kl_max": float(np.max(kl))}
    return QuantityComparison(name, t[inside], measured, reference, ref_t, np.asarray(ref_v, float), metrics,
                              el.coords, l1, kl)


class _NotComparable(Exception):
    """A quantity that cannot be compared (the reason is the message): skipped, and said so."""


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
    """Compare the run file `run` against another run (`against`) or a registered theory (`theories()`).

    See the module docstring for the alignment and the metrics. With `write`, the metrics replace those of
    any previous compare in the run's /comparison (the run must be complete: a ``.partial`` or "running"
    file is refused; ``write=False`` reads it only). With `plot`, the overlay figure goes to `out` (default
    ``<stem>-compare.png`` beside the run). Bad input raises ParameterError / RunFileError in one line.
    """
    if (against is None) == (theory is None):
        raise ParameterError("compare needs exactly one of against (a run file) or theory (a name)")
    if time not in TIME_AXES:
        raise ParameterError(f"unknown time axis {time!r}; valid: {', '.join(TIME_AXES)}")
    model = get_theory(theory) if theory is not None else None
    path = Path(run)
    with open_run(path) as r:
        if write and (path.name.endswith(".partial") or r.status == "running"):
            raise RunFileError(f"{path}: the run is still being written (status {r.status}); compare it once it "
                               f"is complete, or without writing (--no-write)")
        available = r.names("observables")
        if theory is not None:
            prediction = model(r, theory)
            names = _select(available, [q for q in prediction if q in available], quantities, f"theory {theory}")
            timed = any(t is not None for t, _ in prediction.values())
            lr = lr_of(r) if time == "step" and timed else 1.0   # theory times are t = lr * step
            results, skipped, warnings = [], {}, []
            for q in names:
                t_ref, v_ref = prediction[q]
                t_ref = None if t_ref is None else np.asarray(t_ref, float) / lr
                el = r.element(q)
                try:
                    results.append(_one(q, el, _axis(r, el, time), t_ref, v_ref, None))
                except _NotComparable as e:
                    skipped[q] = str(e)
        else:
            with open_run(against) as o:
                theirs = o.names("observables")
                common = [q for q in available if q in theirs]
                if not common and not quantities:
                    raise ParameterError(f"no quantity in common: {path.name} has {', '.join(available) or 'none'}; "
                                         f"{Path(against).name} has {', '.join(theirs) or 'none'}")
                shapes = {q: (r.h5["observables"][q]["value"].shape[1:], o.h5["observables"][q]["value"].shape[1:])
                          for q in common}
                same = [q for q in common if shapes[q][0] == shapes[q][1]]
                names = _select(available, same if not quantities else common, quantities, f"run {against}")
                skipped = {q: f"value shapes differ ({shapes[q][0]} vs {shapes[q][1]})"
                           for q in common if q not in same and q not in names}
                warnings = _scenario_warnings(r, o)
                results = []
                for q in names:
                    el, ref = r.element(q), o.element(q)
                    try:
                        results.append(_one(q, el, _axis(r, el, time), _axis(o, ref, time), ref.value, ref.coords))
                    except _NotComparable as e:
                        skipped[q] = str(e)
        if not results:
            raise ParameterError("nothing comparable: " + "; ".join(f"{q}: {why}" for q, why in skipped.items()))
        result = Comparison(path, None if against is None else Path(against), theory, time, results, skipped,
                            warnings)
    if write:
        _write(path, result)
        result.written = True
    if plot:
        result.figure = overlay(result, Path(out) if out else compare_path(path))
    return result


def _scenario_warnings(a: Run, b: Run) -> list[str]:
    """Runs of different scenarios: quantities of the same name may measure different things."""
    if a.scenario != b.scenario:
        return [f"the runs are of different scenarios ({a.path.name}: {a.scenario}, {b.path.name}: {b.scenario}): "
                f"quantities of the same name may not mean the same thing"]
    return []


def _write(path: Path, result: Comparison) -> None:
    """Replace the previous compare's metrics in /comparison (attrs and per-time groups) with these."""
    try:
        h5 = h5py.File(path, "a", libver=LIBVER)
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
    with the metrics in the panel title; a density is drawn over its grid at the last compared time (the
    y-scale set by the final densities), a quantity compared at one time only (a stationary prediction, a
    table) as measured against reference around the line measured = reference."""
    from ..plotting import THEORY, figure, save

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
            top = np.nanmax([np.nanmax(q.measured[-1]), np.nanmax(q.reference[-1])])
            if np.isfinite(top) and top > 0:  # the final densities set the scale, not an early point mass
                ax.set_ylim(0, 1.15 * top)
            ax.set(xlabel=next(iter(q.coords), "grid index"), ylabel=q.name,
                   title=f"{q.name}\nL1 {number(m['l1_final'], 3)}, KL {number(m['kl_final'], 3)} (final)")
        elif len(q.time) == 1:   # one compared time (a stationary prediction, a table): measured vs reference
            a, b = q.measured.ravel(), q.reference.ravel()
            ok = np.isfinite(a) & np.isfinite(b)
            when = f" at t = {q.time[0]:.4g}" if np.isfinite(q.time[0]) else ""
            ax.plot(b[ok], a[ok], "o", ms=4, color="C0",
                    label=f"measured{when}, {ok.sum()} {'entry' if ok.sum() == 1 else 'entries'}")
            span = np.concatenate([a[ok], b[ok]])
            lo, hi = span.min(), span.max()
            pad = 0.05 * (hi - lo) or 0.05 * max(abs(hi), 1e-300)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], label=f"= {ref}", **THEORY)
            ax.set(xlabel=f"{ref}", ylabel=f"measured {q.name}",
                   title=f"{q.name}" + (" (stationary)" if q.reference_time is None else "")
                         + f"\nmax rel {number(m['max_rel_error'], 2)}, rms abs {number(m['rms_abs_error'], 2)}")
        else:
            flat = q.measured.reshape(len(q.measured), -1)
            ref_flat = q.reference_value.reshape(len(q.reference_value), -1)
            picks = np.unique(np.linspace(0, flat.shape[1] - 1, min(4, flat.shape[1])).round().astype(int))
            for n, k in enumerate(picks):
                index = np.unravel_index(k, q.measured.shape[1:])
                label = "measured" if flat.shape[1] == 1 else ", ".join(
                    f"{axis} {np.asarray(c)[i]:g}" for (axis, c), i in zip(q.coords.items(), index))
                ax.plot(q.time, flat[:, k], color=f"C{n}", lw=1.5, marker="o" if len(q.time) < 30 else None,
                        ms=3, label=label)
                keep = (q.reference_time >= q.time[0]) & (q.reference_time <= q.time[-1])
                ax.plot(q.reference_time[keep], ref_flat[keep, k], **THEORY,
                        label=ref if n == len(picks) - 1 else None)
            ax.set(xlabel=_AXIS_LABEL[result.time_axis], ylabel=q.name,
                   title=f"{q.name}\nmax rel {number(m['max_rel_error'], 2)}, rms abs {number(m['rms_abs_error'], 2)}")
        ax.legend(fontsize=7)
    return save(fig, path)
