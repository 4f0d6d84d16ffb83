"""sgdsim 0.1's flat module paths (the README's `from sgdsim import linear_theory`, `from sgdsim.sweep_summary
import rebuild_summary`) resolve to the same module objects at their homes in the per-engine subpackages."""
import importlib
import subprocess
import sys

import pytest

import sgdsim
from sgdsim.legacy import MODULES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_flat_name_is_its_home(name):
    home = importlib.import_module(f"sgdsim.{MODULES[name]}")
    assert importlib.import_module(f"sgdsim.{name}") is home
    if name not in ("record", "simulate"):      # these two names are the functions, as in 0.1
        assert getattr(sgdsim, name) is home
    assert home.__spec__.name == f"sgdsim.{MODULES[name]}"      # the alias does not rename the module


def test_flat_names_in_a_fresh_interpreter():
    code = ("from sgdsim import linear_theory, fokker_planck, spin_glass_theory, highdim_risk\n"
            "from sgdsim.datasets import DATA_DIR, load_xy\n"
            "from sgdsim.sweep_summary import rebuild_summary\n"
            "import sgdsim.claims, sgdsim.deep_linear.theory\n"
            "assert linear_theory is sgdsim.deep_linear.theory\n"
            "assert callable(fokker_planck.pde_density) and callable(sgdsim.fokker_planck.FokkerPlanck)\n"
            "from sgdsim.record import gradient_noise\n"
            "from sgdsim.simulate import Recorder\n"
            "assert callable(sgdsim.record) and callable(sgdsim.simulate)   # still the functions\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_module'"):
        sgdsim.not_a_module   # noqa: B018
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("sgdsim.not_a_module")
