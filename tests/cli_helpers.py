"""Shared by the tests that go through the real `sgdsim` command: run it in a subprocess, and run a scenario's
preset end to end (exit 0, run file and figure written)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "sgdsim.cli"]


def sgdsim_cli(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """`python -m sgdsim.cli ARGS` (each converted with str), output captured as text."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def run_scenario(name, out, *extra, preset="small", timeout=300) -> Path:
    """`sgdsim run NAME --preset PRESET --out OUT --quiet EXTRA`; asserts exit 0 and the figure beside OUT."""
    out = Path(out)
    result = sgdsim_cli("run", name, "--preset", preset, "--out", out, "--quiet", *extra, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert out.with_suffix(".png").exists()
    return out
