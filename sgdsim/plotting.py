"""Shared figure style: headless (Agg), readable defaults, one save function."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from .errors import RunFileError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 10, "legend.frameon": False}
THEORY = dict(color="black", lw=1.6, ls="--")   # theory is always the dashed black line


def figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.8, title: str = ""):
    """A figure and its axes (always a flat array) in the project style."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
        for ax in axes.flat:
            ax.grid(True, alpha=0.3)
            ax.spines[["top", "right"]].set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig, axes.ravel()


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def time_label(run, el) -> str:
    """What an element's time column is: t = lr x step (as `sgdsim.record` writes with an lr), the step, or
    the time as recorded."""
    lr = run.params.get("lr")
    if len(el.time) and np.array_equal(el.time, el.step.astype(float)):
        return "step"
    if isinstance(lr, (int, float)) and not isinstance(lr, bool) and np.allclose(el.time, lr * el.step, rtol=1e-12):
        return f"t = lr x step (lr = {lr:g})"
    return "time (as recorded)"


def overview(run, path: str | Path, most: int = 9, log: str = "") -> Path:
    """The figure of a run no installed scenario knows how to draw (e.g. one written by `sgdsim.record`):
    each observable against time, up to `most` panels. Scalars are one line; vectors of up to 8 components
    one line each; larger values their mean over components with the min-max band. Stored theory curves of
    the same name (with a time axis) are overlaid dashed black. `log` holds the axes drawn logarithmically
    ("x", "y" or "xy"); values that cannot be shown on a log axis (<= 0) are left out of it."""
    names = run.names("observables")
    if not names:
        raise RunFileError(f"{run.path}: no observables to plot")
    shown = names[:most]
    ncols = min(3, len(shown))
    fig, axes = figure(ncols, -(-len(shown) // ncols), width=4.6, height=3.2,
                       title=f"{Path(run.path).name}: scenario {run.scenario}, status {run.status}"
                             + (f" ({len(names) - most} more observables not shown)" if len(names) > most else ""))
    for ax, name in zip(axes, shown):
        el = run.element(name)
        flat = el.value.reshape(len(el.time), -1).astype(float)
        if flat.shape[1] <= 8:
            for k in range(flat.shape[1]):
                ax.plot(el.time, flat[:, k], lw=1.2, label="measured" if flat.shape[1] == 1 else f"[{k}]")
        else:
            ax.plot(el.time, flat.mean(axis=1), lw=1.4, label=f"mean of {flat.shape[1]}")
            ax.fill_between(el.time, flat.min(axis=1), flat.max(axis=1), alpha=0.2, label="min-max")
        if name in run.names("theory"):
            th = run.theory(name)
            if th.time is not None and th.value.size == len(th.time):
                ax.plot(th.time, th.value.ravel(), label="theory", **THEORY)
        ax.set(title=name, xlabel=time_label(run, el))
        if "x" in log:
            ax.set_xscale("log")
        if "y" in log:
            ax.set_yscale("log")
        if len(ax.get_legend_handles_labels()[0]) > 1:
            ax.legend(fontsize=7)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    return save(fig, path)
