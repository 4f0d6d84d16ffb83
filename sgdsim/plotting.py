"""Shared figure style: headless (Agg), readable defaults, one save function."""
from __future__ import annotations

from pathlib import Path

import matplotlib

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
