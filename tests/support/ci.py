"""
The one rule for tests that need something CI provides (a compiler, Chromium,
the Autobahn TestSuite, ``ss``): where it is missing they skip, saying how to
get it, except in CI, where they fail, so nothing is skipped silently there.

CI means the ``CI`` environment variable is set and is not ``false`` (nor
``0`` or empty): ``.ci/run`` runs with ``CI=true``, as most CI services do.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """True when ``CI`` is set and not false (``""``, ``"false"`` and ``"0"`` are false, any case)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "false", "0")


def require_tool(available: bool, missing: str, enable: str) -> None:
    """
    Go on if ``available``; otherwise fail in CI and skip elsewhere.

    Args:
        missing: what is missing, e.g. ``"chromium is not installed"``.
        enable: how to provide it, e.g. ``"apt-get install chromium"``.
    """
    __tracebackhide__ = True  # report the calling test's line, not this one
    if available:
        return
    if in_ci():
        pytest.fail(f"{missing}; CI must provide it ({enable})", pytrace=False)
    pytest.skip(f"{missing}; to run this test: {enable} (with CI set this fails instead of skipping)")
