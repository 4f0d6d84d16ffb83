"""The engine room: Numba kernels and the solvers that drive them. Imports only numpy, scipy, numba."""
from __future__ import annotations

from .particles import reference
from .particles.solver import ParticleSolver, Target

SOLVERS = {ParticleSolver.name: ParticleSolver}


def get_solver(name: str):
    """The solver class registered under `name`; unknown names list the valid ones."""
    try:
        return SOLVERS[name]
    except KeyError:
        raise ValueError(f"unknown solver {name!r} (valid: {', '.join(sorted(SOLVERS))})") from None


__all__ = ["ParticleSolver", "Target", "SOLVERS", "get_solver", "reference"]
