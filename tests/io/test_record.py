"""sgdsim.record and import_npz: round trips read back bit for bit (through sgdsim.open and `sgdsim inspect`),
lazily created elements, statuses, every error path, and a recording loop killed by SIGKILL."""
from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from cli_helpers import kill_after_lines

import sgdsim
from sgdsim.cli import main
from sgdsim.errors import ParameterError, RunFileError
from sgdsim.io.record import gradient_noise, import_npz, record, sharpness


def _logged(rng):
    """What a training loop might log: float32 weights (a dict), a float64 vector, int and bool flags, the
    loss as a Python float; weights only every 3rd step."""
    rows = []
    for step in range(0, 40, 2):
        row = {"loss": float(rng.standard_normal()), "grad": rng.standard_normal(5),
               "correct": rng.integers(0, 100, size=2, dtype=np.int32), "flag": bool(step % 4)}
        if step % 3 == 0:
            row["weights"] = {"W1": rng.standard_normal((3, 4)).astype(np.float32),
                              "b1": rng.standard_normal(4).astype(np.float32)}
        rows.append((step, row))
    return rows


def test_round_trip_is_bit_identical(tmp_path, rng, capsys):
    path = tmp_path / "mlp.h5"
    rows = _logged(rng)
    with record(path, params={"width": 4, "optimizer": "sgd"}, lr=0.05, seed=11, scenario="pytorch-mlp") as rec:
        for step, row in rows:
            rec.log(step, **row)
    assert not path.with_name("mlp.h5.partial").exists()
    with sgdsim.open(path) as run:
        assert run.status == "complete" and run.message == ""
        assert run.scenario == "pytorch-mlp" and run.seed == 11
        assert run.params == {"width": 4, "optimizer": "sgd", "lr": 0.05}
        assert run.names("observables") == ["correct", "flag", "grad", "loss", "weights_W1", "weights_b1"]
        for name, getter in (("loss", lambda r: r["loss"]), ("grad", lambda r: r["grad"]),
                             ("correct", lambda r: r["correct"]), ("flag", lambda r: r["flag"]),
                             ("weights_W1", lambda r: r["weights"]["W1"]),
                             ("weights_b1", lambda r: r["weights"]["b1"])):
            key = name.split("_")[0]
            picked = [(s, getter(r)) for s, r in rows if key in r]
            el = run.element(name)
            expected = np.array([v for _, v in picked])
            assert el.value.dtype == expected.dtype, name
            assert el.value.tobytes() == expected.tobytes(), name     # bit for bit
            np.testing.assert_array_equal(el.step, [s for s, _ in picked])
            assert el.time.tobytes() == (np.array([s for s, _ in picked]) * 0.05).tobytes()  # default t = lr step
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "scenario  pytorch-mlp   seed 11   status complete" in out
    assert "observables/weights_W1: value (7, 3, 4) float32, steps 0..36" in out
    assert "observables/correct: value (20, 2) int32, steps 0..38" in out


def test_explicit_times_declared_coords_and_default_time_without_lr(tmp_path):
    path = tmp_path / "r.h5"
    grid = np.linspace(-1, 1, 5)
    with record(path) as rec:
        rec.declare("density", coords={"x": grid}, attrs={"kind": "density", "note": "histogram"})
        rec.log(0, density=np.ones(5), loss=1.0)
        rec.log(3, 0.25, density=np.zeros(5))
        rec.log(7, loss=0.5)
    with sgdsim.open(path) as run:
        d, loss = run.element("density"), run.element("loss")
        np.testing.assert_array_equal(d.coords["x"], grid)
        assert d.attrs == {"kind": "density", "note": "histogram"}
        np.testing.assert_array_equal(d.time, [0.0, 0.25])
        np.testing.assert_array_equal(loss.time, [0.0, 7.0])  # no lr: time = step
        assert run.params == {}


def test_non_finite_value_closes_as_diverged_naming_step_and_quantity(tmp_path):
    path = tmp_path / "r.h5"
    with record(path) as rec:
        rec.log(0, loss=1.0)
        rec.log(1, loss=float("inf"))
        rec.log(2, loss=float("nan"))
    with sgdsim.open(path) as run:
        assert run.status == "diverged" and run.message == "loss became non-finite at step 1"
        assert np.isinf(run.element("loss").value[1])


def test_exception_in_the_loop_closes_as_failed(tmp_path):
    path = tmp_path / "r.h5"
    with pytest.raises(ZeroDivisionError):
        with record(path) as rec:
            rec.log(0, loss=1.0)
            1 / 0
    with sgdsim.open(path) as run:
        assert run.status == "failed" and "ZeroDivisionError" in run.message
        assert len(run.element("loss").step) == 1
    with pytest.raises(ParameterError, match="the recording is closed"):
        rec.log(1, loss=2.0)


class _Tensor:
    """Stands in for a torch tensor that requires grad: refuses to become an array."""

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("Can't call numpy() on Tensor that requires grad.")


@pytest.mark.parametrize("calls, fragments", [
    (lambda r: (r.log(0, w=np.zeros(3)), r.log(5, w=np.zeros(4))),
     ["quantity 'w' at step 5: value of shape (4,), expected (3,)", "first value, at step 0"]),
    (lambda r: (r.log(4, loss=1.0), r.log(4, loss=2.0)), ["quantity 'loss': step 4 is not after its previous step 4"]),
    (lambda r: r.log(2.5, loss=1.0), ["step must be an integer, got 2.5"]),
    (lambda r: r.log(-1, loss=1.0), ["step must be in [0, 2**63)"]),
    (lambda r: r.log(0, "soon", loss=1.0), ["time at step 0 must be a number"]),
    (lambda r: r.log(0, float("nan"), loss=1.0), ["time at step 0 must be finite"]),
    (lambda r: r.log(0, loss="low"), ["quantity 'loss' at step 0: values must be numbers or booleans"]),
    (lambda r: r.log(0, w=_Tensor()), ["quantity 'w' at step 0: cannot convert _Tensor", "t.detach().cpu().numpy()"]),
    (lambda r: r.log(0, weights={"a": 1.0}, weights_a=2.0), ["quantity 'weights_a' is given twice at step 0"]),
    (lambda r: r.log(0, weights={"fc/0": 1.0}), ["quantity name 'weights_fc/0'"]),
    (lambda r: (r.log(0, loss=1.0), r.declare("loss", attrs={})), ["declare it before its first log"]),
    (lambda r: (r.log(0, loss=1.0), r.declare("d", coords={"x": [1, 2]}), r.log(1, loss=1.0, d=np.ones(3))),
     ["quantity 'd': coord 'x' has shape (2,), value dimension 0 has length 3"]),
    (lambda r: r.declare("d", attrs={"f": object()}), ["quantity 'd': attribute value"]),
])
def test_bad_logs_raise_one_line_and_write_nothing(tmp_path, calls, fragments):
    path = tmp_path / "r.h5"
    rec = record(path)
    with pytest.raises(ParameterError) as err:
        calls(rec)
    msg = str(err.value)
    assert "\n" not in msg and all(f in msg for f in fragments), msg
    rec.close()
    with sgdsim.open(path) as run:
        for name in run.names("observables"):  # the failing call recorded nothing
            assert len(run.element(name).step) == 1


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(lr=0.1, params={"lr": 0.2}), "lr=0.1 disagrees with params['lr']=0.2"),
    (dict(lr=-1.0), "lr must be a positive number"),
    (dict(params={"lr": "fast"}), "params['lr'] must be a positive number"),
    (dict(params={"f": object()}), "params: parameter value"),
    (dict(seed=-3), "seed must be an integer in [0, 2**63)"),
    (dict(flush_seconds=-1), "flush_seconds must be a number >= 0"),
])
def test_bad_recording_arguments(tmp_path, kwargs, fragment):
    with pytest.raises(ParameterError) as err:
        record(tmp_path / "r.h5", **kwargs)
    assert fragment in str(err.value)
    assert not (tmp_path / "r.h5.partial").exists()  # refused before any file is made


_CHILD = """
import sys, numpy as np, sgdsim
rec = sgdsim.record(sys.argv[1], params={"width": 8}, lr=0.5, seed=3, flush_seconds=0)
step = 0
while True:
    rec.log(step, loss=1.0 / (1 + step), weights={"W": np.full((2, 3), step, dtype=np.float32)})
    print(step, flush=True)
    step += 1
"""


def test_killed_recording_loop_leaves_a_readable_partial(tmp_path):
    path = tmp_path / "killed.h5"
    logged = kill_after_lines(_CHILD, path, lines=5)
    assert not path.exists()
    with sgdsim.open(path.with_name("killed.h5.partial")) as run:
        assert run.status == "running" and run.params == {"width": 8, "lr": 0.5}
        loss, w = run.element("loss"), run.element("weights_W")
        n = len(loss.step)
        assert n >= logged[-1] + 1 and len(w.step) >= logged[-1] + 1  # every flushed log is there
        np.testing.assert_array_equal(loss.step, np.arange(n))
        np.testing.assert_array_equal(loss.value, 1.0 / (1 + np.arange(n)))
        np.testing.assert_array_equal(w.value, np.broadcast_to(w.step[:, None, None], w.value.shape))


def test_import_npz_round_trip(tmp_path, rng):
    steps = np.array([0, 10, 20, 50], dtype=np.int64)
    arrays = {"loss": rng.standard_normal(4), "W": rng.standard_normal((4, 2, 2)).astype(np.float32),
              "density": rng.random((4, 3))}
    np.savez(tmp_path / "traj.npz", step=steps, **arrays)
    grid = np.array([-1.0, 0.0, 1.0])
    out = import_npz(tmp_path / "traj.npz", tmp_path / "traj.h5", params={"source": "jax"}, lr=0.01, seed=4,
                     coords={"density": {"x": grid}}, attrs={"density": {"kind": "density"}})
    assert out == tmp_path / "traj.h5"
    with sgdsim.open(out) as run:
        assert run.status == "complete" and run.scenario == "imported" and run.seed == 4
        assert run.params == {"source": "jax", "lr": 0.01}
        for name, arr in arrays.items():
            el = run.element(name)
            assert el.value.dtype == arr.dtype and el.value.tobytes() == arr.tobytes()
            np.testing.assert_array_equal(el.step, steps)
            assert el.time.tobytes() == (steps * 0.01).tobytes()
        assert run.element("density").attrs["kind"] == "density"
        np.testing.assert_array_equal(run.element("density").coords["x"], grid)
    times = np.array([0.0, 0.3, 0.7, 2.0])
    np.savez(tmp_path / "timed.npz", step=steps, time=times, loss=arrays["loss"])
    with sgdsim.open(import_npz(tmp_path / "timed.npz", tmp_path / "timed.h5")) as run:
        assert run.element("loss").time.tobytes() == times.tobytes()


def test_import_npz_errors(tmp_path):
    def npz(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    cases = [
        (tmp_path / "missing.npz", RunFileError, "no such file"),
        (tmp_path / "text.npz", RunFileError, "not a readable NPZ file"),
        (npz("nostep.npz", loss=np.ones(3)), ParameterError, "no 'step' array (has: loss)"),
        (npz("floatstep.npz", step=np.ones(3), loss=np.ones(3)), ParameterError, "'step' must be a 1-D integer array"),
        (npz("time.npz", step=np.arange(3), time=np.ones(2), loss=np.ones(3)), ParameterError,
         "'time' has shape (2,), 'step' has (3,)"),
        (npz("empty.npz", step=np.arange(3)), ParameterError, "no named arrays besides step and time"),
        (npz("rows.npz", step=np.arange(3), loss=np.ones(4)), ParameterError,
         "array 'loss' has shape (4,); every named array needs one row per step (3)"),
        (npz("order.npz", step=np.array([0, 2, 1]), loss=np.ones(3)), ParameterError,
         "'step' must be strictly increasing"),
        (npz("obj.npz", step=np.arange(2), loss=np.array([{}, {}], dtype=object)), RunFileError,
         "not a readable NPZ file"),
    ]
    (tmp_path / "text.npz").write_text("hello")
    for path, kind, fragment in cases:
        with pytest.raises(kind) as err:
            import_npz(path, tmp_path / "out.h5")
        assert fragment in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert not list(tmp_path.glob("out.h5*"))  # every input is checked before the run file is made
    with pytest.raises(ParameterError, match="coords/attrs given for 'nope'"):
        import_npz(npz("ok.npz", step=np.arange(2), loss=np.ones(2)), tmp_path / "o.h5", attrs={"nope": {}})


# ------------------------------------------------------------------ issue 13.12: theory and helpers

def test_a_theory_curve_is_stored_beside_the_recorded_one_and_compared(tmp_path):
    """Issue 13.12: `Recording.theory` (documented) stores a prediction that `compare --theory stored`
    holds the logged quantity against, over time or as a stationary value."""
    path = tmp_path / "r.h5"
    with sgdsim.record(path, lr=0.1) as rec:
        for step in range(10):
            rec.log(step, loss=np.exp(-0.1 * step) + 0.001, acc=0.9)
        t = 0.1 * np.arange(10)
        rec.theory("loss", np.exp(-t), step=np.arange(10), time=t, source="gradient flow", equation="exp(-t)")
        rec.theory("acc", 0.95, source="a limit", equation="0.95")
    with sgdsim.open(path) as run:
        assert run.theory("loss").attrs == {"source": "gradient flow", "equation": "exp(-t)"}
    result = sgdsim.compare(path, theory="stored", plot=False, write=False)
    m = {q.name: q.metrics for q in result.quantities}
    assert m["loss"]["max_abs_error"] == pytest.approx(0.001, rel=1e-9) and m["loss"]["n_times"] == 10
    assert m["acc"]["max_abs_error"] == pytest.approx(0.05) and m["acc"]["n_times"] == 1
    with pytest.raises(ParameterError, match="theory 'x': give both step and time"):
        with sgdsim.record(tmp_path / "bad.h5") as rec:
            rec.theory("x", [1.0, 2.0], step=[0, 1], source="s", equation="e")


def _minibatch_covariance_trace(g, batch, replace):
    """tr Cov of the minibatch mean gradient by enumerating every minibatch (ordered draws with replacement,
    subsets without): what the closed form must reproduce."""
    n = len(g)
    draws = (itertools.product(range(n), repeat=batch) if replace else itertools.combinations(range(n), batch))
    means = np.array([g[list(d)].mean(axis=0) for d in draws])
    return float(np.sum(means.var(axis=0)))


@pytest.mark.parametrize("replace", [False, True])
def test_gradient_noise_matches_every_minibatch_enumerated(rng, replace):
    g = rng.standard_normal((7, 2, 2)) + np.array([[1.0, -2.0], [0.5, 0.0]])
    noise = gradient_noise(g, lr=0.3, batch=3, replace=replace)
    flat = g.reshape(7, -1)
    assert noise.trace == pytest.approx(np.trace(np.cov(flat, rowvar=False, ddof=0)), rel=1e-12)
    assert noise.grad_norm == pytest.approx(np.linalg.norm(flat.mean(axis=0)), rel=1e-12)
    assert noise.temperature == pytest.approx(0.3 / 2 * _minibatch_covariance_trace(flat, 3, replace), rel=1e-12)
    assert gradient_noise(g, lr=0.3, batch=7).temperature == 0.0  # the full batch has no noise


@pytest.mark.parametrize("kwargs, fragment", [
    ({"per_example_grads": np.ones((1, 3)), "lr": 0.1, "batch": 1}, "at least 2 rows"),
    ({"per_example_grads": np.ones((4, 3)), "lr": 0.1, "batch": 5}, "batch must be an integer in [1, 4]"),
    ({"per_example_grads": np.ones((4, 3)), "lr": -1, "batch": 2}, "lr must be a positive number"),
    ({"per_example_grads": np.full((4, 3), np.nan), "lr": 0.1, "batch": 2}, "must be finite"),
])
def test_gradient_noise_bad_input(kwargs, fragment):
    with pytest.raises(ParameterError, match=re.escape(fragment)):
        gradient_noise(**kwargs)


def test_sharpness_finds_the_top_eigenvalue_of_a_known_hessian(rng):
    """Power iteration on an exact Hessian-vector product of H = Q diag(lambda) Q^T, and on finite
    differences of the gradient of the quadratic loss x^T H x / 2 (what a training loop can supply)."""
    q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    eigenvalues = np.concatenate([[4.0, 2.0], rng.uniform(0.0, 1.0, 18)])
    h = (q * eigenvalues) @ q.T
    assert sharpness(lambda v: h @ v, 20, iters=500, tol=1e-12) == pytest.approx(4.0, rel=1e-9)
    x0, eps = rng.standard_normal(20), 1e-5
    grad = lambda x: h @ x  # noqa: E731
    fd = sharpness(lambda v: (grad(x0 + eps * v) - grad(x0 - eps * v)) / (2 * eps), 20, iters=500, tol=1e-12)
    assert fd == pytest.approx(4.0, rel=1e-7)
    assert sharpness(lambda v: np.zeros(20), 20) == 0.0
    with pytest.raises(ParameterError, match="hvp must return a finite vector of length 20"):
        sharpness(lambda v: v[:3], 20)
