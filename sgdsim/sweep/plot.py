"""The figure of a sweep: each numeric /comparison metric, and for each claim the fraction of replicates in
which it held, against the swept parameters.

x = the swept parameter with the most values (numbers on a log axis when they span a decade or more; other
types as categories), one line per combination of the other swept values. Metric panels: mean +- standard
error (std with ddof=1 over sqrt(n)) over the replicates that completed (a point with one replicate has no
bar); a metric `<q>_theory` is drawn dashed in the panel of `<q>_measured` (black, or the colour of its line)
where it has values; grid points where a run diverged are marked with a red x on the bottom edge. Claim
panels: the fraction of the runs stating the claim whose verdict was "holds" (undetermined counts as not
held), with the binomial standard error sqrt(f (1 - f) / n); the claim's expectation is in the title.
"""
from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np

from ..errors import RunFileError
from ..plotting import THEORY, figure, save
from .summary import read_summary

__all__ = ["plot_sweep"]

DIVERGED = dict(marker="x", color="red", ls="none", ms=7, mew=1.6, clip_on=False)


def _mean_se(values: np.ndarray) -> tuple[float, float, int]:
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0, n


def _panels(metrics: list[str]) -> list[tuple[str, str | None]]:
    """(metric, its theory metric or None), theory metrics paired with their measured ones."""
    paired = {m[:-len("_theory")] + "_measured" for m in metrics if m.endswith("_theory")} & set(metrics)
    theories = {p[:-len("_measured")] + "_theory" for p in paired}
    return [(m, m[:-len("_measured")] + "_theory" if m in paired else None) for m in metrics if m not in theories]


def plot_sweep(directory: str | os.PathLike, path: str | os.PathLike | None = None, ncols: int = 3) -> Path:
    """Draw every numeric metric and every claim's success fraction against the swept parameters; default
    path <dir>/sweep.png."""
    directory = Path(directory)
    s = read_summary(directory)
    claims = s.claims if s.claims is not None and len(s.claims.names) else None
    if not s.metrics and claims is None:
        raise RunFileError(f"{directory}: no finished run has numeric /comparison metrics or claims to plot")
    names = list(s.params)
    xname = max(names, key=lambda n: len(np.unique(s.params[n]))) if names else None
    others = [n for n in names if n != xname]
    ok, diverged = s.status == "complete", s.status == "diverged"
    xs = np.unique(s.params[xname]) if xname else np.array([0])
    numeric = xname is not None and np.issubdtype(xs.dtype, np.number) and xs.dtype != bool
    xpos = xs.astype(float) if numeric else np.arange(len(xs), dtype=float)
    combos = list(itertools.product(*(np.unique(s.params[n]) for n in others)))
    panels = [("metric", m, th) for m, th in _panels(sorted(s.metrics))]
    panels += [("claim", str(c), j) for j, c in enumerate(claims.names)] if claims is not None else []
    spec = s.spec
    fixed = ", ".join(f"{k}={v}" for k, v in spec["fixed"].items())
    title = (f"sweep of {spec['scenario']}: {len(s.status)} runs ({int(ok.sum())} complete, {int(diverged.sum())} "
             f"diverged), {spec['replicates']} replicate(s), root seed {spec['seed']}"
             + (f"\nfixed: {fixed}" if fixed else ""))
    fig, axes = figure(min(ncols, len(panels)), math.ceil(len(panels) / ncols), width=4.2, height=3.2, title=title)

    def select(combo: tuple) -> np.ndarray:
        sel = np.ones(len(s.status), dtype=bool)
        for n, v in zip(others, combo):
            sel &= s.params[n] == v
        return sel

    def at(x) -> np.ndarray:
        return s.params[xname] == x if xname else np.ones(len(s.status), dtype=bool)

    def curve(values: np.ndarray, combo: tuple) -> tuple[np.ndarray, np.ndarray]:
        sel = ok & select(combo)
        stats = [_mean_se(values[sel & at(x)]) for x in xs]
        return np.array([m for m, _, _ in stats]), np.array([e for _, e, _ in stats])

    for ax, (kind, name, extra) in zip(axes, panels):
        marked = theory_drawn = False
        for k, combo in enumerate(combos):
            label = ", ".join(f"{n}={v}" for n, v in zip(others, combo)) or ("measured" if kind == "metric" else
                                                                             "fraction held")
            if kind == "metric":
                mean, se = curve(s.metrics[name], combo)
                color = f"C{k % 10}"
                if np.isfinite(mean).any():   # a combination without a completed run has no line (nor legend entry)
                    ax.errorbar(xpos, mean, yerr=se, marker="o", ms=3, capsize=2, lw=1.2, label=label, color=color)
                predicted = curve(s.metrics[extra], combo)[0] if extra else None
                if predicted is not None and np.isfinite(predicted).any():
                    style = THEORY if len(combos) == 1 else {**THEORY, "color": color}
                    ax.plot(xpos, predicted, label=None if theory_drawn else "theory", **style)
                    theory_drawn = True
            else:
                stated = claims.met[:, extra] >= 0
                held = claims.verdict[:, extra] == "holds"
                frac, err = [], []
                for x in xs:
                    sel = stated & select(combo) & at(x)
                    n = int(sel.sum())
                    f = held[sel].mean() if n else math.nan
                    frac.append(f)
                    err.append(math.sqrt(f * (1 - f) / n) if n else math.nan)
                if np.isfinite(frac).any():
                    ax.errorbar(xpos, frac, yerr=err, marker="o", ms=3, capsize=2, lw=1.2, label=label,
                                color=f"C{k % 10}")
            bad = [x for xp, x in zip(xpos, xs) if (diverged & select(combo) & at(x)).any()]
            if bad:
                where = [xp for xp, x in zip(xpos, xs) if x in bad]
                ax.plot(where, np.zeros(len(where)), transform=ax.get_xaxis_transform(),
                        label=None if marked else "a run diverged", **DIVERGED)
                marked = True
        if kind == "metric":
            ax.set(xlabel=xname or "", ylabel="mean +- SE over replicates", title=name)
        else:
            expected = sorted({e for e in claims.expected[:, extra] if e})
            ax.set(xlabel=xname or "", ylabel="fraction of runs where it held", ylim=(-0.05, 1.05),
                   title=f"claim {name} (expected: {', '.join(expected)})")
        if numeric and xpos.min() > 0 and xpos.max() >= 10 * xpos.min():
            ax.set_xscale("log")
        if not numeric or len(xs) <= 8:
            ax.set_xticks(xpos, [f"{x:g}" if numeric else str(x) for x in xs])
            ax.minorticks_off()
        handles, _ = ax.get_legend_handles_labels()
        if len(combos) > 1 or len(handles) > 1:
            ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return save(fig, Path(path) if path else directory / "sweep.png")
