"""The examples run as documented: `python examples/X.py [port]`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from websockets.sync.client import connect

from tests.support.paths import EXAMPLES
from tests.support.processes import free_port
from tests.support.timing import seconds


def start(example: str):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / example), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + seconds(15)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(process.communicate()[0]) from None
            time.sleep(0.05)


def stop(process) -> str:
    process.terminate()
    out, _ = process.communicate(timeout=seconds(10))
    return out


@pytest.fixture
def chat():
    process, port = start("chat.py")
    yield port
    stop(process)


def test_chat_example(chat):
    """examples/chat.py relays between websockets clients, not back to the sender."""
    url = f"ws://127.0.0.1:{chat}/"
    with connect(url) as a, connect(url) as b, connect(url) as c:
        time.sleep(0.2)
        a.send("hello")
        assert b.recv(timeout=seconds(5)) == "hello"
        assert c.recv(timeout=seconds(5)) == "hello"
        with pytest.raises(TimeoutError):
            a.recv(timeout=0.3)


def test_echo_example():
    """examples/echo.py echoes text and binary."""
    process, port = start("echo.py")
    try:
        with connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.send("hi")
            assert ws.recv(timeout=seconds(5)) == "hi"
            ws.send(b"\x01")
            assert ws.recv(timeout=seconds(5)) == b"\x01"
    finally:
        stop(process)


def test_telnet_chat_example():
    """examples/telnet_chat.py relays raw TCP between two sockets."""
    process, port = start("telnet_chat.py")
    try:
        a = socket.create_connection(("127.0.0.1", port), timeout=seconds(5))
        b = socket.create_connection(("127.0.0.1", port), timeout=seconds(5))
        time.sleep(0.3)
        a.sendall(b"hello\r\n")
        assert b.recv(100) == b"hello\r\n"
        a.close()
        b.close()
    finally:
        out = stop(process)
    assert "New connection!" in out
