"""Theories of the double well (x^2 - 1)^2 for `sgdsim compare --theory` (entry-point group
`sgdsim.theories`): its Gibbs density and the Fokker–Planck transient of SGD's SDE limit. They apply to
double-well runs: scenario double-well, or any run (e.g. one recorded with `sgdsim.record`) with params
landscape="double-well" and a temperature."""
from __future__ import annotations

import math

import numpy as np

from sgdsim.particles import theory as _theory
from sgdsim.compare.metrics import check_increasing, grid_edges, lr_of
from sgdsim.compare.registry import Prediction, Theory
from sgdsim.errors import ParameterError
from sgdsim.io.runread import Element, Run
from sgdsim.particles.landscapes import DoubleWell

SCENARIO = "double-well"
APPLIES_TO = "double-well runs (scenario double-well, or params landscape='double-well' and temperature)"


def _temperature(run: Run, theory: str) -> float:
    if run.scenario != SCENARIO and run.params.get("landscape") != SCENARIO:
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
    density = run.element("density")
    if density.value.ndim != 2:
        raise ParameterError(f"theory {theory} needs a 1-D density, got values of shape {density.value.shape[1:]}")
    return density


WELL = DoubleWell(1)   # the mean loss of the double-well scenario's tilted sum (its tilts have mean zero)


def _loss(x: np.ndarray) -> np.ndarray:
    """f(x) = (x^2 - 1)^2 at the points x of a 1-D grid."""
    return WELL.value(np.asarray(x, dtype=float)[..., None])


def gibbs(run: Run) -> Prediction:
    """Gibbs density of the double well: `density`, stationary.

    p(x) = exp(-f(x)/T) / Z with f = (x^2 - 1)^2, averaged over each cell of the run's `density` grid and
    normalised on the grid's range (`theory.gibbs_bin_probabilities`): the stationary law of the Langevin
    limit dx = -f'(x) dt + sqrt(2T) dW of SGD at the SGD temperature T (Mandt, Hoffman & Blei 2017;
    Gardiner 2009). T is the run's `temperature` parameter, else the one the double-well scenario stores in
    /comparison.
    """
    temperature = _temperature(run, "gibbs")
    edges = grid_edges(_density_1d(run, "gibbs"))
    return {"density": (None, _theory.gibbs_bin_probabilities(_loss, edges, temperature) / np.diff(edges))}


FP_CELLS_PER_BIN = 8   # Fokker-Planck cells per bin of the run's density grid
FP_PAD = 0.5           # reflecting walls this far beyond the run's grid (and its start point)


def fokker_planck(run: Run) -> Prediction:
    """Fokker-Planck density of the double well: `density` over time.

    dp/dt = d/dx (f'(x) p) + T d^2 p/dx^2 with f = (x^2 - 1)^2: the density of the Langevin limit of SGD at
    time t = lr * step (Chaudhari & Soatto 2018, eq. 6), from a point mass in the cell holding the run's
    `start` (cells [x_k, x_k + h), so that a start on a bin edge lands in the bin np.histogram puts it in),
    solved by `sgdsim.fokker_planck` (finite volumes, reflecting walls FP_PAD beyond the run's grid,
    FP_CELLS_PER_BIN cells per bin, BDF2 with time step lr) and integrated over each bin of the run's `density`
    grid at its recorded steps. T as for `gibbs`; no momentum (heavy-ball SGD is not this SDE in t = lr * step).
    """
    from sgdsim.fokker_planck import equation as fp

    temperature = _temperature(run, "fokker-planck")
    density = _density_1d(run, "fokker-planck")
    lr = lr_of(run)
    start = run.params.get("start")
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise ParameterError(f"theory fokker-planck needs the start point: {run.path.name} has no numeric "
                             f"'start' parameter (got {start!r})")
    if run.params.get("momentum", 0.0) != 0.0:
        raise ParameterError(f"theory fokker-planck is for SGD without momentum; {run.path.name} has "
                             f"momentum={run.params['momentum']}")
    edges = grid_edges(density)
    h = float(np.min(np.diff(edges))) / FP_CELLS_PER_BIN
    lo = edges[0] - h * math.ceil((edges[0] - min(edges[0], start) + FP_PAD) / h)  # faces on the first edge
    cells = math.ceil((max(edges[-1], start) + FP_PAD - lo) / h)
    problem = fp.problem(loss=WELL, temperature=temperature, lo=lo, hi=lo + cells * h,
                         cells=cells)
    p0 = np.zeros(cells)  # the point mass in the cell [x_k, x_k + h) holding start, as np.histogram bins it
    p0[int(np.floor((start - lo) / h + 1e-9))] = 1.0 / h
    check_increasing(density.step.astype(float), "density steps")
    out = problem.evolve(p0, density.step * lr, dt=lr)
    if out.status != "complete":
        raise ParameterError(f"theory fokker-planck: {out.message}")
    probs = np.array([problem.bin_probabilities(p, edges) for p in out.density])
    return {"density": (out.times, probs / np.diff(edges))}


GIBBS = Theory(gibbs, APPLIES_TO, quantities=("density",))
FOKKER_PLANCK = Theory(fokker_planck, APPLIES_TO + " without momentum, with params lr and start",
                       quantities=("density",), params=("lr", "start"))
