"""Shared by the tests that run sgdsim in a subprocess: the real `sgdsim` command, a scenario's preset end to
end (exit 0, run file and figure written), and a writer killed with SIGKILL mid-run."""
from __future__ import annotations

import signal
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


def kill_after_lines(script: str, *args, lines: int) -> list[int]:
    """Run `python -c SCRIPT ARGS`, read the integers it prints on its first `lines` lines, then SIGKILL it
    (a writer killed mid-run); returns those integers."""
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True)
    try:
        printed = [int(proc.stdout.readline()) for _ in range(lines)]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
    return printed
