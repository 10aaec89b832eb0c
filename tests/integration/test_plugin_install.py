"""
The twistd plugin is found after ``pip install .`` and after
``pip install -e . --config-settings editable_mode=compat``.

Each test builds a fresh venv, installs a copy of the project into it
without dependencies, and makes the test environment's own packages
(Twisted, Autobahn, ...) importable through a path file, so nothing is
downloaded but the build backend. ``twistd --help`` then runs from a
directory outside the project, so only the installed copy can be found.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.timing import seconds

pytestmark = pytest.mark.slow



def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    # Our site-packages as a plain path: its .pth files (such as another
    # editable ratchetpy) are not processed, only its packages are seen.
    ours = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if "site-packages" in p]
    (Path(purelib) / "test-deps.pth").write_text("\n".join(dict.fromkeys(ours)) + "\n")
    return python


def copy_project(destination: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "dropin.cache", ".pytest_cache")
    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination


def twistd_lists_ratchetpy(python: Path, cwd: Path) -> bool:
    result = subprocess.run(
        [str(python), "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()", "--help"],
        capture_output=True, text=True, cwd=cwd, timeout=seconds(60),
    )
    return any(line.split()[:1] == ["ratchetpy"] for line in result.stdout.splitlines())


@pytest.mark.parametrize(
    "pip_args",
    [
        pytest.param(["install", "--no-deps", "-q", "{project}"], id="pip-install"),
        pytest.param(
            ["install", "--no-deps", "-q", "-e", "{project}", "--config-settings", "editable_mode=compat"],
            id="pip-install-editable-compat",
        ),
    ],
)
def test_plugin_discovered_after_install(tmp_path, pip_args):
    """``twistd --help`` lists ratchetpy after each install form."""
    project = copy_project(tmp_path / "project")
    python = make_venv(tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert not twistd_lists_ratchetpy(python, elsewhere)
    args = [a.replace("{project}", str(project)) for a in pip_args]
    subprocess.run(
        [str(python), "-m", "pip", *args], check=True, cwd=elsewhere, timeout=seconds(300),
        capture_output=True,
    )
    assert twistd_lists_ratchetpy(python, elsewhere)
    # The package data (the demo page) is installed too.
    check = "import ratchetpy.builtins as b; assert b'ratchetpy chat' in b.demo_page().body"
    subprocess.run([str(python), "-c", check], check=True, cwd=elsewhere, timeout=seconds(60))
