"""Checks on the figures sgdsim draws: catch each Figure as `plotting.save` closes it, and find legend
entries with nothing drawn behind them (issue 13.11)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import Container
from matplotlib.lines import Line2D


@pytest.fixture
def figures(monkeypatch) -> list:
    """The figures closed during the test (sgdsim's `save` closes every figure it writes), kept open."""
    caught: list = []
    monkeypatch.setattr(plt, "close", lambda fig=None: caught.append(fig))
    yield caught
    for fig in caught:
        plt.Figure.clear(fig)


def _draws(artist) -> bool:
    if isinstance(artist, Container):
        return any(_draws(a) for a in artist.get_children())
    if isinstance(artist, Line2D):
        x = np.asarray(artist.get_xdata(), dtype=float)
        y = np.asarray(artist.get_ydata(), dtype=float)
        return bool(np.any(np.isfinite(x) & np.isfinite(y))) and artist.get_visible()
    if hasattr(artist, "get_paths"):
        return any(np.isfinite(path.vertices).all(axis=1).any() for path in artist.get_paths())
    return artist.get_visible()


def legend_problems(fig) -> list[str]:
    """Every legend entry of the figure without a visible artist that draws at least one finite point."""
    problems = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        handles, labels = ax.get_legend_handles_labels()
        for text in legend.get_texts():
            label = text.get_text()
            artists = [h for h, lab in zip(handles, labels) if lab == label]
            if not any(_draws(a) for a in artists):
                problems.append(f"panel {ax.get_title()!r}: legend entry {label!r} has nothing drawn behind it")
    return problems
