"""
One server process of a multi-process test (a node of a hub spanning
processes): started from a script of tests/support with the checkout on
PYTHONPATH, its port read from the file the script writes once listening,
its output kept in a log file for the assertions.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.processes import python_path_env
from tests.support.timing import seconds

ROOT = Path(__file__).resolve().parents[2]


class NodeProcess:
    """``python SCRIPT *args PORT_FILE``; ``port`` once it listens, ``text()`` its log."""

    def __init__(
        self,
        script: Path,
        args: Sequence[str],
        tmp: Path,
        name: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port_file = tmp / f"{name}.port"
        self.final_text = ""
        self.log = open(tmp / f"{name}.log", "w+b")
        self.process = subprocess.Popen(
            [sys.executable, str(script), *args, str(self.port_file)],
            cwd=ROOT,
            env={**python_path_env(), **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + seconds(20)
        while not self.port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"node {name} did not start:\n{self.text()}")
            time.sleep(0.05)
        self.port = int(self.port_file.read_text())

    def text(self) -> str:
        """Everything the process wrote so far (kept after ``stop``)."""
        if self.log.closed:
            return self.final_text
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=seconds(timeout))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.log.closed:
            self.final_text = self.text()
            self.log.close()
        return self.process.returncode
