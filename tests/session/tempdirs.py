"""A trial TestCase whose temporary directories are outside the checkout."""

from __future__ import annotations

import shutil
import tempfile

from twisted.trial import unittest


class TempDirCase(unittest.TestCase):
    """``temp_dir()``: a fresh directory, removed after the test (trial's mktemp() is under the cwd)."""

    def temp_dir(self) -> str:
        path = tempfile.mkdtemp(prefix="ratchetpy-session-")
        self.addCleanup(shutil.rmtree, path, True)
        return path
