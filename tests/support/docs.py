"""
What the documentation site must contain, and what a build produced.

Shared by ``tests/test_docs_reference.py`` and ``tests/test_docs_examples.py``:
the public modules and the reference entry each name of their ``__all__``
needs, the ``automodule`` directives of ``docs/reference/``, a reader for
Sphinx's ``objects.inv`` and the fenced code blocks of the Markdown pages.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import zlib
from pathlib import Path

import ratchetpy

from .paths import ROOT

DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference"

_AUTOMODULE = re.compile(r"^\.\. automodule:: ([\w.]+)\s*$", re.MULTILINE)
# an opening fence, possibly inside list items (``* - ```php``)
_OPEN = re.compile(r"^((?:[*-] +| +)*)(`{3,}|~{3,})([^`]*)$")


def is_public(modname: str) -> bool:
    """A module is public when no part of its dotted name starts with ``_``."""
    return not any(part.startswith("_") for part in modname.split("."))


def public_modules() -> list[str]:
    """Every public module of the installed ratchetpy, imported."""
    names = ["ratchetpy"] + [
        info.name for info in pkgutil.walk_packages(ratchetpy.__path__, "ratchetpy.")
    ]
    public = [name for name in names if is_public(name)]
    for name in public:
        importlib.import_module(name)
    return public


def reference_entry(modname: str, name: str) -> str:
    """
    The inventory name that documents ``modname.name``.

    A class or function is documented where it is defined (the reference
    documents each object once; a package's re-export points there). Other
    values (constants, type aliases) have no defining module to follow and
    are documented under every module that exports them.
    """
    obj = getattr(importlib.import_module(modname), name)
    if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith(
        "ratchetpy"
    ):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{modname}.{name}"


def expected_entries() -> dict[str, str]:
    """``{"module.name": reference entry}`` for every name of every public ``__all__``."""
    expected: dict[str, str] = {}
    for modname in public_modules():
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", ()):
            expected[f"{modname}.{name}"] = reference_entry(modname, name)
    return expected


def automodules(directory: Path = REFERENCE) -> dict[str, list[str]]:
    """``{module: [pages]}`` for every ``.. automodule::`` under ``directory``."""
    found: dict[str, list[str]] = {}
    for page in sorted(directory.glob("*.md")):
        for modname in _AUTOMODULE.findall(page.read_text(encoding="utf-8")):
            found.setdefault(modname, []).append(page.name)
    return found


def inventory_entries(path: Path) -> dict[tuple[str, str], str]:
    """``{(name, "py:role"): uri}`` for the Python-domain entries of a Sphinx
    ``objects.inv`` (format version 2)."""
    data = path.read_bytes()
    lines = data.split(b"\n", 4)
    if lines[0].strip() != b"# Sphinx inventory version 2":
        raise ValueError(f"{path} is not a Sphinx inventory version 2")
    entries = {}
    for line in zlib.decompress(lines[4]).decode("utf-8").splitlines():
        match = re.match(r"(.+?)\s+(py:\w+)\s+-?\d+\s+(\S+)", line)
        if match:
            entries[match.group(1), match.group(2)] = match.group(3)
    return entries


def read_inventory(path: Path) -> set[str]:
    """The Python-domain names in a Sphinx ``objects.inv`` (format version 2)."""
    return {name for name, _role in inventory_entries(path)}


def missing_entries(expected: dict[str, str], documented: set[str]) -> list[str]:
    """The exported names whose reference entry is not in ``documented``, sorted."""
    return sorted(
        f"{exported} (expected entry {entry})"
        for exported, entry in expected.items()
        if entry not in documented
    )


def code_blocks(page: Path) -> list[tuple[int, str, str]]:
    """``(line, info string, code)`` of every fenced code block of a Markdown page."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = len(match.group(1)), match.group(2), match.group(3).strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        blocks.append((i + 1, info, "\n".join(body)))
        i = j + 1
    return blocks
