"""sgdsim compare: zero discrepancy against itself, a known value offset and a known time shift reported
exactly, time alignment by t = lr * step, linear interpolation (its exact midpoint error), no extrapolation,
L1/KL of densities against analytic values, the Gibbs theory converging at the midpoint rule's order 2,
the /comparison metrics replaced by a new compare, and every error path (one line, exit 2)."""
from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
from cli_helpers import sgdsim_cli
from figure_helpers import figures, legend_problems  # noqa: F401  (fixture)

import sgdsim
from sgdsim.cli import main
from sgdsim.compare.comparison import REL_FLOOR, compare, compare_path
from sgdsim.compare.registry import get_theory, theories
from sgdsim.errors import ParameterError
from sgdsim.io.runfile import RunWriter


def write_run(path, elements, params=None, scenario="test", partial=False, comparison=None):
    """A run file with the given elements: name -> (steps, times, values[, attrs[, coords]])."""
    w = RunWriter(path, scenario=scenario, params=params or {}, seed=0)
    for name, (steps, times, values, *extra) in elements.items():
        values = np.asarray(values, float)
        el = w.element(name, values.shape[1:], attrs=extra[0] if extra else None,
                       coords=extra[1] if len(extra) > 1 else None)
        for s, t, v in zip(steps, times, values):
            el.append(int(s), float(t), v)
    if comparison:
        w.comparison(**comparison)
    if partial:
        w.flush()
        w._h5.close()  # leave it as a killed run would: .partial, status running
        return w.partial_path
    return w.close()


def signals(t, offset=0.0):
    """loss (scalar), mean (vector) and covariance (matrix) as smooth functions of time, plus an offset."""
    t = np.asarray(t, float)
    return {"loss": 4.0 + t + offset,
            "mean": np.stack([np.sin(t), 2.0 + np.cos(t)], axis=1) + offset,
            "covariance": np.stack([1 + t, t, t, 2 + t * t], axis=1).reshape(-1, 2, 2) + offset}


EDGES = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])


def run_with(path, t, offset=0.0, time_shift=0.0, params=None):
    steps = np.arange(len(t))
    density = np.abs(np.sin(np.add.outer(t, [1.0, 2.0, 3.0, 4.0]))) + 0.1 + offset
    els = {k: (steps, t + time_shift, v) for k, v in signals(t, offset).items()}
    els["density"] = (steps, t + time_shift, density, {"edges": EDGES}, {"x": (EDGES[1:] + EDGES[:-1]) / 2})
    return write_run(path, els, params=params)


def test_self_comparison_is_exactly_zero_and_is_written(tmp_path, capsys):
    run = run_with(tmp_path / "a.h5", np.linspace(0, 3, 31))
    assert main(["compare", str(run), "--against", str(run)]) == 0
    out = capsys.readouterr().out
    assert "metrics written to" in out and f"figure: {compare_path(run)}" in out
    assert compare_path(run) == tmp_path / "a-compare.png" and compare_path(run).stat().st_size > 20_000
    with sgdsim.open(run) as r:
        c = r.comparison
    assert c["compare_against"] == str(run) and c["compare_theory"] == "" and c["compare_time"] == "time"
    assert c["compare_quantities"] == "covariance,density,loss,mean"
    for q in ("covariance", "density", "loss", "mean"):
        assert c[f"{q}_n_times"] == 31
        for m in ("max_abs_error", "rms_abs_error", "max_rel_error", "rms_rel_error"):
            assert c[f"{q}_{m}"] == 0.0, (q, m)
    for m in ("l1_final", "kl_final", "l1_max", "kl_max"):
        assert c[f"density_{m}"] == 0.0
    with h5py.File(run, "r") as f:
        np.testing.assert_array_equal(f["comparison/density/l1"][()], np.zeros(31))


def test_value_offset_is_reported_exactly(tmp_path):
    t = np.linspace(0, 3, 31)
    measured, reference = run_with(tmp_path / "m.h5", t, offset=0.125), run_with(tmp_path / "r.h5", t)
    result = compare(measured, against=reference, plot=False, write=False)
    for q in result.quantities:
        m = q.metrics
        assert m["max_abs_error"] == pytest.approx(0.125, rel=1e-12), q.name
        assert m["rms_abs_error"] == pytest.approx(0.125, rel=1e-12), q.name
    loss = next(q for q in result.quantities if q.name == "loss").metrics
    assert loss["max_rel_error"] == pytest.approx(0.125 / 4.0, rel=1e-12)   # |b| = 4 + t is smallest at t = 0
    assert loss["rms_rel_error"] == pytest.approx(np.sqrt(np.mean((0.125 / (4 + t)) ** 2)), rel=1e-12)
    dens = next(q for q in result.quantities if q.name == "density")
    assert dens.metrics["l1_final"] == pytest.approx(0.125 * 2.0, rel=1e-12)  # offset x grid length


def test_time_shift_of_a_linear_signal_gives_slope_times_shift(tmp_path):
    """Reference recorded with times t + delta: at measured time t it reads 4 + (t - delta), so loss is off by
    exactly delta (slope 1) where the two overlap, t >= delta; no time outside the overlap is compared."""
    t, delta = np.linspace(0, 3, 31), 0.37
    measured, shifted = run_with(tmp_path / "m.h5", t), run_with(tmp_path / "s.h5", t, time_shift=delta)
    result = compare(measured, against=shifted, quantities=["loss", "covariance"], plot=False, write=False)
    loss, cov = result.quantities
    assert loss.metrics["n_times"] == np.count_nonzero(t >= delta) and loss.time.min() >= delta
    assert loss.metrics["max_abs_error"] == pytest.approx(delta, rel=1e-12)
    assert loss.metrics["rms_abs_error"] == pytest.approx(delta, rel=1e-12)
    # covariance entries 1 + t and t are linear too (slope 1); 2 + t^2 is not and must show a larger error
    err = np.abs(cov.measured - cov.reference)
    np.testing.assert_allclose(err[:, [0, 0, 1], [0, 1, 0]], delta, rtol=1e-12)
    assert cov.metrics["max_abs_error"] > delta
    # aligned on steps instead, the time shift plays no role
    assert compare(measured, against=shifted, time="step", plot=False, write=False).quantities[0].metrics[
        "max_abs_error"] == 0.0


def test_interpolation_is_linear_between_reference_times(tmp_path):
    """Reference exp(-t) at spacing h, measured exactly at the midpoints: the discrepancy is the chord error
    (f(a) + f(b))/2 - f((a + b)/2) at each midpoint, to round-off."""
    h = 0.25
    t_ref = np.arange(0, 3 + h / 2, h)
    t_mid = t_ref[:-1] + h / 2
    ref = write_run(tmp_path / "r.h5", {"loss": (np.arange(len(t_ref)), t_ref, np.exp(-t_ref))})
    mea = write_run(tmp_path / "m.h5", {"loss": (np.arange(len(t_mid)), t_mid, np.exp(-t_mid))})
    q = compare(mea, against=ref, plot=False, write=False).quantities[0]
    chord = (np.exp(-t_ref[:-1]) + np.exp(-t_ref[1:])) / 2 - np.exp(-t_mid)
    np.testing.assert_allclose(q.reference - q.measured, chord, rtol=1e-10)
    assert q.metrics["max_abs_error"] == pytest.approx(chord.max(), rel=1e-10)


def test_lr_time_axis_aligns_runs_with_different_learning_rates(tmp_path):
    """Two runs of the same curve exp(-lr * step) at lr 0.1 and 0.05, each with time = step recorded:
    t = lr * step puts them on top of each other (every measured time is a reference node: exactly 0)."""
    def run(name, lr, every):
        steps = np.arange(0, int(round(10 / lr)) + 1, every)
        return write_run(tmp_path / name, {"loss": (steps, steps.astype(float), np.exp(-lr * steps))},
                         params={"lr": lr})
    a, b = run("a.h5", 0.1, 10), run("b.h5", 0.05, 10)
    q = compare(a, against=b, time="lr", plot=False, write=False).quantities[0]
    assert q.metrics["max_abs_error"] == 0.0 and q.metrics["n_times"] == 11
    np.testing.assert_allclose(q.time, np.arange(11.0), rtol=1e-15)
    assert compare(a, against=b, time="step", plot=False, write=False).quantities[0].metrics["max_abs_error"] > 0.1


def test_relative_error_floor_near_zero(tmp_path):
    """The reference crosses zero: the relative error uses max(|b|, REL_FLOOR max|b|) and stays finite."""
    t = np.linspace(-1, 1, 21)    # includes t = 0 where b = 0
    ref = write_run(tmp_path / "r.h5", {"x": (np.arange(21), t, t)})
    mea = write_run(tmp_path / "m.h5", {"x": (np.arange(21), t, t + 1e-3)})
    m = compare(mea, against=ref, plot=False, write=False).quantities[0].metrics
    assert m["max_rel_error"] == pytest.approx(1e-3 / (REL_FLOOR * 1.0), rel=1e-9)
    assert math.isfinite(m["rms_rel_error"])


def test_density_l1_and_kl_against_analytic_values(tmp_path):
    """Two cells of widths 1 and 2: measured masses (0.5, 0.5), reference (0.25, 0.75)."""
    edges = np.array([0.0, 1.0, 3.0])
    p, q = np.array([[0.5, 0.25]]), np.array([[0.25, 0.375]])
    mea = write_run(tmp_path / "m.h5", {"density": ([0], [0.0], p, {"edges": edges})})
    ref = write_run(tmp_path / "r.h5", {"density": ([0], [0.0], q, {"edges": edges})})
    m = compare(mea, against=ref, plot=False, write=False).quantities[0].metrics
    assert m["l1_final"] == pytest.approx(0.5, rel=1e-14)
    assert m["kl_final"] == pytest.approx(0.5 * np.log(2.0) + 0.5 * np.log(2.0 / 3.0), rel=1e-12)
    # flagged by kind="density" on a uniform grid given by its coordinate: cells of width 0.5
    x = np.array([0.25, 0.75, 1.25])
    mea = write_run(tmp_path / "m2.h5", {"d": ([0], [0.0], [[1.0, 1.0, 0.0]], {"kind": "density"}, {"x": x})})
    ref = write_run(tmp_path / "r2.h5", {"d": ([0], [0.0], [[0.0, 1.0, 1.0]], {"kind": "density"}, {"x": x})})
    m = compare(mea, against=ref, plot=False, write=False).quantities[0].metrics
    assert m["l1_final"] == pytest.approx(1.0, rel=1e-14) and m["kl_final"] == math.inf


def _gibbs_sampled_run(path, bins, temperature=0.3):
    """The Gibbs density sampled at the cell centres (midpoint rule), normalised on [-2, 2]."""
    edges = np.linspace(-2.0, 2.0, bins + 1)
    x = (edges[1:] + edges[:-1]) / 2
    p = np.exp(-(x * x - 1) ** 2 / temperature)
    p /= np.sum(p * np.diff(edges))
    return write_run(path, {"density": ([0, 50], [0.0, 1.0], [p, p], {"edges": edges}, {"x": x})},
                     params={"landscape": "double-well", "temperature": temperature})


def test_gibbs_theory_converges_at_second_order(tmp_path, capsys):
    """Cell averages of the Gibbs density differ from its midpoint samples by O(h^2): the L1 distance must
    fall with slope 2 in h (fitted over three grids), and the prediction is stationary (compared at the last
    recorded time only)."""
    h, l1 = [], []
    for bins in (20, 40, 80):
        run = _gibbs_sampled_run(tmp_path / f"g{bins}.h5", bins)
        assert main(["compare", str(run), "--theory", "gibbs", "--no-plot"]) == 0
        with sgdsim.open(run) as r:
            assert r.comparison["compare_theory"] == "gibbs" and r.comparison["density_n_times"] == 1
            h.append(4.0 / bins)
            l1.append(r.comparison["density_l1_final"])
    slope = np.polyfit(np.log(h), np.log(l1), 1)[0]
    assert abs(slope - 2.0) < 0.1, (slope, l1)
    assert "density" in capsys.readouterr().out


def test_fokker_planck_theory_starts_at_the_start_bin_conserves_mass_and_relaxes_to_gibbs(tmp_path, capsys):
    """The PDE prediction for a double-well run (T = 1, lr = 0.05): at t = 0 all the mass is in the bin
    holding start; mass is conserved; by t = 20 it has relaxed to the Gibbs bins computed by quadrature (an
    independent method) up to the PDE's O(h^2) discretisation (h = bin / 8: L1 ~ 1e-4)."""
    edges = np.linspace(-2.5, 2.5, 26)
    steps = np.array([0, 20, 100, 200, 400])
    run = write_run(tmp_path / "fp.h5", {"density": (steps, steps * 0.05, np.ones((5, 25)), {"edges": edges},
                                                     {"x": (edges[1:] + edges[:-1]) / 2})},
                    params={"landscape": "double-well", "temperature": 1.0, "lr": 0.05, "start": -1.0})
    with sgdsim.open(run) as r:
        t, fp = get_theory("fokker-planck")(r)["density"]
        g = get_theory("gibbs")(r)["density"][1]
    width = np.diff(edges)
    np.testing.assert_array_equal(t, steps * 0.05)
    np.testing.assert_array_equal(fp[0] * width, np.eye(25)[7])   # -1 lies in [-1.1, -0.9), bin 7
    np.testing.assert_allclose((fp * width).sum(axis=1), 1.0, rtol=1e-10)
    l1 = np.abs(fp - g) @ width
    assert np.all(np.diff(l1) < 0) and l1[-1] < 1e-3, l1
    # the same through the command, with the Gibbs bins as the "measured" density at every time
    gibbs_run = write_run(tmp_path / "gm.h5", {"density": (steps, steps * 0.05, np.tile(g, (5, 1)),
                                                           {"edges": edges})},
                          params={"landscape": "double-well", "temperature": 1.0, "lr": 0.05, "start": -1.0})
    assert main(["compare", str(gibbs_run), "--theory", "fokker-planck", "--no-plot"]) == 0
    with h5py.File(gibbs_run, "r") as f:
        np.testing.assert_allclose(f["comparison/density/l1"][()], l1, rtol=1e-12)
        assert f["comparison/density/l1"][0] == pytest.approx(2 * (1 - g[7] * width[7]), rel=1e-12)
        assert f["comparison"].attrs["density_l1_final"] == pytest.approx(l1[-1], rel=1e-9)
    assert "fokker-planck" in capsys.readouterr().out


def test_deep_linear_theory_against_an_independent_ode_solution(tmp_path):
    """Mode strengths integrated by scipy's solve_ivp (du/dt = N u^(2-2/N) (s - u), rtol 1e-11) for depths 2
    and 3, recorded at t = lr * step: the Saxe theory (closed form for N = 2, quadrature + Newton for N = 3)
    must agree to the integrator's tolerance."""
    from scipy.integrate import solve_ivp

    s, u0, lr = np.array([2.0, 0.5]), 0.01, 0.01
    steps = np.arange(0, 1501, 10)
    t = lr * steps
    els = {}
    for depth in (2, 3):
        sol = solve_ivp(lambda _, u: depth * u ** (2 - 2 / depth) * (s - u), (0, t[-1]), np.full(2, u0),
                        t_eval=t, rtol=1e-11, atol=1e-13, method="DOP853")
        els[f"modes_depth{depth}"] = (steps, t, sol.y.T, None, {"mode": np.arange(2)})
    run = write_run(tmp_path / "dl.h5", els, params={"singular_values": s.tolist(), "u0": u0, "lr": lr})
    result = compare(run, theory="deep-linear", plot=False)
    assert [q.name for q in result.quantities] == ["modes_depth2", "modes_depth3"]
    for q in result.quantities:
        assert q.metrics["n_times"] == len(steps) and q.metrics["max_abs_error"] < 1e-8, q.metrics
        assert np.ptp(q.measured[:, 0]) > 1.9   # the strong mode was learned during the run: not a flat test


def test_deep_linear_theory_reproduces_the_saxe_modes_scenarios_stored_theory(tmp_path, capsys):
    out = tmp_path / "saxe.h5"
    assert main(["run", "saxe-modes", "--preset", "small", "--out", str(out), "--no-plot", "--quiet"]) == 0
    assert main(["compare", str(out), "--theory", "deep-linear", "--no-plot"]) == 0
    with sgdsim.open(out) as r:
        for depth in (2, 3):
            stored = np.abs(r.element(f"modes_depth{depth}").value - r.theory(f"modes_depth{depth}").value).max()
            assert r.comparison[f"modes_depth{depth}_max_abs_error"] == pytest.approx(stored, rel=1e-10, abs=1e-14)
    assert "modes_depth3" in capsys.readouterr().out
    # the scenario's own stored predictions, by name: the same numbers, plus the loss curves it stores
    result = compare(out, theory="stored", plot=False, write=False)
    assert {q.name for q in result.quantities} >= {"loss_depth2", "loss_depth3", "modes_depth2", "modes_depth3"}
    with sgdsim.open(out) as r:
        for q in result.quantities:
            diff = np.max(np.abs(r.element(q.name).value - r.theory(q.name).value))
            assert q.metrics["max_abs_error"] == pytest.approx(diff, rel=1e-12, nan_ok=True)


def test_stored_theory_of_a_recorded_run(tmp_path):
    """A loop that stores its own prediction beside what it logs: a plain prediction is stationary, one in
    element form is interpolated; a prediction of another shape is left out."""
    with sgdsim.record(tmp_path / "r.h5", lr=0.5) as rec:
        for step in range(5):
            rec.log(step, loss=1.0 + step, acc=np.array([0.5, 0.25]))
        rec.writer.theory("loss", np.arange(0.0, 11.0), step=np.arange(0, 22, 2), time=np.arange(0.0, 11.0),
                          source="test", equation="L = t")   # measured 1 + step = 1 + 2t: off by 1 + t
        rec.writer.theory("acc", np.array([0.5, 0.5]), source="test", equation="constant")
        rec.writer.theory("unrelated", np.ones(3), source="test", equation="none")
    result = compare(tmp_path / "r.h5", theory="stored", plot=False, write=False)
    loss, acc = sorted(result.quantities, key=lambda q: q.name != "loss")
    np.testing.assert_allclose(loss.measured - loss.reference, 1.0 + 0.5 * np.arange(5), rtol=1e-14)
    assert acc.metrics["max_abs_error"] == 0.25 and acc.metrics["n_times"] == 1   # stationary: the last time


def test_new_compare_replaces_the_previous_metrics_and_keeps_the_scenarios(tmp_path):
    t = np.linspace(0, 1, 11)
    steps = np.arange(11)
    run = write_run(tmp_path / "a.h5", {"loss": (steps, t, t), "acc": (steps, t, 1 - t)},
                    comparison={"kl_final_measured": 0.25})
    other = write_run(tmp_path / "b.h5", {"loss": (steps, t, t + 1), "acc": (steps, t, 1 - t)})
    compare(run, against=other, plot=False)
    compare(run, against=other, quantities=["acc"], plot=False)
    with sgdsim.open(run) as r:
        c = r.comparison
    assert c["kl_final_measured"] == 0.25 and c["compare_quantities"] == "acc"
    assert not any(k.startswith("loss_") for k in c) and c["acc_max_abs_error"] == 0.0


def test_no_write_leaves_the_file_alone_and_reads_a_running_file(tmp_path, capsys):
    t = np.linspace(0, 1, 11)
    partial = write_run(tmp_path / "p.h5", {"loss": (np.arange(11), t, t)}, partial=True)
    assert main(["compare", str(partial), "--against", str(partial), "--no-write", "--no-plot"]) == 0
    assert "metrics written" not in capsys.readouterr().out
    with sgdsim.open(partial) as r:
        assert r.status == "running" and r.comparison == {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run files for the error paths (made once: no case writes to them)."""
    tmp_path = tmp_path_factory.mktemp("runs")
    t = np.linspace(0, 1, 11)
    s = np.arange(11)
    made = {"a": write_run(tmp_path / "a.h5", {"loss": (s, t, t), "w": (s, t, np.ones((11, 2)))}),
            "late": write_run(tmp_path / "late.h5", {"loss": (s, t + 5, t)}),
            "w3": write_run(tmp_path / "w3.h5", {"w": (s, t, np.ones((11, 3)))}),
            "other": write_run(tmp_path / "other.h5", {"acc": (s, t, t)}),
            "back": write_run(tmp_path / "back.h5", {"loss": (s, t[::-1], t)}),
            "partial": write_run(tmp_path / "part.h5", {"loss": (s, t, t)}, partial=True),
            "dw": write_run(tmp_path / "dw.h5", {"density": ([0], [0.0], np.ones((1, 4)), {"edges": EDGES})},
                            scenario="double-well"),
            "other_dw": write_run(tmp_path / "other_dw.h5",
                                  {"density": ([0], [0.0], np.ones((1, 4)), {"edges": EDGES})}),
            "empty": write_run(tmp_path / "empty.h5", {"loss": ([], [], np.zeros(0))}),
            "corrupt": tmp_path / "corrupt.h5"}
    dw = {"density": ([0], [0.0], np.ones((1, 4)), {"edges": EDGES})}
    for name, params in (("nolr", {"temperature": 1.0, "start": -1.0}), ("nostart", {"temperature": 1.0, "lr": 0.1}),
                         ("momentum", {"temperature": 1.0, "lr": 0.1, "start": -1.0, "momentum": 0.9}),
                         ("badT", {"temperature": "hot"})):
        made[name] = write_run(tmp_path / f"{name}.h5", dw, params={"landscape": "double-well", **params})
    modes = {"modes_depth2": ([0, 1], [0.0, 0.1], np.full((2, 2), 0.01))}
    for name, params in (("nos", {"u0": 0.01, "lr": 0.1}), ("nou0", {"singular_values": [1.0, 2.0], "lr": 0.1}),
                         ("bigu0", {"singular_values": [1.0, 2.0], "lr": 0.1, "u0": 1.5})):
        made[name] = write_run(tmp_path / f"{name}.h5", modes, params=params)
    made["corrupt"].write_text("not hdf5")
    return {k: str(v) for k, v in made.items()}


@pytest.mark.parametrize("args, fragments", [
    (["{a}", "--against", "{a}", "--quantity", "nope"], ["unknown quantity 'nope'", "valid quantities: loss, w"]),
    (["{a}", "--theory", "nope"], ["unknown theory 'nope' (valid: " + ", ".join(theories()) + ")"]),
    (["{a}", "--against", "{a}", "--time", "epoch"], ["unknown time axis 'epoch'; valid: time, lr, step"]),
    (["{a}", "--against", "{a}", "--time", "lr"], ["a.h5: needs a positive 'lr' parameter", "--time step"]),
    (["{a}", "--against", "{late}"], ["loss: no overlap between measured times [0, 1] and reference times [5, 6]"]),
    (["{a}", "--against", "{back}"], ["loss (reference): times must be finite and strictly increasing"]),
    (["{a}", "--against", "{w3}", "--quantity", "w"], ["w: measured values have shape (2,), reference (3,)"]),
    (["{empty}", "--against", "{a}"], ["loss: the run recorded no values"]),
    (["{a}", "--against", "{empty}"], ["loss (reference): times must be finite and strictly increasing"]),
    (["{a}", "--against", "{other}"], ["no quantity in common: a.h5 has loss, w; other.h5 has acc"]),
    (["{partial}", "--against", "{a}"], ["part.h5.partial: the run is still being written (status running)",
                                         "--no-write"]),
    (["{a}", "--theory", "gibbs"], ["theory gibbs needs a recorded quantity density", "a.h5 has: loss, w"]),
    (["{other_dw}", "--theory", "gibbs"], ["theory gibbs is for double-well runs", "scenario 'test'"]),
    (["{dw}", "--theory", "gibbs"], ["theory gibbs needs the temperature"]),
    (["{badT}", "--theory", "gibbs"], ["badT.h5: temperature in params must be a positive number, got 'hot'"]),
    (["{nolr}", "--theory", "fokker-planck"], ["theory fokker-planck needs the parameter(s) lr",
                                                "nolr.h5 has: landscape, start, temperature"]),
    (["{nostart}", "--theory", "fokker-planck"], ["theory fokker-planck needs the parameter(s) start"]),
    (["{momentum}", "--theory", "fokker-planck"], ["theory fokker-planck is for SGD without momentum"]),
    (["{a}", "--theory", "deep-linear"], ["theory deep-linear needs a recorded quantity modes_depth", "a.h5 has: loss, w"]),
    (["{nos}", "--theory", "deep-linear"], ["theory deep-linear needs the singular values of Sigma_yx"]),
    (["{nou0}", "--theory", "deep-linear"], ["theory deep-linear needs the initial mode strength"]),
    (["{bigu0}", "--theory", "deep-linear"], ["theory deep-linear, modes_depth2: mode needs 0 < u0 < s"]),
    (["{a}", "--against", "{a}", "--theory", "gibbs"], ["not allowed with argument"]),
    (["{a}"], ["one of the arguments --against --theory is required"]),
    (["/nonexistent/run.h5", "--against", "{a}"], ["/nonexistent/run.h5: no such file"]),
    (["{a}", "--against", "/nonexistent/other.h5"], ["/nonexistent/other.h5: no such file"]),
    (["{corrupt}", "--theory", "gibbs"], ["corrupt.h5: not a readable HDF5 file"]),
])
def test_bad_input_is_one_line_and_exit_2(runs, args, fragments, capsys):
    code = main(["compare", *[a.format(**runs) for a in args]])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgdsim: error:") and "Traceback" not in err
    for fragment in fragments:
        assert fragment.format(**runs) in lines[0], lines[0]


def test_compare_through_the_real_command(tmp_path):
    run = run_with(tmp_path / "a.h5", np.linspace(0, 1, 11))
    ok = sgdsim_cli("compare", run, "--against", run, "--quantity", "loss", "--out", tmp_path / "fig.png")
    assert ok.returncode == 0, ok.stderr
    assert "loss" in ok.stdout and f"figure: {tmp_path / 'fig.png'}" in ok.stdout and (tmp_path / "fig.png").exists()


def test_api_needs_exactly_one_reference(runs):
    with pytest.raises(ParameterError, match="exactly one of against"):
        compare(runs["a"])


@pytest.mark.slow
def test_gibbs_theory_matches_the_double_well_scenarios_own_numbers(tmp_path):
    """A second method: on a real double-well run, compare --theory gibbs (quadrature of exp(-f/T) over each
    bin, T from the run) agrees with the stationary density the scenario stores from its own Fokker-Planck
    steady state (/theory/stationary_sde) to the PDE's O(h^2) (L1 ~ 1e-4)."""
    out = tmp_path / "dw.h5"
    ran = sgdsim_cli("run", "double-well", "--preset", "small", "--seed", 3, "--out", out, "--no-plot", "--quiet")
    assert ran.returncode == 0, ran.stderr
    with sgdsim.open(out) as r:
        prediction = get_theory("gibbs")(r)["density"]
        stored = r.theory("stationary_sde").value
        width = np.diff(r.element("density").attrs["edges"])
    assert prediction[0] is None and np.sum(prediction[1] * width) == pytest.approx(1.0, rel=1e-12)
    assert np.sum(np.abs(prediction[1] - stored) * width) < 1e-3
    result = compare(out, theory="gibbs", plot=False)
    assert result.quantities[0].metrics["n_times"] == 1


def test_runs_of_different_scenarios_draw_a_warning(tmp_path, capsys):
    """Issue 13.9: comparing runs of different scenarios gave no warning."""
    t = np.linspace(0, 1, 11)
    a = write_run(tmp_path / "a.h5", {"loss": (np.arange(11), t, t)}, scenario="double-well")
    b = write_run(tmp_path / "b.h5", {"loss": (np.arange(11), t, t)}, scenario="saxe-modes")
    assert main(["compare", str(a), "--against", str(b), "--no-plot", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert ("warning: the runs are of different scenarios (a.h5: double-well, b.h5: saxe-modes): quantities of "
            "the same name may not mean the same thing") in out
    assert compare(a, against=a, plot=False, write=False).warnings == []


def test_stored_theory_compares_only_what_is_comparable(tmp_path, capsys, figures):
    """Issue 13.9: `--theory stored` on deep-linear-acceleration (the README's example) printed inf, nan and
    7.7e4: a conserved quantity predicted identically 0, a limit L* stored as a constant curve and compared at
    every time, and a (lr x depth) table with NaN for diverged entries. The same structure, recorded: the
    constant curve is a stationary prediction compared at the last time, the relative error against 0 is
    undefined (and said so), non-finite entries are left out (and counted), nothing prints inf or nan."""
    steps = np.arange(20)
    t = 0.1 * steps
    table_coords = {"depth": np.array([1, 2, 3]), "lr": np.array([0.1, 0.3, 1.0])}
    w = RunWriter(tmp_path / "dla.h5", scenario="deep-linear-acceleration", params={}, seed=0)
    elements = {"balancedness": w.element("balancedness", ()), "loss_adam": w.element("loss_adam", ())}
    for s, tt in zip(steps, t):
        elements["balancedness"].append(int(s), tt, 0.01 * tt)
        elements["loss_adam"].append(int(s), tt, 1e-4 + np.exp(-tt))
    excess = w.element("final_excess", (3, 3), coords=table_coords)
    measured_table = np.array([[1e-3, 2e-3, np.nan], [1e-3, 1e-6, np.nan], [1e-4, 1e-8, 1e-9]])
    excess.append(20, 2.0, measured_table)
    w.theory("balancedness", np.zeros(20), source="conserved by the flow", equation="0", step=steps, time=t)
    w.theory("loss_adam", np.full(20, 1e-4), source="convex minimum L*", equation="L*", step=steps, time=t)
    w.theory("final_excess", np.full((3, 3), 1e-3), source="ODE", equation="-", coords=table_coords)
    w.close()
    assert main(["compare", str(tmp_path / "dla.h5"), "--theory", "stored", "--no-plot", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "inf" not in out and "nan" not in out
    assert "balancedness: relative error undefined (the reference is 0)" in out
    assert "loss_adam: stationary prediction, compared at the last recorded time" in out
    assert "final_excess: 2 non-finite entries left out" in out
    compare(tmp_path / "dla.h5", theory="stored", write=False)   # the figure: one time -> measured vs reference
    (fig,) = figures
    assert legend_problems(fig) == []
    table = next(ax for ax in fig.axes if ax.get_title().startswith("final_excess (stationary)\nmax rel"))
    assert table.get_xlabel() == "theory stored" and "nan" not in " ".join(ax.get_title() for ax in fig.axes)
    result = compare(tmp_path / "dla.h5", theory="stored", plot=False, write=False)
    m = {q.name: q.metrics for q in result.quantities}
    assert m["loss_adam"]["n_times"] == 1 and m["loss_adam"]["max_abs_error"] == pytest.approx(np.exp(-1.9))
    assert np.isnan(m["balancedness"]["max_rel_error"]) and m["balancedness"]["max_abs_error"] == pytest.approx(0.019)
    finite = measured_table[np.isfinite(measured_table)]
    assert m["final_excess"]["n_nonfinite"] == 2 and m["final_excess"]["max_abs_error"] == pytest.approx(
        np.max(np.abs(finite - 1e-3)))


def test_a_quantity_without_finite_entries_is_skipped_and_said_so(tmp_path, capsys):
    t = np.linspace(0, 1, 3)
    a = write_run(tmp_path / "a.h5", {"loss": ([0, 1, 2], t, [np.nan] * 3), "acc": ([0, 1, 2], t, t)})
    assert main(["compare", str(a), "--against", str(a), "--no-plot", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "skipped loss: no entry where both the measured and the reference value are finite" in out
    assert main(["compare", str(a), "--against", str(a), "--quantity", "loss", "--no-plot", "--no-write"]) == 2
    assert "nothing comparable: loss: no entry where both" in capsys.readouterr().err


def test_density_overlay_is_scaled_by_the_final_densities(tmp_path, figures):
    """Issue 13.11: in compare's density overlay the t = 0 point mass set the y-scale."""
    edges = np.linspace(-1, 1, 21)
    x = (edges[1:] + edges[:-1]) / 2
    start = np.where(np.abs(x - 0.05) < 0.01, 10.0, 0.0)
    final = np.full(20, 0.5)
    run = write_run(tmp_path / "d.h5", {"density": ([0, 10], [0.0, 1.0], [start, final], {"edges": edges},
                                                    {"x": x})})
    other = write_run(tmp_path / "o.h5", {"density": ([0, 10], [0.0, 1.0], [start, final * 1.1], {"edges": edges},
                                                      {"x": x})})
    compare(run, against=other, write=False)
    (fig,) = figures
    assert legend_problems(fig) == []
    assert fig.axes[0].get_ylim() == pytest.approx((0.0, 1.15 * 0.55))
