"""Theories as plug-ins (issue 11.4): `sgdsim compare --theory NAME` resolves NAME from the entry-point group
`sgdsim.theories`; each theory declares the quantities and parameters it needs and refuses, in one line, a
run without them; `sgdsim list --theories` lists them with what they apply to; a theory added by a second
installed package (the test plug-in, tests/plugins/theory_plugin) is found; no library module of the
comparison knows a scenario's name."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from plugin_helpers import plugin, plugin_site  # noqa: F401  (fixtures)

import sgdsim
from sgdsim.cli import main
from sgdsim.compare.comparison import compare
from sgdsim.compare.registry import Theory, broken_theories, get_theory, theories
from sgdsim.errors import ParameterError
from sgdsim.scenario import scenarios


def _decay_run(path, rate=2.0, params=True):
    with sgdsim.record(path, params={"rate": rate} if params else {}, lr=0.1) as rec:
        for step in range(30):
            rec.log(step, signal=np.exp(-rate * 0.1 * step) + 0.01)
    return path


def test_the_built_in_theories_come_from_the_entry_point_group():
    found = theories()
    assert {"gibbs", "fokker-planck", "deep-linear", "stored"} <= set(found)
    assert all(isinstance(t, Theory) and t.applies_to for t in found.values())
    assert found["fokker-planck"].params == ("lr", "start") and found["gibbs"].quantities == ("density",)
    assert "decay" not in found   # the plug-in is installed only where a test asks for it


def test_a_theory_from_another_installed_package_is_found_and_used(plugin, tmp_path, capsys):
    assert "decay" in theories() and get_theory("decay").params == ("rate",)
    run = _decay_run(tmp_path / "r.h5")
    assert main(["compare", str(run), "--theory", "decay", "--no-plot"]) == 0
    assert "signal" in capsys.readouterr().out
    with sgdsim.open(run) as r:
        c = r.comparison
    assert c["compare_theory"] == "decay" and c["signal_n_times"] == 30
    assert c["signal_max_abs_error"] == pytest.approx(0.01, rel=1e-9)


def test_list_theories_says_what_each_applies_to_and_which_fail_to_load(plugin, capsys):
    assert main(["list", "--theories"]) == 0
    out = capsys.readouterr().out.splitlines()
    i = out.index("decay: Exponential decay of `signal`: exp(-rate t) at the recorded times")
    assert out[i + 1] == ("    applies to runs recording `signal` with a `rate` parameter (the test plug-in); "
                          "needs signal, param rate")
    assert any(line.startswith("gibbs: ") for line in out) and any(line.startswith("stored: ") for line in out)
    assert ("broken-theory: (fails to load: AttributeError: module 'sgdsim_test_plugin' has no attribute "
            "'NOT_THERE')") in out
    assert "broken-theory" in broken_theories()
    assert main(["compare", "x.h5", "--theory", "broken-theory"]) == 2
    assert "theory 'broken-theory' is installed but fails to load" in capsys.readouterr().err


@pytest.mark.parametrize("make, fragment", [
    (lambda p: _decay_run(p, params=False), "theory decay needs the parameter(s) rate (it applies to runs "
                                            "recording `signal`"),
    (lambda p: sgdsim.import_npz(_npz(p), p, params={"rate": 1.0}), "theory decay needs a recorded quantity "
                                                                     "signal"),
])
def test_a_run_without_what_the_theory_declares_is_refused_in_one_line(plugin, tmp_path, capsys, make, fragment):
    run = make(tmp_path / "r.h5")
    assert main(["compare", str(run), "--theory", "decay", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "r.h5 has: " in err[0]
    with pytest.raises(ParameterError):
        compare(run, theory="decay", plot=False, write=False)


def _npz(path):
    npz = path.with_suffix(".npz")
    np.savez(npz, step=np.arange(3), other=np.ones(3))
    return npz


def test_no_comparison_module_names_a_scenario():
    """The theories of a scenario live beside it; the library's comparison code (`sgdsim.compare`) holds no
    scenario name (nor a scenario's naming scheme such as modes_depth<N>) as a string outside docstrings."""
    names = set(scenarios())
    root = Path(sgdsim.__file__).parent / "compare"
    for module in sorted(root.glob("*.py")):
        tree = ast.parse(module.read_text())
        strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
        docstrings = {ast.get_docstring(n, clean=False) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))}
        code_strings = [s for s in strings if s not in docstrings]
        assert not [s for s in code_strings if s in names or "modes_depth" in s], module
