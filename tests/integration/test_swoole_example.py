"""
examples/swoole_server.py as a real process, run as the README says: with
``python`` and as a ``twistd ratchetpy`` target, driven by the ``websockets``
client and ``http.client``.
"""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import sys
import time

import pytest
from websockets.sync.client import connect

from tests.support.paths import EXAMPLES, ROOT
from tests.support.processes import free_port, python_path_env
from tests.support.timing import seconds

pytestmark = pytest.mark.slow


def wait_listening(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + seconds(15)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(process.communicate()[0]) from None
            time.sleep(0.05)


def converse(port: int) -> tuple[list[str], list[str]]:
    """Two clients: each is welcomed and gets "hello, <data> !" back; returns what each received."""
    received = []
    for text in ("world", "swoole"):
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            received.append([ws.recv(timeout=seconds(5))])
            ws.send(text)
            received[-1].append(ws.recv(timeout=seconds(5)))
    return received


def test_swoole_example_runs_with_python():
    """Welcome on open, "hello, <data> !" per message, a printed line on open, message and close."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "swoole_server.py"), str(port), "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=python_path_env(),
    )
    try:
        wait_listening(process, port)
        received = converse(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds(5))
        conn.request("GET", "/")
        plain = conn.getresponse().status  # no 'request' handler in the guide's server
        conn.close()
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=seconds(15))
    # A graceful stop runs every close handler before the process exits.
    assert process.returncode == 0, out
    assert received == [
        ["welcome to the websocket server!", "hello, world !"],
        ["welcome to the websocket server!", "hello, swoole !"],
    ]
    assert plain == 426
    opened = re.findall(r"connection open: (\S+) ", out)
    closed = re.findall(r"connection close: (\S+) ", out)
    assert len(opened) == 2 and len(set(opened)) == 2, out
    assert sorted(closed) == sorted(opened), out
    assert "received message: world " in out and "received message: swoole " in out


def test_swoole_example_runs_under_twistd(tmp_path):
    """twistd -n ratchetpy --route /=examples.swoole_server:ws_server, beside an exact /echo route."""
    from tests.support.processes import TWISTD

    port = free_port()
    log = tmp_path / "twistd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(TWISTD), "-n", "--pidfile=", "ratchetpy", "--listen", f"tcp:{port}:interface=127.0.0.1",
             "--route", "/=examples.swoole_server:ws_server", "--route", "/echo"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=python_path_env(),
        )
        try:
            wait_listening(process, port)
            received = converse(port)
            with connect(f"ws://127.0.0.1:{port}/echo") as echo:
                echo.send("echoed")
                echoed = echo.recv(timeout=seconds(5))
        finally:
            process.terminate()
            process.wait(timeout=seconds(15))
    text = log.read_text(errors="replace")
    assert received[0] == ["welcome to the websocket server!", "hello, world !"], text
    assert received[1] == ["welcome to the websocket server!", "hello, swoole !"], text
    assert echoed == "echoed"
    assert len(re.findall(r"connection open: \S+ ", text)) == 2, text
    assert len(re.findall(r"connection close: \S+ ", text)) == 2, text


def test_shutdown_ends_start(tmp_path):
    """server.shutdown() (here from a timer set in workerStart) stops the reactor start() runs; start() returns."""
    script = tmp_path / "stops.py"
    script.write_text(
        "import sys\n"
        "from ratchetpy.swoole import Server\n"
        "server = Server('127.0.0.1', int(sys.argv[1]))\n"
        "server.on('message', lambda ws, frame: None)\n"
        "server.on('workerStart', lambda ws, worker_id: ws.after(100, ws.shutdown))\n"
        "server.on('shutdown', lambda ws: print('shutdown handler', flush=True))\n"
        "print('start returned', server.start(), flush=True)\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), str(free_port())],
        capture_output=True,
        text=True,
        timeout=seconds(20),
        env=python_path_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "ratchetpy" not in line and "[" not in line]
    assert lines == ["shutdown handler", "start returned True"], result.stdout
