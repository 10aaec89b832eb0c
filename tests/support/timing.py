"""Real-time waits, stretched on slow machines."""

from __future__ import annotations

import os

TIMEOUT_FACTOR = float(os.environ.get("RATCHETPY_TESTS_TIMEOUT_FACTOR", "1"))


def seconds(n: float) -> float:
    """A real-time wait, stretched on slow machines by RATCHETPY_TESTS_TIMEOUT_FACTOR."""
    return n * TIMEOUT_FACTOR
