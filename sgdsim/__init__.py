"""sgdsim: simulate SGD as a cloud of particles and hold it against theory.

    import sgdsim
    landscape = sgdsim.finite_sum_double_well(256, spread=7.0)
    out = sgdsim.simulate(landscape, sgdsim.SGD(lr=0.02, batch=2), x0, n_steps=10_000, seed=1)
    run = sgdsim.open("double-well-seed0.h5")
"""
__version__ = "0.1.0"

from .dynamics import SGD, SME, GradientDescent, Langevin, PerturbedGD, Schedule  # noqa: E402
from .errors import ParameterError, RunFileError, SgdsimError  # noqa: E402
from .landscapes import (DoubleWell, Quadratic, Regression, Ring, Ripple, SharpWide, StrictSaddle,  # noqa: E402
                         Tilted, finite_sum_double_well)
from .compare import Comparison, compare, theories  # noqa: E402
from .record import Recording, import_npz, record  # noqa: E402
from .runfile import RunWriter  # noqa: E402
from .runread import open_run as open  # noqa: E402,A001
from .simulate import Outcome, Recorder, simulate  # noqa: E402
from .solvers import Target  # noqa: E402

__all__ = ["SGD", "GradientDescent", "Langevin", "PerturbedGD", "Schedule", "ParameterError", "RunFileError",
           "SgdsimError", "DoubleWell", "Quadratic", "Regression", "SharpWide", "StrictSaddle", "Tilted",
           "finite_sum_double_well", "RunWriter", "open", "Outcome", "Recorder", "simulate", "Target"]
__all__ += ["record", "Recording", "import_npz", "compare", "Comparison", "theories", "SME", "Ring", "Ripple"]
