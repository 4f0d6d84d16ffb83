"""The theory registry of `sgdsim compare --theory NAME`: a `Theory` is a prediction function of a run file
with what it needs declared, registered under a name in the `sgdsim.theories` entry-point group (like
scenarios), so a theory can ship with the scenario it belongs to or in another installed package.

A theory's `predict(run)` returns {quantity: (continuous time t or None for a stationary prediction, value)};
`check(run)` refuses, in one line, a run without the recorded quantities (regular expressions matched against
the names under /observables) and the parameters the theory declares. Nothing here knows a scenario's name:
the theories of a scenario live beside it (e.g. `sgdsim.scenarios.double_well_theories`) and say there which
runs they apply to. `stored`, the run's own /theory predictions, applies to any run and lives here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ParameterError
from ..plugins import load_group, pick
from ..io.runread import Run

__all__ = ["Theory", "Prediction", "theories", "broken_theories", "get_theory", "theory_help", "STORED"]

Prediction = dict[str, tuple[np.ndarray | None, np.ndarray]]  # quantity -> (continuous time t or None, value)
GROUP = "sgdsim.theories"


@dataclass(frozen=True)
class Theory:
    """A named prediction: `predict(run) -> Prediction`, what it applies to (one line, for `sgdsim list
    --theories`), the recorded quantities it needs (regular expressions, each matching at least one
    observable) and the parameters it needs (names in the run's params). `predict` may refuse a run for a
    reason the declaration cannot express, with a one-line ParameterError."""
    predict: Callable[[Run], Prediction]
    applies_to: str
    quantities: tuple[str, ...] = ()
    params: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """The first line of the prediction function's docstring."""
        return ((self.predict.__doc__ or "").strip().splitlines() or [""])[0].rstrip(".")

    def check(self, run: Run, name: str) -> None:
        """ParameterError naming the first declared quantity or parameter the run lacks."""
        observables = run.names("observables")
        for pattern in self.quantities:
            if not any(re.fullmatch(pattern, q) for q in observables):
                raise ParameterError(f"theory {name} needs a recorded quantity {pattern} (it applies to "
                                     f"{self.applies_to}); {run.path.name} has: {', '.join(observables) or 'nothing'}")
        missing = [p for p in self.params if p not in run.params]
        if missing:
            raise ParameterError(f"theory {name} needs the parameter(s) {', '.join(missing)} (it applies to "
                                 f"{self.applies_to}); {run.path.name} has: {', '.join(run.params) or 'none'}")

    def __call__(self, run: Run, name: str = "theory") -> Prediction:
        """Check the run, then predict."""
        self.check(run, name)
        return self.predict(run)


def stored(run: Run) -> Prediction:
    """The run's own stored predictions: each /theory/<q> named like an observable <q>, for any run.

    A prediction in element form (step, time, value) is compared over its time column (t = lr * step in the
    sgdsim scenarios); one that does not change in time, or a plain dataset of the observable's value shape
    (on the same coordinates), is a stationary prediction (a limit or a final value). Predictions of another
    shape or on other coordinates are left out. What each prediction is and where it comes from is in its
    attributes (source, equation).
    """
    observables = run.names("observables")
    out: Prediction = {}
    for q in run.names("theory"):
        if q not in observables:
            continue
        th, el = run.theory(q), run.h5["observables"][q]
        shape = el["value"].shape[1:]
        if (th.value.shape[1:] if th.time is not None else th.value.shape) != shape:
            continue
        if th.time is None:
            measured_coords = {k: el[k][()] for k in th.coords if k in el}
            if any(k not in measured_coords or not np.array_equal(measured_coords[k], c)
                   for k, c in th.coords.items() if not k.startswith("dim")):
                continue
            out[q] = (None, th.value)
        elif len(th.value) and np.all(th.value == th.value[:1]):
            out[q] = (None, th.value[0])     # constant in time: a stationary prediction
        else:
            out[q] = (th.time, th.value)
    return out


STORED = Theory(stored, "any run that stores /theory/<q> beside an observable <q>")


def _load_all() -> tuple[dict[str, Theory], dict[str, str]]:
    """Every entry point of the `sgdsim.theories` group: (theories by name, broken ones with the reason)."""
    return load_group(GROUP, Theory)


def theories() -> dict[str, Theory]:
    """Every installed theory that loads, by name (the `sgdsim.theories` entry-point group)."""
    return _load_all()[0]


def broken_theories() -> dict[str, str]:
    """Installed theories that fail to load, with the one-line reason."""
    return _load_all()[1]


def get_theory(name: str) -> Theory:
    """The installed theory `name`; a one-line ParameterError lists the valid names."""
    return pick("theory", name, *_load_all())


def theory_help() -> str:
    """The registered theories with what they apply to (for ``sgdsim compare --help``)."""
    return "; ".join(f"{name} ({t.applies_to})" for name, t in theories().items()) or "none installed"
