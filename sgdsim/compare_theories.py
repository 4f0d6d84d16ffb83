"""The theories `sgdsim compare --theory NAME` holds a run against: each is a function of the run file
(its parameters and grids) returning {quantity: (continuous time t or None for stationary, value)}, named in
`THEORIES`. A run that lacks what a theory needs is a one-line ParameterError naming it."""
from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np

from . import theory as _theory
from .errors import ParameterError
from .compare_metrics import check_increasing, grid_edges, lr_of
from .runread import Element, Run

Prediction = dict[str, tuple[np.ndarray | None, np.ndarray]]  # quantity -> (continuous time t or None, value)


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
    edges = grid_edges(_density_1d(run, "gibbs"))
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
    problem = fp.problem(loss=lambda x: _double_well(x[:, 0]), temperature=temperature, lo=lo, hi=lo + cells * h,
                         cells=cells)
    p0 = np.zeros(cells)  # the point mass in the cell [x_k, x_k + h) holding start, as np.histogram bins it
    p0[int(np.floor((start - lo) / h + 1e-9))] = 1.0 / h
    check_increasing(density.step.astype(float), "density steps")
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
    lr = lr_of(run)
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
