"""sgdsim: simulate SGD as a cloud of particles and hold it against theory.

    import sgdsim
    landscape = sgdsim.finite_sum_double_well(256, spread=7.0)
    out = sgdsim.simulate(landscape, sgdsim.SGD(lr=0.02, batch=2), x0, n_steps=10_000, seed=1)
    run = sgdsim.open("double-well-seed0.h5")

One subpackage per engine (`particles`, `fokker_planck`, `deep_linear`, `spin_glass`, `networks`, `highdim`),
plus run files (`io`), claims and comparisons (`compare`) and sweeps (`sweep`); docs/design.md maps them.
"""
__version__ = "0.1.0"

from .compare.comparison import Comparison, compare, theories  # noqa: E402
from .errors import ParameterError, RunFileError, SgdsimError  # noqa: E402
from .io.record import Recording, import_npz, record  # noqa: E402
from .io.runfile import RunWriter  # noqa: E402
from .io.runread import open_run as open  # noqa: E402,A001
from .particles.dynamics import SGD, SME, GradientDescent, Langevin, PerturbedGD, Schedule  # noqa: E402
from .particles.landscapes import (DoubleWell, Quadratic, Regression, Ring, Ripple, SharpWide,  # noqa: E402
                                   StrictSaddle, Tilted, finite_sum_double_well)
from .particles.simulate import Outcome, Recorder, simulate  # noqa: E402
from .solvers import Target  # noqa: E402

__all__ = ["SGD", "GradientDescent", "Langevin", "PerturbedGD", "Schedule", "ParameterError", "RunFileError",
           "SgdsimError", "DoubleWell", "Quadratic", "Regression", "SharpWide", "StrictSaddle", "Tilted",
           "finite_sum_double_well", "RunWriter", "open", "Outcome", "Recorder", "simulate", "Target"]
__all__ += ["record", "Recording", "import_npz", "compare", "Comparison", "theories", "SME", "Ring", "Ripple"]

from . import legacy as _legacy  # noqa: E402

_legacy.install()


def __getattr__(name):
    """`sgdsim.linear_theory`, `from sgdsim import datasets`: the 0.1 flat module names (`sgdsim.legacy`)."""
    if name in _legacy.MODULES:
        return _legacy.home(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
