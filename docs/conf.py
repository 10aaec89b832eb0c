"""
Sphinx configuration of the ratchetpy documentation site.

Why Sphinx (and not MkDocs): the docstrings are Google style with
reStructuredText inside (``literals``, tables, ``.. code-block::``), which
``sphinx.ext.autodoc`` + ``napoleon`` render as they are; intersphinx links
our signatures to Python's and Twisted's references; ``myst-parser`` lets
the guides be plain Markdown, so pages written by anyone (``docs/*.md``)
drop in without learning reST. The build is strict in CI
(``sphinx-build -W --keep-going -n``): a broken reference, a page missing
from the toctree or a docstring that does not render fails it.

Intersphinx works offline (CI reaches only PyPI and Debian):

- Python's inventory comes from the Debian package ``python3.X-doc``
  (``/usr/share/doc/python3.X/html/objects.inv``; ``.ci/run`` installs it);
- Twisted publishes no Sphinx inventory (its API docs are pydoctor's), so
  ``_ext/twisted_inventory.py`` writes one at build time from the installed
  Twisted, pointing at https://docs.twisted.org/en/stable/api/.

Neither is ever skipped: a missing inventory stops the build with the
command that installs it.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "_ext"))

import twisted_inventory  # noqa: E402

import ratchetpy  # noqa: E402

project = "ratchetpy"
author = "the ratchetpy authors"
copyright = "ratchetpy authors, MIT licence"
release = ratchetpy.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "ratchetpy_refs",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "_ext"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# --- autodoc: members listed in each module's __all__, documented or not
# (tests/test_docs_reference.py checks every such name reaches the
# inventory), in source order.
autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autoclass_content = "both"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# an "Attributes:" section becomes fields of the class, not a second
# description of attributes autodoc already documents
napoleon_use_ivar = True

# --- intersphinx, offline (see the module docstring).
_PY = f"{sys.version_info.major}.{sys.version_info.minor}"
_PY_INV = Path(f"/usr/share/doc/python{_PY}/html/objects.inv")
if not _PY_INV.is_file():
    raise RuntimeError(
        f"{_PY_INV} is missing: install Python's documentation "
        f"(apt-get install python{_PY}-doc) so intersphinx can link to Python offline"
    )
_TWISTED_INV = HERE / "_build" / "inventories" / "twisted.inv"
twisted_inventory.write_inventory(_TWISTED_INV)
intersphinx_mapping = {
    "python": (f"https://docs.python.org/{_PY}/", str(_PY_INV)),
    "twisted": (twisted_inventory.BASE_URL, str(_TWISTED_INV)),
}
intersphinx_timeout = 5

nitpicky = True
nitpick_ignore = [
    # Python 3.11's objects.inv lists re.Pattern's methods but not the class.
    ("py:class", "re.Pattern"),
    # a module-level type alias kept out of ratchetpy.hub.recovery's __all__
    ("py:class", "Reader"),
    # the same for ratchetpy.session.session's Loader (Session's loader argument)
    ("py:class", "Loader"),
]
nitpick_ignore_regex = [
    # Private modules and names are not in the reference (only public
    # modules' __all__ is); a base class or annotation naming one is shown
    # as plain text.
    (r"py:.*", r"ratchetpy\.(.+\.)?_\w+(\..*)?"),
    (r"py:.*", r"_\w+"),
    # Autobahn's and prometheus_client's references cannot be reached
    # offline, and neither ships an objects.inv in its package; their names
    # are shown as plain text.
    (r"py:.*", r"autobahn\..*"),
    (r"py:.*", r"prometheus_client\..*"),
    # hiredis has no API reference at all.
    (r"py:.*", r"hiredis\..*"),
]

html_theme = "furo"
html_title = f"ratchetpy {release}"
html_static_path = ["_static"]
html_css_files = ["side-by-side.css"]


# --- one entry per object: a name a module re-exports from another module
# (``ratchetpy.App`` is ``ratchetpy.app.App``) is documented where it is
# defined; tests/test_docs_reference.py follows re-exports to that entry.
_current_module: list[str] = [""]


def _remember_module(app, what, name, obj, options, lines):  # type: ignore[no-untyped-def]
    if what == "module":
        _current_module[0] = name


def _skip_reexports(app, what, name, obj, skip, options):  # type: ignore[no-untyped-def]
    if what != "module" or not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return None
    if getattr(obj, "__module__", _current_module[0]) != _current_module[0]:
        return True
    return None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-process-docstring", _remember_module)
    app.connect("autodoc-skip-member", _skip_reexports)
