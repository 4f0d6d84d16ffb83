"""The scenario framework: typed parameters, lists, presets, cross-parameter checks, the registry."""
from __future__ import annotations

import pytest

from sgdsim.errors import ParameterError
from sgdsim.scenario import Param, Scenario, at_least, get_scenario, list_check, parse_list, positive, scenarios


def _scenario():
    return Scenario("toy", "a toy", (Param("lr", float, 0.1, "rate", positive), Param("batch", int, 2, "B", at_least(1)),
                                     Param("dims", str, "2,4", "dims", list_check(int, 2)),
                                     Param("fast", bool, False, "flag")),
                    run=None, plot=None, presets={"small": {"batch": 1}},
                    validate=lambda p: "batch must not exceed 8" if p["batch"] > 8 else None)


def test_resolve_defaults_preset_overrides_and_conversion():
    sc = _scenario()
    assert sc.resolve() == {"lr": 0.1, "batch": 2, "dims": "2,4", "fast": False}
    assert sc.resolve(preset="small")["batch"] == 1
    resolved = sc.resolve({"lr": "0.5", "batch": "4", "fast": "yes"}, preset="small")
    assert resolved == {"lr": 0.5, "batch": 4, "dims": "2,4", "fast": True}
    assert sc.resolve({"lr": 1})["lr"] == 1.0 and isinstance(sc.resolve({"lr": 1})["lr"], float)


@pytest.mark.parametrize("overrides, message", [
    ({"nope": "1"}, "unknown parameter 'nope' for toy (valid: lr, batch, dims, fast)"),
    ({"lr": "x"}, "parameter lr must be a number, got 'x'"),
    ({"lr": "-1"}, "parameter lr must be positive, got -1.0"),
    ({"lr": "inf"}, "parameter lr must be finite"),
    ({"batch": "1.5"}, "parameter batch must be an integer, got '1.5'"),
    ({"batch": True}, "parameter batch must be an integer"),
    ({"batch": "0"}, "parameter batch must be at least 1, got 0"),
    ({"batch": "9"}, "batch must not exceed 8"),
    ({"fast": "maybe"}, "parameter fast must be true or false"),
    ({"dims": "2,1"}, "parameter dims must be a comma-separated list of integers >= 2 (1 is not)"),
])
def test_bad_values_name_the_problem(overrides, message):
    with pytest.raises(ParameterError) as err:
        _scenario().resolve(overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ParameterError, match="unknown preset 'big' for toy \\(valid: small\\)"):
        _scenario().resolve(preset="big")


def test_parse_list():
    assert parse_list("32, 2,8,8", int, 2) == [2, 8, 32]
    assert parse_list("0.4, 0.1,0.1", float, 0) == [0.1, 0.4]
    for bad, fragment in (("", "comma-separated"), ("1,4", "(1 is not)"), ("2,x", "'x' is not an integer"),
                          ("2.5", "'2.5' is not an integer"), ("0.1,-2", "(-2 is not)"), ("nan", "(nan is not)")):
        kind = float if bad in ("0.1,-2", "nan") else int
        with pytest.raises(ParameterError, match=fragment.replace("(", "\\(").replace(")", "\\)")):
            parse_list(bad, kind, 2)


def test_registry_finds_the_installed_scenarios():
    assert {"double-well", "temperature", "saddle-escape"} <= set(scenarios())
    with pytest.raises(ParameterError, match="unknown scenario 'x' \\(valid: .*double-well"):
        get_scenario("x")



def test_recorder_estimate_counts_what_the_recorder_stores(tmp_path):
    """Issue 13.2: the default estimate of a particle run's output is the size of what the run file holds
    (uncompressed: at least the compressed size), and its records are counted without building them. (The
    kernel variant is the double-well scenario's: compiled once for the suite.)"""
    import h5py
    import numpy as np

    import sgdsim
    from sgdsim.scenario import recorder_estimate

    recorder = sgdsim.Recorder(every=25, histogram=(0, np.linspace(-2, 2, 11)), snapshot=7)
    path = tmp_path / "r.h5"
    with sgdsim.RunWriter(path, scenario="t", params={}, seed=0) as writer:
        sgdsim.simulate(sgdsim.finite_sum_double_well(16, 7.0, seed=1), sgdsim.SGD(lr=0.01, batch=2),
                        np.zeros((40, 1)), n_steps=100, seed=0, recorder=recorder, writer=writer, progress=False)
    stored = 0
    with h5py.File(path) as f:
        for group in ("observables", "particles"):
            for g in f[group].values():
                g = g["position"] if group == "particles" else g
                stored += sum(g[k][()].nbytes for k in ("step", "time", "value"))
    memory, output = recorder_estimate(recorder, 100, 40, 1)
    assert output == stored   # 5 records of mean, covariance, loss, density (10 bins) and 7 snapshots
    assert memory >= 40 * 8
    _, huge = recorder_estimate(sgdsim.Recorder(every=1), 10 ** 9, 20000, 1)
    assert huge == (10 ** 9 + 1) * 3 * (16 + 8)   # mean, covariance and loss at every step: 72 GB


def _breaking_scenario(signal_first: bool):
    """A scenario whose engine is stopped by SIGTERM (or not) and which then fails on the short result."""
    import os
    import signal

    from sgdsim.runloop import cooperative

    def run(params, seed, writer, progress):
        if signal_first:
            with cooperative():      # an engine's loop, which notes the signal and stops at its next chunk
                os.kill(os.getpid(), signal.SIGTERM)
        return [][-1]      # e.g. density[-1] of an evolution cut short

    return Scenario("breaking", "stops", (Param("lr", float, 0.1, "rate", positive),), run=run, plot=None)


def test_a_scenario_broken_by_an_interrupt_closes_interrupted_and_otherwise_fails(tmp_path):
    import h5py

    from sgdsim.runloop import Interrupt

    with Interrupt():
        status, message, _ = _breaking_scenario(True).write_run({"lr": 0.1}, 0, tmp_path / "a.h5")
    assert status == "interrupted" and message.startswith("interrupted by SIGTERM; the scenario stopped (IndexError")
    with h5py.File(tmp_path / "a.h5") as f:
        assert f.attrs["status"] == "interrupted"
    with Interrupt(), pytest.raises(IndexError):
        _breaking_scenario(False).write_run({"lr": 0.1}, 0, tmp_path / "b.h5")
    with h5py.File(tmp_path / "b.h5.partial" if (tmp_path / "b.h5.partial").exists() else tmp_path / "b.h5") as f:
        assert f.attrs["status"] == "failed"
