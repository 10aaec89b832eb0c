"""
A stop always ends: real ``twistd -n ratchetpy``, ``App.run()`` and
``IoServer.factory(...).run()`` processes, SIGTERM'd with misbehaving
components (every layer name overwritten, ``on_close``/``on_error`` raising)
and peers that never answer the 1001 (a silent WebSocket, a half-sent HTTP
head), exit within ``shutdown_timeout`` plus the one-second abort grace; a
second SIGTERM drops every connection at once, without a traceback.
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.processes import free_port, python_path_env
from tests.support.timing import seconds

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHUTDOWN_TIMEOUT = 2.0
# shutdown_timeout + the 1 s abort grace, and slack for process exit and
# a loaded machine.
STOP_BOUND = SHUTDOWN_TIMEOUT + 1.0 + 3.0


def silent_websocket(port: int, path: str) -> socket.socket:
    """Completes a WebSocket handshake, then never reads or answers again."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def half_head(port: int) -> socket.socket:
    """Sends half a request head and stops (a half-open client)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /bad HTTP/1.1\r\nHost: 127")
    return sock


def misbehave(port: int, path: str = "/bad") -> list[Any]:
    """Peers for the stop: an answering client, a silent one, a half head."""
    client = connect(f"ws://127.0.0.1:{port}{path}", open_timeout=seconds(5))
    client.send("echo me")
    assert client.recv(timeout=seconds(5)) == "echo me"
    return [client, silent_websocket(port, path), half_head(port)]


def wait_exit(process: subprocess.Popen[bytes], bound: float) -> float:
    start = time.monotonic()
    process.wait(timeout=seconds(bound) + 10)
    return time.monotonic() - start


def test_twistd_with_misbehaving_components_and_silent_peers_stops_in_time(twistd: Any) -> None:
    server = twistd(
        "--route", "/bad=tests.support.stop_targets:Misbehaving",
        "--origin", "*",
        "--shutdown-timeout", str(SHUTDOWN_TIMEOUT),
    )
    server.wait_listening()
    peers = misbehave(server.port)
    server.process.send_signal(signal.SIGTERM)
    took = wait_exit(server.process, STOP_BOUND)
    log = server.text()
    assert took < seconds(STOP_BOUND), log
    assert peers[0].close_code == 1001  # the client that answers got 1001
    assert "did not finish closing within 2.0 s; dropping them" in log
    assert "on_close blew up" in log  # on_close ran for the connections, and raised
    assert "ReactorNotRunning" not in log
    for sock in peers[1:]:
        sock.close()


def test_a_second_sigterm_drops_everything_at_once(twistd: Any) -> None:
    server = twistd("--route", "/bad=tests.support.stop_targets:Misbehaving", "--origin", "*",
                 "--shutdown-timeout", "60")
    server.wait_listening()
    peers = misbehave(server.port)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    took = wait_exit(server.process, 5)
    log = server.text()
    assert took < seconds(5), log
    assert "again: dropping every connection now" in log
    # (the component's own on_error traceback is logged; Twisted's for a
    # second stop of a stopping reactor is not)
    assert "ReactorNotRunning" not in log and "Unhandled Error" not in log
    for sock in peers[1:]:
        sock.close()


def script(kind: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.stop_targets", kind, str(port)],
        cwd=ROOT, env=python_path_env(), stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + seconds(15)
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(log.read_text())


def test_app_run_with_misbehaving_components_stops_in_time(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "app.log"
    process = script("app", port, log)
    try:
        wait_listening(port, process, log)
        peers = misbehave(port)
        process.send_signal(signal.SIGTERM)
        took = wait_exit(process, STOP_BOUND)
        assert took < seconds(STOP_BOUND), log.read_text()
        assert peers[0].close_code == 1001
        assert "dropping them" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_on_the_hello_world_stack_sends_1001(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "io.log"
    process = script("io", port, log)
    try:
        wait_listening(port, process, log)
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=seconds(5)) as client:
            client.send("hi")
            assert client.recv(timeout=seconds(5)) == "hi"
            process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                client.recv(timeout=seconds(10))
            assert client.close_code == 1001
        assert wait_exit(process, 5) < seconds(5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
