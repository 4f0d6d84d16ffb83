"""sgdsim recover: a writer killed with SIGKILL leaves a .partial that plain h5py (and h5dump) refuse; after
`sgdsim recover` every reader opens it, with status 'killed', the last flushed step and the flushed data intact.
The superblock checksum (lookup3) against its published test vectors and against a file HDF5 wrote."""
from __future__ import annotations

import shutil
import subprocess

import h5py
import numpy as np
import pytest
from cli_helpers import kill_after_lines, sgdsim_cli

from sgdsim.io import recover as rc
from sgdsim.cli import main
from sgdsim.errors import RunFileError
from sgdsim.io.runfile import STATUSES, RunWriter
from sgdsim.io.runread import open_run

_CHILD = """
import sys, numpy as np
from sgdsim.io.runfile import RunWriter
w = RunWriter(sys.argv[1], scenario="kill", params={"k": 1}, seed=7)
el = w.element("x", (3,))
step = 0
while True:
    for _ in range(4):
        el.append(step, step * 0.5, np.arange(3) + step)
        step += 1
    w.flush()
    print(step, flush=True)
"""


def test_lookup3_published_vectors_and_the_checksum_hdf5_wrote(tmp_path):
    # Bob Jenkins, lookup3.c (driver5): hashlittle of "" and of "Four score and seven years ago"
    assert rc.lookup3(b"") == 0xDEADBEEF
    assert rc.lookup3(b"", 0xDEADBEEF) == 0xBD5B7DDE
    assert rc.lookup3(b"Four score and seven years ago") == 0x17770551
    assert rc.lookup3(b"Four score and seven years ago", 1) == 0xCD628161
    path = RunWriter(tmp_path / "clean.h5", scenario="s", params={}, seed=0).close()
    version, flags, size = rc.superblock(path)
    block = path.read_bytes()[:size + 4]
    assert version == 3 and flags == 0
    assert int.from_bytes(block[size:], "little") == rc.lookup3(block[:size])
    assert not rc.clear_write_flags(path)        # nothing to clear: the file is not touched
    assert path.read_bytes()[:size + 4] == block


def test_recover_a_sigkilled_run_so_plain_readers_open_it(tmp_path):
    path = tmp_path / "killed.h5"
    flushed = kill_after_lines(_CHILD, path, lines=3)
    partial = path.with_name("killed.h5.partial")
    assert rc.superblock(partial)[1] != 0                      # open-for-write flags left set
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(partial, "r")
    result = sgdsim_cli("recover", partial)
    assert result.returncode == 0, result.stderr
    assert not partial.exists() and path.exists()
    with h5py.File(path, "r") as h5:                            # plain h5py, no SWMR
        assert h5.attrs["status"] == "killed" and "killed" in STATUSES
        step = int(h5.attrs["last_flushed_step"])
        assert step >= flushed[-1] - 1
        x = h5["observables/x"]
        np.testing.assert_array_equal(x["step"][()], np.arange(step + 1))
        np.testing.assert_array_equal(x["value"][()], np.arange(3)[None, :] + np.arange(step + 1)[:, None])
        assert h5.attrs["last_flushed_time"] == pytest.approx(step * 0.5)
        assert f"step {step} " in h5.attrs["message"]
    assert f"last flushed step {step}" in result.stdout
    with open_run(path) as run:
        assert run.status == "killed" and run.seed == 7
    if shutil.which("h5dump"):
        assert subprocess.run(["h5dump", "-H", str(path)], capture_output=True).returncode == 0


def test_bad_inputs_are_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "junk.h5.partial").write_bytes(b"not hdf5 at all")
    (tmp_path / "taken.h5.partial").write_bytes(b"")
    (tmp_path / "taken.h5").write_bytes(b"")                    # the final name is taken
    for target, fragment in (("nothing.h5", "no such file"), ("junk.h5.partial", "not an HDF5 file"),
                             ("taken.h5", "already exists")):
        code = main(["recover", str(tmp_path / target)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert (tmp_path / "taken.h5.partial").exists()
    with pytest.raises(RunFileError, match="not an HDF5 file"):
        rc.clear_write_flags(tmp_path / "junk.h5.partial")
