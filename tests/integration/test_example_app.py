"""examples/app.py, Ratchet's README App example, run as a script."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.paths import EXAMPLES
from tests.support.processes import python_path_env
from tests.support.timing import seconds

pytestmark = pytest.mark.slow



def test_app_example_chats_and_stops_with_1001(tmp_path, free_port):
    """App('localhost', port).route('/chat', Chat(), ['*']) chats; SIGTERM closes with 1001."""
    port = free_port
    log = open(tmp_path / "app.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "app.py", str(port)], cwd=EXAMPLES, stdout=log, stderr=subprocess.STDOUT, env=python_path_env()
    )
    try:
        deadline = time.monotonic() + seconds(15)
        while True:
            try:
                a = connect(f"ws://localhost:{port}/chat", open_timeout=seconds(5))
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "app.log").read_text()
                time.sleep(0.05)
        with a, connect(f"ws://localhost:{port}/chat") as b:
            a.send("Hello World!")
            assert b.recv(timeout=seconds(5)) == "Hello World!"
            process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                a.recv(timeout=seconds(10))
            assert a.close_code == 1001
        assert process.wait(timeout=seconds(15)) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
