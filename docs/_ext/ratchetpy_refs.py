"""
Sphinx extension: make every cross-reference in the API reference resolve.

Type annotations and docstrings name things the way the module imports
them: ``Deferred``, ``defer.Deferred``, ``IReactorTime``, ``Request`` (often
imported under ``TYPE_CHECKING`` only, so autodoc cannot evaluate them).
Before references are resolved, this rewrites each Python-domain target
whose first part a module binds with an import (read from the module's
source with :mod:`ast`, ``TYPE_CHECKING`` blocks included) to the full
name, and a ``ratchetpy`` name to where the object is defined (its
reference entry). It also turns autodoc's ``<InterfaceClass a.b.IName>``
(a zope interface used as an annotation) into ``a.b.IName``.

It also keeps napoleon away from attribute and property docstrings: the
project writes them as prose (``The reactor this connection runs on: ...``),
which napoleon would read as ``type: description``.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
import sys
from functools import cache
from typing import Any

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx

_BUILTINS = frozenset(dir(builtins))
_INTERFACE = re.compile(r"<InterfaceClass ([\w.]+)>")


@cache
def _imports(modname: str) -> dict[str, str]:
    """The names ``modname`` binds by import, mapped to what they name."""
    try:
        module = importlib.import_module(modname)
        source = inspect.getsource(module)
    except (ImportError, OSError, TypeError):
        return {}
    package = modname if hasattr(module, "__path__") else modname.rpartition(".")[0]
    bound: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    bound[top] = top
    return bound


@cache
def _all_imports() -> dict[str, str]:
    """Names bound by import anywhere in ratchetpy that mean one thing only.

    An inherited method's annotations are read in the subclass's module,
    which may not import what the base class's module did.
    """
    import pkgutil

    import ratchetpy

    seen: dict[str, set[str]] = {}
    names = ["ratchetpy"] + [m.name for m in pkgutil.walk_packages(ratchetpy.__path__, "ratchetpy.")]
    for modname in names:
        if modname.rpartition(".")[2] == "__main__":
            continue  # importing it runs the program (``python -m ratchetpy.client``)
        for short, full in _imports(modname).items():
            seen.setdefault(short, set()).add(full)
    return {short: next(iter(fulls)) for short, fulls in seen.items() if len(fulls) == 1}


def _canonical(name: str) -> str:
    """Follow a ``ratchetpy`` re-export to the module defining the object."""
    if not name.startswith("ratchetpy."):
        return name
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        obj: Any = getattr(module, parts[i], None)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith(
            "ratchetpy"
        ):
            return ".".join([obj.__module__, obj.__qualname__, *parts[i + 1 :]])
        return name
    return name


def _rewrite(target: str, modname: str | None) -> str:
    match = _INTERFACE.fullmatch(target.strip())
    if match:
        target = match.group(1)
    target = target.strip()
    head, _, rest = target.partition(".")
    full = _imports(modname).get(head) if modname else None
    if full is None and head not in sys.stdlib_module_names:
        # a name the module does not import itself (an inherited method's
        # annotation); never for a standard module: ``ssl.SSLContext`` is the
        # stdlib's even though another module binds ``ssl`` to Twisted's
        full = _all_imports().get(head)
    if full is not None:
        target = f"{full}.{rest}" if rest else full
    return _canonical(target)


def _resolve_names(app: Sphinx, doctree: nodes.document) -> None:
    for node in doctree.findall(pending_xref):
        if node.get("refdomain") != "py":
            continue
        target = node.get("reftarget", "")
        optional = target.endswith(" | None")
        new = _rewrite(target.removesuffix(" | None"), node.get("py:module"))
        if new != target:
            node["reftarget"] = new
        if ("." in new or new in _BUILTINS) and "refspecific" in node:
            # a full name needs no "fuzzy" search over every object (the
            # domain searches whenever the attribute is present, whatever
            # its value; for annotations that was most of the build's time)
            del node["refspecific"]
        if optional:
            # autodoc made one "reference" of ``IListeningPort | None``
            # (a zope interface in a union): link the interface, say "| None"
            node.children = [nodes.literal("", new.rpartition(".")[2])]
            node.parent.insert(node.parent.index(node) + 1, nodes.Text(" | None"))


_AUTOMODULE = re.compile(r"^\.\. automodule:: ([\w.]+)[ \t]*$", re.MULTILINE)


def _data_directives(match: re.Match[str]) -> str:
    """``automodule`` plus one ``autodata`` per value (not class or function) in ``__all__``.

    autodoc's ``automodule`` documents a module-level value only when it has
    a doc-comment or docstring in that module's source, so constants without
    one, and values a module re-exports, would be silently left out of the
    reference: each gets an explicit ``autodata`` instead.
    """
    modname = match.group(1)
    module = importlib.import_module(modname)
    values = [
        name
        for name in getattr(module, "__all__", ())
        if not (inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name)))
    ]
    if not values:
        return match.group(0)
    lines = [f".. automodule:: {modname}", f"   :exclude-members: {', '.join(values)}", ""]
    lines += [f".. autodata:: {modname}.{name}\n" for name in values]
    return "\n".join(lines)


def _expand_automodules(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname.startswith("reference/"):
        source[0] = _AUTOMODULE.sub(_data_directives, source[0])


_STASH: dict[str, list[str]] = {}


def _keep_prose(app: Sphinx, what: str, name: str, obj: object, options: Any,
                lines: list[str]) -> None:
    if what in ("attribute", "data", "property"):
        type_doc = type(obj).__doc__
        if isinstance(type_doc, str) and "\n".join(lines).strip() == inspect.cleandoc(type_doc).strip():
            # a constant without a docstring of its own shows its value only,
            # not the docstring of int or str
            lines[:] = []
        _STASH[name] = list(lines)


def _restore_prose(app: Sphinx, what: str, name: str, obj: object, options: Any,
                   lines: list[str]) -> None:
    if name in _STASH:
        lines[:] = _STASH.pop(name)


def _drop_object_base(app: Sphinx, name: str, obj: object, options: Any,
                      bases: list[type]) -> None:
    # "Bases: object" says nothing; other bases stay listed
    if object in bases:
        bases.remove(object)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-bases", _drop_object_base)
    app.connect("source-read", _expand_automodules)
    app.connect("doctree-read", _resolve_names)
    # napoleon processes docstrings at priority 500: save before, restore after
    app.connect("autodoc-process-docstring", _keep_prose, priority=400)
    app.connect("autodoc-process-docstring", _restore_prose, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
