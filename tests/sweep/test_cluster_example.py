"""docs/slurm_sweep.py, the documented cluster configuration, renders a valid SLURM and PBS job script (one
Numba thread per worker, node-local Numba cache, no HDF5 file locking) without submitting anything."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dask_jobqueue")
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "slurm_sweep.py"


@pytest.mark.parametrize("kind, directive", [("slurm", "#SBATCH -A myproj"), ("pbs", "#PBS -A myproj")])
def test_job_script_sets_the_worker_environment(tmp_path, kind, directive):
    result = subprocess.run([sys.executable, str(EXAMPLE), "--kind", kind, "--out", str(tmp_path / "s"),
                             "--account", "myproj", "--queue", "compute", "--print-job-script"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert directive in script
    for line in ("NUMBA_NUM_THREADS=1", "NUMBA_CACHE_DIR=", "HDF5_USE_FILE_LOCKING=FALSE", "--nthreads 1"):
        assert line in script, line
    assert not (tmp_path / "s").exists()  # printing the script submits and creates nothing
