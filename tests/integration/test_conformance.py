"""The Autobahn TestSuite (RFC 6455 conformance) against ratchetpy's echo, fast path on."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conformance import ats
from tests.support.ci import require_tool


def _python27() -> bool:
    """Whether setup_ats.sh would find a Python 2.7 (only to say what is missing)."""
    candidates = [os.environ.get("RATCHETPY_PYTHON27", ""), "python2.7"]
    candidates.append(os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python"))
    for candidate in filter(None, candidates):
        try:
            subprocess.run(
                [candidate, "-c", "import sys; assert sys.version_info[:2] == (2, 7)"],
                check=True,
                capture_output=True,
            )
            return True
        except (OSError, subprocess.CalledProcessError):
            continue
    return False


@pytest.mark.slow
def test_autobahn_testsuite_core_cases():
    """Every case but 12.*/13.* (compression) is OK or INFORMATIONAL, behaviour and close."""
    if ats.wstest_path() is None:
        missing = "the Autobahn TestSuite (wstest) is not installed"
        if not _python27():
            missing += " and there is no Python 2.7 interpreter for it"
        require_tool(
            False, missing,
            "bash tests/conformance/setup_ats.sh, with a Python 2.7 (RATCHETPY_PYTHON27=/path/to/python2.7); "
            ".ci/run runs it",
        )
    counts = ats.run()
    assert counts["_cases"] >= 300, counts
    assert ats.run.last_bad == [], ats.run.last_bad
    assert set(counts) - {"_cases", "_bad"} <= {"OK", "INFORMATIONAL"}, counts
