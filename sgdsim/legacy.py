"""The module paths of sgdsim 0.1's flat layout, kept working after the split into one subpackage per engine.

The README and users' scripts import `from sgdsim import linear_theory` or `from sgdsim.sweep_summary import
rebuild_summary`; both resolve, lazily, to the module's home (`sgdsim.deep_linear.theory`,
`sgdsim.sweep.summary`): the same module object, so nothing is loaded twice. The flat names that became
packages (`fokker_planck`, `deep_linear`, `spin_glass`, `networks`, `highdim`, `compare`, `sweep`)
re-export their main module instead and need no entry here. New code imports the homes.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

PACKAGE = "sgdsim"
MODULES = {   # flat 0.1 name -> home under sgdsim
    "claims": "compare.claims", "compare_metrics": "compare.metrics", "compare_theories": "compare.registry",
    "datasets": "networks.datasets", "dynamics": "particles.dynamics", "escape_theory": "fokker_planck.escape",
    "highdim_risk": "highdim.risk", "landscapes": "particles.landscapes", "linear_theory": "deep_linear.theory",
    "minibatch_moments": "particles.minibatch_moments", "modified_equations": "particles.modified_equations",
    "record": "io.record", "recover": "io.recover", "runfile": "io.runfile", "runread": "io.runread",
    "simulate": "particles.simulate", "spin_glass_theory": "spin_glass.theory",
    "sweep_executors": "sweep.executors", "sweep_plot": "sweep.plot", "sweep_summary": "sweep.summary",
    "theory": "particles.theory",
}


def home(name: str):
    """The module a flat 0.1 name (e.g. "linear_theory") now is, imported."""
    return importlib.import_module(f"{PACKAGE}.{MODULES[name]}")


class _Alias(importlib.abc.Loader):
    """Loads `sgdsim.<flat name>` as the module at its home, keeping that module's own spec."""

    def __init__(self, module):
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        module.__spec__ = self.spec      # the import machinery set it to the alias's spec


class Finder(importlib.abc.MetaPathFinder):
    """`import sgdsim.linear_theory` and `from sgdsim.datasets import ...` find the module's home."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or name not in MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(home(name)))


def install() -> None:
    """Put the finder on sys.meta_path once, and enter the flat names of modules already imported in
    sys.modules now: importing through the finder later would set `sgdsim.<name>` to the module, and
    `sgdsim.record` and `sgdsim.simulate` must stay the functions they are in 0.1."""
    for name, home in MODULES.items():
        module = sys.modules.get(f"{PACKAGE}.{home}")
        if module is not None:
            sys.modules.setdefault(f"{PACKAGE}.{name}", module)
    if not any(isinstance(finder, Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, Finder())
