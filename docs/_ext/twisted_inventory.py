"""
Write an intersphinx inventory for the installed Twisted, offline.

Twisted's API reference is built by pydoctor, which publishes no Sphinx
``objects.inv``; CI may not fetch one from the network anyway. This module
walks the installed Twisted, imports each public module and writes every
module, class, interface, function, method and attribute it finds with its
pydoctor URL under ``https://docs.twisted.org/en/stable/api/``:

- a module or class has a page of its own, ``<fully.qualified.name>.html``;
- a function, method or attribute is an anchor on its parent's page,
  ``<parent>.html#<name>``.

The file uses Sphinx's inventory format version 2 (a four-line header, then
zlib-compressed ``name domain:role priority uri display`` lines), which
``sphinx.ext.intersphinx`` reads like any downloaded inventory.

Run it alone to check the result: ``python docs/_ext/twisted_inventory.py OUT``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

BASE_URL = "https://docs.twisted.org/en/stable/api/"

# Importing these has side effects (installs the global reactor) or needs
# optional platforms; none of them is something ratchetpy's docs link to.
SKIP_MODULES = frozenset({"twisted.internet.reactor"})
SKIP_PARTS = frozenset({"test", "tests", "plugins", "__main__"})


def _public_modules() -> Iterator[str]:
    import twisted

    yield "twisted"
    for info in pkgutil.walk_packages(twisted.__path__, "twisted.", onerror=lambda name: None):
        parts = info.name.split(".")
        if info.name in SKIP_MODULES or any(p.startswith("_") or p in SKIP_PARTS for p in parts):
            continue
        yield info.name


def _is_interface(obj: object) -> bool:
    from zope.interface.interface import InterfaceClass

    return isinstance(obj, InterfaceClass)


def _entries(modname: str) -> Iterator[tuple[str, str, str]]:
    """(name, role, uri) for a module and what it defines."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(modname)
    except Exception:  # noqa: BLE001 - a module that needs an absent optional dependency
        return
    yield modname, "py:module", f"{modname}.html"
    # pydoctor documents a name a module lists in __all__ from a private
    # module (twisted.internet.ssl.CertificateOptions) as that module's own
    exported = set(getattr(module, "__all__", ()))
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_"):
            continue
        full = f"{modname}.{name}"
        home = getattr(obj, "__module__", None)
        if name in exported and isinstance(home, str) and any(
            p.startswith("_") for p in home.split(".")
        ):
            home = modname
        if _is_interface(obj) and home == modname:
            yield full, "py:class", f"{full}.html"
            for member in obj.names():
                if not member.startswith("_"):
                    yield f"{full}.{member}", "py:method", f"{full}.html#{member}"
        elif inspect.isclass(obj) and home == modname:
            role = "py:exception" if issubclass(obj, BaseException) else "py:class"
            yield full, role, f"{full}.html"
            for member, value in sorted(vars(obj).items()):
                if member.startswith("_"):
                    continue
                kind = "py:method" if callable(value) or isinstance(
                    value, (staticmethod, classmethod)) else "py:attribute"
                yield f"{full}.{member}", kind, f"{full}.html#{member}"
        elif inspect.isfunction(obj) and home == modname:
            yield full, "py:function", f"{modname}.html#{name}"


def write_inventory(path: Path) -> int:
    """Write the inventory of the installed Twisted to ``path``.

    Returns:
        How many objects it names.
    """
    import twisted

    lines = []
    seen: set[tuple[str, str]] = set()
    for modname in _public_modules():
        for name, role, uri in _entries(modname):
            if (name, role) in seen:
                continue
            seen.add((name, role))
            lines.append(f"{name} {role} 1 {uri} -\n")
    header = (
        "# Sphinx inventory version 2\n"
        "# Project: Twisted\n"
        f"# Version: {twisted.__version__}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header.encode() + zlib.compress("".join(lines).encode()))
    return len(lines)


if __name__ == "__main__":
    count = write_inventory(Path(sys.argv[1]))
    print(f"{count} Twisted objects written to {sys.argv[1]}")
