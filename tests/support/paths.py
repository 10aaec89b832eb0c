"""Where things are, independent of how deep a test module sits under tests/."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The project checkout (the directory holding ``ratchetpy/`` and ``tests/``)."""

EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data"
