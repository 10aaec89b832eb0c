"""Real processes: a free loopback port, the environment they run in, ``twistd -n ratchetpy``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.paths import ROOT
from tests.support.timing import seconds

TWISTD = Path(sys.executable).parent / "twistd"
"""The twistd of the environment running the tests."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the ``free_port`` fixture gives one per test)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_path_env(**extra: str) -> dict[str, str]:
    """``os.environ`` with the checkout first on PYTHONPATH, so a child process imports the code under test."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


class Twistd:
    """
    One ``twistd -n ratchetpy`` process on 127.0.0.1, its log in a file,
    started from the checkout with the checkout first on PYTHONPATH.
    The ``twistd`` fixture starts these and kills what is left after the test.
    """

    def __init__(self, tmp_path: Path, *args: str, port: int | None = None, listen: bool = True) -> None:
        self.port = port or free_port()
        self.log = tmp_path / f"twistd-{self.port}.log"
        command = [str(TWISTD), "-n", "--pidfile=", "ratchetpy"]
        if listen:
            command += ["--listen", f"tcp:{self.port}:interface=127.0.0.1"]
        self.out = open(self.log, "wb")
        self.process = subprocess.Popen(
            command + list(args), stdout=self.out, stderr=subprocess.PIPE, cwd=ROOT, env=python_path_env()
        )

    def wait_listening(self, port: int | None = None) -> None:
        deadline = time.monotonic() + seconds(15)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"twistd exited: {self.process.stderr.read().decode()}\n{self.text()}")
            try:
                socket.create_connection(("127.0.0.1", port or self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"twistd did not listen in time:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=seconds(15))
        finally:
            self.out.close()
            self.process.stderr.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.out.close()
        self.process.stderr.close()
