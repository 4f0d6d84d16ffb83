"""SIGINT, SIGTERM and SIGKILL of `sgdsim run` for the particle, p-spin, network, deep-linear (saxe-modes) and
committee-machine engines: the run stops at its next chunk with the state reached recorded, the file is closed
as "interrupted" under its final name, opens, plots and is checked; SIGKILL leaves a .partial that opens with
everything up to its last flush, and `sgdsim recover` makes it a plain HDF5 file. The Fokker–Planck time
stepper (`FokkerPlanck.evolve`, which no scenario of its own drives for long) is signalled the same way in a
script that runs it as `sgdsim run` runs a scenario."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from cli_helpers import CLI, sgdsim_cli

import sgdsim

LONG = {"pspin-landscape": ["n=24", "replicas=4", "steps=100000000", "grad_tol=0", "points=400"],
        "double-well": ["particles=2000", "steps=100000000", "record_every=1000"],
        "large-lr": ["steps=100000000", "record_every=200"],
        # deep linear GD on the factors, records streamed as taken (~7e4 steps/s: hours of steps)
        "saxe-modes": ["depths=2", "t_max=100000", "records=100000"],
        # online SGD of the students, records streamed as taken (the ODE and spread study never reached)
        "committee-machine": ["t_max=100000", "records=100000"],
        # SGD chains on least squares by the particle engine, each risk record streamed (the Volterra never reached)
        "risk-curves": ["steps=100000000", "records=100000", "d=200", "n=400", "particles=200"]}


def start_and_signal(name: str, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a long run, wait until its .partial holds a few records, send `sig`, return the finished process."""
    return signal_when_recorded([*CLI, "run", name, "--preset", "small", "--set", *LONG[name], "--out", str(out),
                                 "--no-plot", "--quiet"], out, sig)


def signal_when_recorded(command: list[str], out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start `command` writing `out`, wait until its .partial holds a few records, send `sig`, let it finish."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = out.with_name(out.name + ".partial")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and not recorded(partial, 2):
        time.sleep(0.3)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def recorded(partial: Path, rows: int) -> bool:
    """Whether the run being written has recorded at least `rows` rows of some observable (read live)."""
    if not partial.exists():
        return False
    try:
        with sgdsim.open(partial) as run:
            return any(len(run.h5["observables"][n]["step"]) >= rows for n in run.names("observables"))
    except Exception:   # the writer is between two structural changes: look again
        return False


@pytest.mark.parametrize("name", sorted(LONG))
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_is_closed_readable_plottable_and_checkable(tmp_path, name, sig, code):
    out = tmp_path / "run.h5"
    done = start_and_signal(name, out, sig)
    assert done.returncode == code, done.stderr
    assert "interrupted" in done.stderr and len(done.stderr.strip().splitlines()) <= 2
    assert out.exists() and not out.with_name(out.name + ".partial").exists()
    with h5py.File(out, "r") as f:   # plain h5py, no SWMR flags left
        assert f.attrs["status"] == "interrupted"
    with sgdsim.open(out) as run:
        assert run.status == "interrupted" and sig_name(sig) in run.message
        observed = run.names("observables")
        assert observed and len(run.element(observed[0]).step) >= 1
        # every engine here is cooperative: it stopped at a chunk boundary and recorded the step reached
        reached = int(run.message.split("at step ")[1].split()[0])
        assert run.element(observed[0]).step[-1] == reached > 0
    assert sgdsim_cli("plot", out).returncode == 0
    assert sgdsim_cli("check", out).returncode == 1      # readable, and states no claim for a run cut short


def sig_name(sig: int) -> str:
    return signal.Signals(sig).name


@pytest.mark.parametrize("name", sorted(LONG))
def test_sigkill_leaves_a_partial_that_opens_and_recovers(tmp_path, name):
    out = tmp_path / "run.h5"
    done = start_and_signal(name, out, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    partial = out.with_name(out.name + ".partial")
    with sgdsim.open(partial) as run:
        assert run.status == "running"
        observed = run.names("observables")
        assert observed and len(run.element(observed[0]).step) >= 1
    assert sgdsim_cli("recover", partial).returncode == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "killed"


def test_fokker_planck_and_committee_engines_stop_cooperatively_with_the_state_reached():
    """In-process: a SIGTERM already noted by the guard stops the Fokker–Planck evolution before its next record
    and the committee-machine simulator after its next chunk, each with status interrupted and what it reached."""
    from sgdsim.fokker_planck import equation as fokker_planck
    from sgdsim.highdim import committee as hd
    from sgdsim.runloop import Interrupt

    fp = fokker_planck.problem(loss=lambda x: (x[:, 0] ** 2 - 1) ** 2, temperature=0.3, lo=-2, hi=2, cells=80)
    t = hd.teacher(N=50, M=2, seed=0)
    W0 = hd.initial_students(t, K=2, students=2, scale=0.3, overlap=0.05, seed=0)
    with Interrupt() as stop:
        full = fp.evolve(fp.point_mass([-1.0]), [0.0, 1.0, 2.0], 0.01)
        assert full.status == "complete" and len(full.times) == 3
        stop.signal = signal.SIGTERM
        ev = fp.evolve(fp.point_mass([-1.0]), [0.0, 1.0, 2.0], 0.01)
        sim = hd.simulate(t, W0, np.ones(2), [0, 5000, 10000], lr=1.0, seed=0)
    assert ev.status == "interrupted" and "SIGTERM" in ev.message and list(ev.times) == [0.0]
    assert sim.status == "interrupted" and "SIGTERM" in sim.message
    assert 0 < sim.t[-1] * 50 < 10000 and np.all(np.isfinite(sim.eps))


# FokkerPlanck.evolve under a guard as `sgdsim run` sets it (Scenario.write_run's writer and status), streaming
# every density to the run file as it is recorded: 4000 cells, 10^5 record times, far more than a test waits for
FP_SCRIPT = """
import sys
import numpy as np
from sgdsim.fokker_planck import equation as fokker_planck
from sgdsim.io.runfile import RunWriter
from sgdsim.runloop import Interrupt

fp = fokker_planck.problem(loss=lambda x: (x[:, 0] ** 2 - 1) ** 2, temperature=0.3, lo=-2.5, hi=2.5, cells=4000)
with Interrupt() as stop:
    with RunWriter(sys.argv[1], scenario="fokker-planck-evolve", params={}, seed=0) as writer:
        density = writer.element("density", fp.shape, coords=fp.coords())

        def stream(i, t, p):
            density.append(i, t, p)
            writer.flush()

        out = fp.evolve(fp.point_mass([-1.0]), np.linspace(0.0, 1e5, 100001), 1e-3, callback=stream)
        writer.close(out.status, out.message)
sys.exit(stop.exit_code if out.status == "interrupted" else 0)
"""


def start_evolve_and_signal(out: Path, sig: int) -> subprocess.CompletedProcess:
    return signal_when_recorded([sys.executable, "-c", FP_SCRIPT, str(out)], out, sig)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_fokker_planck_evolution_stops_at_a_chunk_with_its_densities_recorded(tmp_path, sig, code):
    out = tmp_path / "fp.h5"
    done = start_evolve_and_signal(out, sig)
    assert done.returncode == code, done.stderr
    assert out.exists() and not out.with_name(out.name + ".partial").exists()
    with sgdsim.open(out) as run:
        assert run.status == "interrupted" and sig_name(sig) in run.message, run.message
        density = run.element("density")
        # records stay at the requested times (t = 0, 1, 2, ...) and stop before the time reached
        assert len(density.step) >= 2 and list(density.time) == list(range(len(density.step)))
        reached = float(run.message.split("(t = ")[1].split(";")[0])
        assert density.time[-1] <= reached < density.time[-1] + 1
        assert np.allclose(density.value.sum(axis=1) * 5.0 / 4000, 1.0)
    assert sgdsim_cli("plot", out).returncode == 0
    assert sgdsim_cli("check", out).returncode == 1


def test_fokker_planck_evolution_killed_leaves_a_partial_that_opens_and_recovers(tmp_path):
    out = tmp_path / "fp.h5"
    done = start_evolve_and_signal(out, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    partial = out.with_name(out.name + ".partial")
    with sgdsim.open(partial) as run:
        assert run.status == "running" and len(run.element("density").step) >= 2
    assert sgdsim_cli("recover", partial).returncode == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "killed"
