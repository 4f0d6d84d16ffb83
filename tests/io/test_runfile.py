"""Run files: round trip, crash safety (SIGKILL), error paths."""
import json
import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
from cli_helpers import kill_after_lines

import sgdsim
from sgdsim.errors import RunFileError, SgdsimError
from sgdsim.io.runfile import RunWriter
from sgdsim.io.runread import open_run


def _value(step, shape):
    """Deterministic value for a step, so readers can check every row exactly."""
    return np.arange(np.prod(shape), dtype=np.float64).reshape(shape) * 0.5 + step


def test_round_trip(tmp_path):
    path = tmp_path / "sub" / "run.h5"
    params = {"lr": np.float64(0.05), "batch": np.int64(8), "x0": np.array([1.0, 2.0]), "name": "dw"}
    grid = np.linspace(-1, 1, 5)
    w = RunWriter(path, scenario="double-well", params=params, seed=3, block_bytes=100)
    assert w.partial_path == tmp_path / "sub" / "run.h5.partial" and w.partial_path.exists()
    assert not path.exists()
    loss = w.element("loss", (), attrs={"units": "nats"})
    dens = w.element("density", (5,), coords={"x": grid})
    cloud = w.element("cloud", (4, 2), group="particles", dtype=np.float32)
    esc = w.events("escape")
    steps = np.arange(0, 50, 2)
    for i, s in enumerate(steps):
        loss.append(s, s * 0.05, float(s) ** 0.5)
        dens.append(s, s * 0.05, _value(s, (5,)))
        cloud.append(s, s * 0.05, _value(s, (4, 2)))
        esc.append([i], [s], [s * 0.05])
        esc.append([], [], [])
        if i % 7 == 6:
            w.flush()
    w.theory("density", np.exp(-grid**2), source="Gardiner 2009", equation="(5.3.2)", coords={"x": grid})
    w.theory("loss", np.ones((3, 5)), source="paper", equation="(1)", step=[0, 10, 20], time=[0, 0.5, 1.0],
             coords={"x": grid}, attrs={"kind": "stationary"})
    w.comparison(kl_final=0.01, n=3, method="histogram")
    w.attrs(wall_seconds=1.5)
    assert w.close("diverged", "loss became NaN at step 48") == path
    assert w.close() == path  # idempotent
    assert path.exists() and not w.partial_path.exists()

    with open_run(path) as run:
        assert run.path == path
        assert (run.scenario, run.seed, run.status) == ("double-well", 3, "diverged")
        assert run.message == "loss became NaN at step 48"
        assert run.params == {"lr": 0.05, "batch": 8, "x0": [1.0, 2.0], "name": "dw"}
        assert json.loads(run.h5["parameters"].attrs["params"]) == run.params
        assert run.versions["sgdsim"] == sgdsim.__version__ and run.versions["h5py"] == h5py.__version__
        assert set(run.versions) == {"numpy", "numba", "h5py", "sgdsim"}
        assert list(run.h5["h5md"].attrs["version"]) == [1, 1]
        assert run.h5["h5md/creator"].attrs["name"] == "sgdsim"
        assert run.names("observables") == ["density", "loss"] and run.names("nothing") == []
        el = run.element("loss")
        np.testing.assert_array_equal(el.step, steps)
        np.testing.assert_array_equal(el.time, steps * 0.05)
        np.testing.assert_array_equal(el.value, steps.astype(float) ** 0.5)
        assert el.attrs == {"units": "nats"}
        d = run.element("density")
        assert d.value.shape == (len(steps), 5)
        np.testing.assert_array_equal(d.value, np.stack([_value(s, (5,)) for s in steps]))
        np.testing.assert_array_equal(d.coords["x"], grid)
        vds = run.h5["observables/density/value"]
        assert vds.dims[1][0].name == "/observables/density/x"
        assert vds.dims[0][0].name == "/observables/density/step"
        assert run.h5["observables/density/time"].dims[0][0].name == "/observables/density/step"
        assert vds.chunks[0] >= 1 and vds.compression == "gzip" and vds.shuffle
        c = run.element("cloud", group="particles")
        assert c.value.dtype == np.float32 and c.value.shape == (len(steps), 4, 2)
        np.testing.assert_array_equal(c.value, np.stack([_value(s, (4, 2)) for s in steps]).astype(np.float32))
        assert "value" in run.h5["particles/cloud/position"]
        ev = run.event("escape")
        np.testing.assert_array_equal(ev.particle, np.arange(len(steps)))
        np.testing.assert_array_equal(ev.step, steps)
        th = run.theory("density")
        assert th.step is None and th.time is None
        assert th.attrs == {"source": "Gardiner 2009", "equation": "(5.3.2)"}
        assert run.h5["theory/density/value"].dims[0][0].name == "/theory/density/x"
        th2 = run.theory("loss")
        np.testing.assert_array_equal(th2.step, [0, 10, 20])
        assert th2.value.shape == (3, 5) and th2.attrs["kind"] == "stationary"
        assert run.comparison == {"kl_final": 0.01, "n": 3, "method": "histogram"}
        assert run.attrs["wall_seconds"] == 1.5
        text = run.summary()
        for part in ("double-well", "diverged", "observables/density", "events/escape: 25 events",
                     "theory/loss", "kl_final"):
            assert part in text


def test_small_blocks_write_between_flushes(tmp_path):
    with RunWriter(tmp_path / "r.h5", scenario="s", params={}, seed=0, block_bytes=64) as w:
        el = w.element("x", (3,))
        for s in range(5):
            el.append(s, s, _value(s, (3,)))
        # 5 rows of 40 bytes > 64 bytes: blocks were written without an explicit flush
        assert w._h5["observables/x/value"].shape[0] >= 2
        assert w._h5["observables/x/step"].shape[0] == w._h5["observables/x/value"].shape[0]
    with open_run(tmp_path / "r.h5") as run:
        assert run.status == "complete" and len(run.element("x").step) == 5


def test_context_manager_exception_marks_failed(tmp_path):
    path = tmp_path / "r.h5"
    with pytest.raises(ZeroDivisionError):
        with RunWriter(path, scenario="s", params={"a": 1}, seed=1) as w:
            w.element("x", ()).append(0, 0.0, 1.0)
            1 / 0
    with open_run(path) as run:
        assert run.status == "failed"
        assert run.message == "ZeroDivisionError: division by zero"
        assert len(run.element("x").step) == 1


def test_bad_status_and_shape(tmp_path):
    w = RunWriter(tmp_path / "r.h5", scenario="s", params={}, seed=0)
    with pytest.raises(ValueError, match="shape"):
        w.element("x", (2,)).append(0, 0.0, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="status"):
        w.close("ok")
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.flush()


_CHILD = """
import sys, numpy as np
from sgdsim.io.runfile import RunWriter
w = RunWriter(sys.argv[1], scenario="kill", params={"k": 1}, seed=7, block_bytes=1 << 20)
el = w.element("x", (3,))
cl = w.element("cloud", (4, 2), group="particles")
step = 0
while True:
    for _ in range(4):
        el.append(step, step * 0.1, np.arange(3) + step)
        cl.append(step, step * 0.1, np.full((4, 2), step, dtype=float))
        step += 1
    w.flush()
    print(step, flush=True)
"""


def test_sigkill_leaves_readable_partial(tmp_path):
    path = tmp_path / "killed.h5"
    flushed = kill_after_lines(_CHILD, path, lines=3)
    assert not path.exists()
    with open_run(path.with_name("killed.h5.partial")) as run:
        assert run.status == "running" and run.seed == 7
        el = run.element("x")
        n = len(el.step)
        assert n >= flushed[-1] and len(el.value) == n and len(el.time) == n
        np.testing.assert_array_equal(el.step, np.arange(n))
        np.testing.assert_array_equal(el.value, np.arange(3)[None, :] + np.arange(n)[:, None])
        cl = run.element("cloud", group="particles")
        assert len(cl.step) >= flushed[-1]
        np.testing.assert_array_equal(cl.value, np.broadcast_to(cl.step[:, None, None], cl.value.shape))


def test_sigkill_at_random_moments_including_mid_flush(tmp_path):
    """Kills land anywhere, including inside a flush of a large block (a third of the writer's time): every
    file must open with a consistent prefix. Without SWMR streaming about 1 kill in 16 left a corrupt chunk."""
    child = _CHILD.replace("for _ in range(4)", "for _ in range(64)").replace('(4, 2), group', '(256, 8), group')
    child = child.replace("np.full((4, 2), step", "np.full((256, 8), step")
    rng = np.random.default_rng(2)
    for trial in range(12):
        path = tmp_path / f"k{trial}.h5"
        proc = subprocess.Popen([sys.executable, "-c", child, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            proc.stdout.readline()  # one flush done: the writer is streaming
            import time
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=10)
            proc.stdout.close()
        with open_run(path.with_name(f"k{trial}.h5.partial")) as run:
            el, cl = run.element("x"), run.element("cloud", group="particles")
            assert len(el.step) >= 64 and len(el.value) == len(el.step) == len(el.time)
            np.testing.assert_array_equal(el.value, np.arange(3)[None, :] + el.step[:, None])
            np.testing.assert_array_equal(cl.value, np.broadcast_to(cl.step[:, None, None], cl.value.shape))


def _assert_one_line(err, path):
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert isinstance(err.value, SgdsimError)


def test_missing_file(tmp_path):
    with pytest.raises(RunFileError, match="no such file") as err:
        open_run(tmp_path / "nope.h5")
    _assert_one_line(err, tmp_path / "nope.h5")


def test_text_file(tmp_path):
    p = tmp_path / "x.h5"
    p.write_text("hello\nworld\n")
    with pytest.raises(RunFileError, match="not a readable HDF5 file") as err:
        open_run(p)
    _assert_one_line(err, p)


def test_hdf5_without_parameters(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.create_group("h5md")
        f["data"] = np.arange(3)
    with pytest.raises(RunFileError, match=r"not an sgdsim run file \(missing /parameters\)") as err:
        open_run(p)
    _assert_one_line(err, p)


def test_truncated_file(tmp_path):
    good = tmp_path / "good.h5"
    with RunWriter(good, scenario="s", params={}, seed=0) as w:
        el = w.element("x", (100,))
        for s in range(50):
            el.append(s, s, np.random.default_rng(s).random(100))
    data = good.read_bytes()
    bad = tmp_path / "bad.h5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFileError, match="not a readable HDF5 file") as err:
        open_run(bad)
    _assert_one_line(err, bad)


def test_unknown_name(tmp_path):
    p = tmp_path / "r.h5"
    with RunWriter(p, scenario="s", params={}, seed=0) as w:
        w.element("loss", ())
        w.element("mean", (2,))
    with open_run(p) as run:
        with pytest.raises(RunFileError, match=r"no observables/energy \(has: loss, mean\)") as err:
            run.element("energy")
        _assert_one_line(err, p)
        with pytest.raises(RunFileError, match=r"no events/escape \(has: nothing\)"):
            run.event("escape")


def test_every_element_reads_as_a_labelled_xarray_dataset(tmp_path):
    """DESIGN's promise: xarray.open_dataset(path, engine="h5netcdf", group=...) reads any element, with
    step, the given grid and default index coordinates as named dimensions."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    path = tmp_path / "x.h5"
    with RunWriter(path, scenario="xr", params={}, seed=0) as w:
        loss = w.element("loss", ())
        dens = w.element("density", (4,), coords={"x": np.linspace(-1, 1, 4)})
        cov = w.element("covariance", (2, 2))
        cloud = w.element("cloud", (3, 2), group="particles")
        for step in range(3):
            loss.append(step, 0.1 * step, float(step))
            dens.append(step, 0.1 * step, np.full(4, step))
            cov.append(step, 0.1 * step, np.eye(2) * step)
            cloud.append(step, 0.1 * step, np.full((3, 2), step))
    expected = {"observables/loss": ("step",), "observables/density": ("step", "x"),
                "observables/covariance": ("step", "dim1", "dim2"),
                "particles/cloud/position": ("step", "particle", "spatial")}
    for group, dims in expected.items():
        with xr.open_dataset(path, engine="h5netcdf", group=group) as ds:
            assert ds["value"].dims == dims
            np.testing.assert_array_equal(ds["step"], [0, 1, 2])
            np.testing.assert_allclose(ds["time"], [0.0, 0.1, 0.2])
            assert float(ds["value"].isel(step=2).max()) == 2.0


def _full_run(path):
    """A run file using every part of the layout: elements with grids, particles, events, theory in both
    forms, claims (scalar and array), comparison metrics, root attributes."""
    from sgdsim.compare.claims import Claim
    grid = np.linspace(-1, 1, 4)
    with RunWriter(path, scenario="tools", params={"lr": 0.1}, seed=1) as w:
        dens = w.element("density", (4,), coords={"x": grid}, attrs={"kind": "density"})
        cloud = w.element("cloud", (3, 2), group="particles")
        esc = w.events("escape")
        for step in range(3):
            dens.append(step, 0.1 * step, np.full(4, step))
            cloud.append(step, 0.1 * step, np.full((3, 2), step))
            esc.append([step], [step], [0.1 * step])
        w.theory("density", np.ones(4), source="s", equation="e", coords={"x": grid})
        w.theory("loss", np.ones(3), source="s", equation="e", step=[0, 1, 2], time=[0, 0.1, 0.2])
        w.claims(Claim("a", "a scalar", 1.0, 1.1, "z", 3.0, stderr=0.1),
                 Claim("b", "an array", [1.0, 2.0], [1.0, 2.5], "rel", 0.5))
        w.comparison(kl_final=0.01, method="histogram")
        w.attrs(wall_seconds=1.5)


@pytest.mark.parametrize("swmr", [True, False])
def test_run_files_open_in_the_hdf5_1_10_command_line_tools(tmp_path, swmr, monkeypatch):
    """Issue 13.1: files written with libver="latest" by HDF5 2.0 made h5dump 1.10 fail with an internal
    error and h5ls print *ERROR* for every dataset. The system's hdf5-tools (installed by .ci/run) must read
    every object, with and without SWMR streaming, also after `sgdsim compare` has written into the file."""
    import shutil
    if not (shutil.which("h5dump") and shutil.which("h5ls")):
        pytest.skip("hdf5-tools not installed (.ci/run installs them)")
    monkeypatch.setenv("SGDSIM_SWMR", "1" if swmr else "0")
    path = tmp_path / "tools.h5"
    _full_run(path)
    sgdsim.compare(path, against=path, plot=False)   # writes /comparison attributes and a density group
    dump = subprocess.run(["h5dump", "-H", str(path)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0 and "ERROR" not in dump.stdout + dump.stderr, dump.stderr
    for name in ("observables/density/value", "particles/cloud/position/value", "events/escape/step",
                 "theory/loss/value", "claims/name", "claims/arrays/b/measured"):
        assert name.split("/")[-1] in dump.stdout
    listing = subprocess.run(["h5ls", "-r", str(path)], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "ERROR" not in listing.stdout + listing.stderr, listing.stdout
    assert "/claims/arrays/b/measured" in listing.stdout and "/observables/density/value" in listing.stdout
    assert "/comparison/density/l1" in listing.stdout
    data = subprocess.run(["h5dump", "-A", "0", "-d", "/observables/density/value", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert data.returncode == 0 and "(2,0): 2, 2, 2, 2" in data.stdout, data.stdout
