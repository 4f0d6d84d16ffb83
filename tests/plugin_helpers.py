"""The test plug-in package (tests/plugins/theory_plugin), installed for the tests into a temporary site
directory: its package plus a `.dist-info` whose entry points come from its pyproject.toml, which is what pip
would install. Only processes given that directory on sys.path (PYTHONPATH for subprocesses) see it, so the
shared virtual environment is left alone."""
from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

SOURCE = Path(__file__).parent / "plugins" / "theory_plugin"


def install_plugin(site: Path) -> Path:
    """Install the plug-in into the folder `site` (created); returns it."""
    project = tomllib.loads((SOURCE / "pyproject.toml").read_text())["project"]
    package = "sgdsim_test_plugin"
    shutil.copytree(SOURCE / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / f"{package}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = project["entry-points"]
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items()) + "\n"
        for group, eps in groups.items()))
    return site


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The plug-in installed once per test session."""
    return install_plugin(tmp_path_factory.mktemp("site"))


@pytest.fixture
def plugin(plugin_site, monkeypatch) -> Path:
    """The plug-in visible to this test: on sys.path here, and on PYTHONPATH for subprocesses."""
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugin_site), os.environ.get("PYTHONPATH")])))
    return plugin_site
