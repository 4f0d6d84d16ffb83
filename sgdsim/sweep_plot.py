"""The figure of a sweep: each numeric /comparison metric against the swept parameters.

x = the swept parameter with the most values (numbers on a log axis when they span a decade or more; other
types as categories), one line per combination of the other swept values, mean +- standard error (std with
ddof=1 over sqrt(n)) over the replicates that completed; a point with one replicate has no bar. A metric
`<q>_theory` is drawn dashed in the panel of `<q>_measured` (black, or the colour of its line).
"""
from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np

from .errors import RunFileError
from .plotting import THEORY, figure, save
from .sweep_summary import read_summary

__all__ = ["plot_sweep"]


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
    """Draw every numeric metric against the swept parameters; default path <dir>/sweep.png."""
    directory = Path(directory)
    s = read_summary(directory)
    if not s.metrics:
        raise RunFileError(f"{directory}: no completed run has numeric /comparison metrics to plot")
    names = list(s.params)
    xname = max(names, key=lambda n: len(np.unique(s.params[n]))) if names else None
    others = [n for n in names if n != xname]
    ok = s.status == "complete"
    xs = np.unique(s.params[xname]) if xname else np.array([0])
    numeric = xname is not None and np.issubdtype(xs.dtype, np.number) and xs.dtype != bool
    xpos = xs.astype(float) if numeric else np.arange(len(xs), dtype=float)
    combos = list(itertools.product(*(np.unique(s.params[n]) for n in others)))
    panels = _panels(sorted(s.metrics))
    spec = s.spec
    fixed = ", ".join(f"{k}={v}" for k, v in spec["fixed"].items())
    title = (f"sweep of {spec['scenario']}: {len(s.status)} runs ({int(ok.sum())} complete), "
             f"{spec['replicates']} replicate(s), root seed {spec['seed']}" + (f"\nfixed: {fixed}" if fixed else ""))
    fig, axes = figure(min(ncols, len(panels)), math.ceil(len(panels) / ncols), width=4.2, height=3.2, title=title)

    def curve(values: np.ndarray, combo: tuple) -> tuple[np.ndarray, np.ndarray]:
        sel = ok.copy()
        for n, v in zip(others, combo):
            sel &= s.params[n] == v
        stats = [_mean_se(values[sel & (s.params[xname] == x)] if xname else values[sel]) for x in xs]
        return np.array([m for m, _, _ in stats]), np.array([e for _, e, _ in stats])

    for ax, (metric, theory) in zip(axes, panels):
        for k, combo in enumerate(combos):
            mean, se = curve(s.metrics[metric], combo)
            label = ", ".join(f"{n}={v}" for n, v in zip(others, combo)) or "measured"
            line = ax.errorbar(xpos, mean, yerr=se, marker="o", ms=3, capsize=2, lw=1.2, label=label)
            if theory:  # dashed; black for a single line, else in the colour of the line it belongs to
                style = THEORY if len(combos) == 1 else {**THEORY, "color": line.lines[0].get_color()}
                ax.plot(xpos, curve(s.metrics[theory], combo)[0], label="theory" if k == 0 else None, **style)
        ax.set(xlabel=xname or "", ylabel="mean +- SE over replicates", title=metric)
        if numeric and xpos.min() > 0 and xpos.max() >= 10 * xpos.min():
            ax.set_xscale("log")
        if not numeric or len(xs) <= 8:
            ax.set_xticks(xpos, [f"{x:g}" if numeric else str(x) for x in xs])
            ax.minorticks_off()
        if len(combos) > 1 or theory:
            ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return save(fig, Path(path) if path else directory / "sweep.png")
