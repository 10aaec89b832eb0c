"""
The API reference documents every public name.

Every name in the ``__all__`` of every public module (no part of its dotted
name starts with ``_``) must have an entry in the built reference: a class
or function where it is defined, any other value under the module that
exports it. The fast tests check ``docs/reference/*.md`` has an
``automodule`` for each module that defines such a name; the slow test
builds the site with Sphinx (``-W -n``: warnings fail) and reads the
entries from its ``objects.inv``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ci import require_tool
from tests.support.docs import (
    DOCS,
    automodules,
    expected_entries,
    inventory_entries,
    missing_entries,
    public_modules,
    read_inventory,
)
from tests.support.timing import seconds

HOW_TO_ADD = (
    "add a section with\n\n    ```{eval-rst}\n    .. automodule:: MODULE\n    ```\n\n"
    "to the page of its package in docs/reference/ (a new package gets a page of "
    "its own, listed in docs/reference/index.md)"
)


def test_every_public_module_has_one_automodule():
    """Each public module is documented, on exactly one reference page."""
    found = automodules()
    missing = [name for name in public_modules() if name not in found]
    assert not missing, f"public modules without a reference entry: {missing}; " + HOW_TO_ADD
    twice = {name: pages for name, pages in found.items() if len(pages) > 1}
    assert not twice, f"modules documented on several pages: {twice}"
    unknown = sorted(set(found) - set(public_modules()))
    assert not unknown, f"automodule of modules that are not public or do not exist: {unknown}"


def test_every_exported_name_is_in_a_documented_module():
    """The entry each exported name needs is in a module the reference documents."""
    documented = set(automodules())
    orphans = sorted(
        f"{exported} -> {entry}"
        for exported, entry in expected_entries().items()
        if entry.rpartition(".")[0] not in documented
        and entry.split(".")[0] == "ratchetpy"
        and not any(entry.startswith(m + ".") and "." in entry[len(m) + 1 :] for m in documented)
    )
    assert not orphans, f"names whose defining module has no reference entry: {orphans}"


def test_missing_entries_names_what_the_reference_lacks():
    """The check the build test relies on reports a name the inventory does not have."""
    expected = {"ratchetpy.App": "ratchetpy.app.App", "ratchetpy.VERSION": "ratchetpy.VERSION"}
    assert missing_entries(expected, {"ratchetpy.app.App", "ratchetpy.VERSION"}) == []
    assert missing_entries(expected, {"ratchetpy.VERSION"}) == [
        "ratchetpy.App (expected entry ratchetpy.app.App)"
    ]


def test_reexports_point_at_the_defining_module():
    """A package's re-export is expected where the object is defined, data where exported."""
    expected = expected_entries()
    assert expected["ratchetpy.App"] == "ratchetpy.app.App"
    assert expected["ratchetpy.http.Request"] == "ratchetpy.http.request.Request"
    assert expected["ratchetpy.VERSION"] == "ratchetpy.VERSION"
    assert expected["ratchetpy.version.VERSION"] == "ratchetpy.version.VERSION"


def test_twisted_inventory_points_at_pydoctor_pages(tmp_path):
    """docs/_ext/twisted_inventory.py maps the installed Twisted to its API pages."""
    spec = importlib.util.spec_from_file_location(
        "twisted_inventory", DOCS / "_ext" / "twisted_inventory.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "twisted.inv"
    assert module.write_inventory(path) > 1000
    entries = inventory_entries(path)
    assert entries["twisted.internet.defer.Deferred", "py:class"] == (
        "twisted.internet.defer.Deferred.html"
    )
    assert entries["twisted.internet.defer.Deferred.addCallback", "py:method"] == (
        "twisted.internet.defer.Deferred.html#addCallback"
    )
    assert entries["twisted.internet.defer.inlineCallbacks", "py:function"] == (
        "twisted.internet.defer.html#inlineCallbacks"
    )
    # a zope interface, and a name exported from a private module
    assert ("twisted.internet.interfaces.IReactorTime", "py:class") in entries
    assert entries["twisted.internet.ssl.CertificateOptions", "py:class"] == (
        "twisted.internet.ssl.CertificateOptions.html"
    )
    assert ("twisted.internet.reactor", "py:module") not in entries


@pytest.mark.slow
def test_built_reference_has_every_public_name(tmp_path):
    """Build the site (warnings are errors) and find every exported name in objects.inv."""
    require_tool(
        importlib.util.find_spec("sphinx") is not None
        and importlib.util.find_spec("myst_parser") is not None,
        "Sphinx and myst-parser are not installed",
        "pip install -e '.[docs]' --config-settings editable_mode=compat",
    )
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    require_tool(
        Path(f"/usr/share/doc/python{version}/html/objects.inv").is_file(),
        f"Python's documentation inventory (python{version}-doc) is not installed",
        f"apt-get install python{version}-doc",
    )
    out = tmp_path / "html"
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q",
         "-b", "html", "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=seconds(600),
    )
    assert build.returncode == 0, f"sphinx-build failed:\n{build.stderr[-6000:]}"
    missing = missing_entries(expected_entries(), read_inventory(out / "objects.inv"))
    assert not missing, "names without a reference entry:\n" + "\n".join(missing)
