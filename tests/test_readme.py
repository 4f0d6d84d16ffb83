"""The README's code blocks run as written (issue 13.10): every Python block is executed, in a fresh
namespace and an empty folder, and must finish without error; every `sgdsim` command of the shell blocks
names a real subcommand, options its --help lists, installed scenarios with their parameters and presets,
and registered theories; every script a shell block runs exists."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sgdsim.cli import main
from sgdsim.compare.registry import theories
from sgdsim.scenario import scenarios

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", README, re.S)
SHELL = re.findall(r"```bash\n(.*?)```", README, re.S)

RUNNER = textwrap.dedent("""
    import os, sys, traceback
    for i, path in enumerate(sys.argv[1:]):
        os.makedirs(f"block{i}")
        os.chdir(f"block{i}")
        try:
            exec(compile(open(path).read(), f"README python block {i + 1}", "exec"), {"__name__": "__main__"})
        except BaseException:
            traceback.print_exc()
            sys.exit(f"README python block {i + 1} failed")
        os.chdir("..")
""")


def test_every_python_block_runs_as_written(tmp_path):
    """One interpreter runs the blocks in turn, each in its own empty folder and namespace."""
    assert len(PYTHON) >= 7
    paths = []
    for i, block in enumerate(PYTHON):
        paths.append(tmp_path / f"block{i}.py")
        paths[-1].write_text(block)
    result = subprocess.run([sys.executable, "-c", RUNNER, *map(str, paths)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


def _commands() -> list[list[str]]:
    """Every command line of the shell blocks (continuations joined, comments dropped), as argument lists."""
    out = []
    for block in SHELL:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out.append(shlex.split(line))
    return out


def _help(capsys, *args) -> str:
    with pytest.raises(SystemExit) as done:
        main([*args, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_every_sgdsim_command_of_the_shell_blocks_is_valid(capsys):
    installed, registered = scenarios(), theories()
    commands = [c for c in _commands() if c[0] == "sgdsim"]
    assert len(commands) >= 20
    for words in commands:
        sub, rest = words[1], words[2:]
        helptext = _help(capsys, sub)
        for word in rest:
            if word.startswith("--"):
                assert word.split("=")[0] in helptext, (words, word)
        if sub in ("run", "sweep") or (sub == "list" and rest and not rest[0].startswith("-")):
            scenario = installed.get(rest[0])
            assert scenario is not None, words
            values = [w for w in rest[1:] if "=" in w and not w.startswith("--")]
            for pair in values:
                scenario.param(pair.split("=")[0])
            if "--preset" in rest:
                assert rest[rest.index("--preset") + 1] in scenario.presets, words
        if "--theory" in rest:
            assert rest[rest.index("--theory") + 1] in registered, words


def test_every_script_a_shell_block_runs_exists():
    for words in _commands():
        if words[0] in ("python", "python3") and words[1].endswith(".py"):
            assert (ROOT / words[1]).is_file(), words
