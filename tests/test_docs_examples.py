"""
The examples and facts in the documentation (``docs/*.md``, ``README.md``) hold.

How the code on the pages is tested:

- complete programs are not written into the pages: they live in
  ``examples/`` and the pages include them (``{literalinclude}``); each
  included file must be one a test runs (its name appears in a test);
- every other Python block must compile (fragments need not run; top-level
  ``yield``/``await`` are compiled inside a function, as in the code they
  come from);
- ``pycon`` blocks (``>>>``) are doctests and run;
- the ini examples use only keys ``twistd ratchetpy --config`` reads, and the
  flag table names exactly the flags ``twistd ratchetpy`` has.
"""

from __future__ import annotations

import configparser
import doctest
import re
import textwrap
from pathlib import Path

import pytest

from ratchetpy.tap import CONFIG_KEYS, Options
from tests.support.docs import DOCS, code_blocks
from tests.support.paths import EXAMPLES, ROOT

# docs/README.md is about the site, not a page of it (conf.py excludes it)
PAGES = sorted(page for page in DOCS.glob("*.md") if page.name != "README.md") + [
    ROOT / "README.md"
]
_HIDDEN_FLAGS = {"inherit", "worker-index"}  # how the --workers parent starts its workers


def _blocks(*languages: str) -> list[tuple[Path, int, str]]:
    found = []
    for page in PAGES:
        for line, info, code in code_blocks(page):
            language = info.split()[0] if info else ""
            if language in languages:
                found.append((page, line, code))
    return found


def _name(block: tuple[Path, int, object]) -> str:
    return f"{block[0].name}:{block[1]}"


def compile_example(code: str, where: str) -> None:
    """Compile a code block, inside a function when it awaits or yields at top level."""
    try:
        compile(code, where, "exec")
    except SyntaxError as exc:
        if "outside function" not in str(exc) and "outside async function" not in str(exc):
            raise
        wrapper = "async def _example():\n" if "await" in code else "def _example():\n"
        compile(wrapper + textwrap.indent(code, "    "), where, "exec")


PYTHON = _blocks("python", "py")


def test_pages_have_python_examples():
    assert len(PYTHON) > 10


@pytest.mark.parametrize("block", PYTHON, ids=_name)
def test_python_block_compiles(block):
    page, line, code = block
    compile_example(code, f"{page.name}:{line}")


def test_compile_example_reports_a_broken_block():
    """The check above can fail: a block with a syntax error is reported."""
    with pytest.raises(SyntaxError):
        compile_example("def on_open(self, conn)\n    pass\n", "x.md:1")
    compile_example("delivered = yield hub.push(conn_id, 'hi')\n", "x.md:1")
    compile_example("result = await hub.history('room')\n", "x.md:1")


def _included() -> list[tuple[Path, int, Path]]:
    found = []
    for page in PAGES:
        for line, info, _code in code_blocks(page):
            if info.startswith("{literalinclude}"):
                found.append((page, line, (page.parent / info.split(None, 1)[1]).resolve()))
    return found


INCLUDED = _included()


def test_pages_include_examples():
    assert {path.name for _page, _line, path in INCLUDED} >= {
        "chat.py", "app.py", "pubsub.py", "push_server.py", "swoole_server.py"
    }


@pytest.mark.parametrize("include", INCLUDED, ids=_name)
def test_included_program_is_a_tested_example(include):
    """A program shown in the docs is a file in examples/ that a test runs."""
    page, line, path = include
    assert path.is_file(), f"{page.name}:{line} includes {path}, which does not exist"
    assert path.parent == EXAMPLES, f"{page.name}:{line} includes {path}, not a file of examples/"
    testers = [
        test
        for test in (ROOT / "tests").rglob("test_*.py")
        if test.name != "test_docs_examples.py" and path.name in test.read_text(encoding="utf-8")
    ]
    assert testers, f"no test runs examples/{path.name} (shown at {page.name}:{line})"


DOCTEST_PAGES = [page for page in PAGES if "```pycon" in page.read_text(encoding="utf-8")]


def test_some_pages_have_doctests():
    assert DOCTEST_PAGES


@pytest.mark.parametrize("page", DOCTEST_PAGES, ids=lambda page: page.name)
def test_doctests(page):
    result = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {page.name} (output above)"


INI = [block for block in _blocks("ini") if "[ratchetpy]" in block[2]]


@pytest.mark.parametrize("block", INI, ids=_name)
def test_ini_examples_use_known_keys(block):
    page, line, code = block
    parser = configparser.ConfigParser()
    parser.read_string(code)
    unknown = set(parser["ratchetpy"]) - set(CONFIG_KEYS)
    assert not unknown, f"{page.name}:{line}: keys twistd ratchetpy does not read: {unknown}"


def test_flag_table_matches_the_options():
    """docs/twistd.md's table lists every flag of ``twistd ratchetpy``, and no other."""
    table = (DOCS / "twistd.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `--([a-z-]+)", table, re.MULTILINE))
    documented |= set(re.findall(r"^\| `--[a-z-]+[^|]*`, `--([a-z-]+)", table, re.MULTILINE))
    actual = {opt.rstrip("=") for opt in Options().longOpt} - {"help", "version"} - _HIDDEN_FLAGS
    assert not actual - documented, f"flags missing from docs/twistd.md: {sorted(actual - documented)}"
    assert not documented - actual, f"docs/twistd.md lists flags that do not exist: {sorted(documented - actual)}"
