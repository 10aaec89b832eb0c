"""
``twistd ratchetpy --workers 2 --redis URL`` as real processes: both workers
serve the one port, the built-in chat spans them, a killed worker is
replaced, SIGTERM stops everything, a killed parent takes its workers with
it, and daemon mode (pidfile, log file) works. Clients are the
``websockets`` library; ``redis-cli`` looks at Redis; worker pids come from
``/proc`` (the parent's children).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.paths import ROOT
from tests.support.processes import TWISTD, free_port, python_path_env
from tests.support.redis import shared_redis, unique
from tests.support.timing import seconds

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find the workers"),
]


def children(pid: int) -> set[int]:
    """The live child processes of ``pid``."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split() if alive(int(p))}


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def eventually(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds(timeout)
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def node_of(welcome: str | bytes) -> str:
    return str(json.loads(welcome)["id"]).split(".")[0]


class Cluster:
    """One ``--workers 2`` server and what the test saw of it."""

    def __init__(self, twistd: Any, *args: str) -> None:
        redis = shared_redis()
        self.prefix = unique("workers") + ":"
        self.cli = redis.cli
        separator = "&" if "?" in redis.url else "?"
        self.url = f"{redis.url}{separator}prefix={self.prefix}"
        self.server = twistd(
            "--route", "/chat", "--workers", "2", "--redis", self.url, "--shutdown-timeout", "3", *args
        )
        self.seen: set[int] = set()
        self.server.wait_listening()
        assert eventually(lambda: len(self.workers()) == 2), self.server.text()

    @property
    def port(self) -> int:
        return int(self.server.port)

    def workers(self) -> set[int]:
        found = children(self.server.process.pid)
        self.seen |= found
        return found

    def chat(self, stack: ExitStack, want: int = 2, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Open chat clients until ``want`` workers (nodes not in ``exclude``) answered; one client each."""
        found: dict[str, Any] = {}
        deadline = time.monotonic() + seconds(60)
        while len(found) < want and time.monotonic() < deadline:
            with ExitStack() as attempt:
                try:
                    ws = attempt.enter_context(
                        connect(f"ws://127.0.0.1:{self.port}/chat", proxy=None, open_timeout=seconds(5))
                    )
                    node = node_of(ws.recv(timeout=seconds(5)))
                except (OSError, TimeoutError, ConnectionClosed):
                    time.sleep(0.1)  # a worker still starting
                    continue
                if node not in found and node not in exclude:
                    found[node] = ws
                    stack.push(attempt.pop_all())  # kept open until the test's stack closes
        assert len(found) == want, f"only {list(found)} answered:\n{self.server.text()}"
        return found

    def subscribed(self, count: int) -> bool:
        return self.cli.numsub(f"{self.prefix}ch:{{chat:chat}}") == count


@pytest.fixture
def cluster(twistd: Any) -> Iterator[Any]:
    made: list[Cluster] = []

    def start(*args: str) -> Cluster:
        made.append(Cluster(twistd, *args))
        return made[-1]

    yield start
    for c in made:
        c.server.kill()
        for pid in c.seen:  # workers of a parent killed above or in the test
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_two_workers_serve_one_port_share_a_chat_and_stop_on_sigterm(cluster):
    c = cluster()
    pids = c.workers()
    with ExitStack() as stack:
        (node_a, a), (node_b, b) = c.chat(stack).items()
        assert node_a != node_b
        assert eventually(lambda: c.subscribed(2)), "both workers subscribe to the room"
        a.send(f"hello from {node_a}")
        assert b.recv(timeout=seconds(5)) == f"hello from {node_a}"
        b.send(b"\x00binary")
        assert a.recv(timeout=seconds(5)) == b"\x00binary"

        started = time.monotonic()
        c.server.process.send_signal(signal.SIGTERM)
        for ws in (a, b):
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=seconds(15))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        c.server.process.wait(timeout=seconds(30))
    # Bounded by --shutdown-timeout 3 + the parent's margin, with room for a slow machine.
    assert time.monotonic() - started < seconds(20)
    assert not any(alive(pid) for pid in pids)
    assert port_closed(c.port)
    log = c.server.text()
    for pid in pids:
        assert f"(pid {pid}) stopped (" in log, log
    assert "Traceback" not in log, log


def test_a_killed_worker_is_replaced_and_serves(cluster):
    c = cluster()
    with ExitStack() as stack:
        first = c.chat(stack)
        victim = min(c.workers())
        os.kill(victim, signal.SIGKILL)
        assert eventually(lambda: len(c.workers()) == 2 and victim not in c.workers()), c.server.text()
        # The new worker is a new node, and it serves the shared port.
        (fresh, client) = next(iter(c.chat(stack, want=1, exclude=frozenset(first)).items()))
        assert eventually(lambda: c.subscribed(2))
        survivors = [ws for ws in first.values() if _still_open(ws)]
        assert len(survivors) == 1  # the killed worker's client is gone
        client.send(f"hello from {fresh}")
        assert survivors[0].recv(timeout=seconds(5)) == f"hello from {fresh}"
    assert f"(pid {victim}) died after" in c.server.text()
    assert "(ended by SIGKILL); restarting in" in c.server.text()


def _still_open(ws: Any) -> bool:
    try:
        ws.ping().wait(seconds(5))
    except (ConnectionClosed, TimeoutError):
        return False
    return True


def test_workers_stop_gracefully_when_the_parent_is_killed(cluster):
    c = cluster()
    pids = c.workers()
    with ExitStack() as stack:
        clients = c.chat(stack)
        c.server.process.kill()
        c.server.process.wait()
        # Each checks its parent every second and then stops gracefully.
        for ws in clients.values():
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=seconds(15))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert eventually(lambda: not any(alive(pid) for pid in pids)), c.server.text()
    assert port_closed(c.port)
    assert c.server.text().count("parent (pid") == 2


def test_daemon_mode_pidfile_for_the_parent_and_worker_logs_in_its_log(tmp_path):
    redis = shared_redis()
    prefix = unique("daemon") + ":"
    separator = "&" if "?" in redis.url else "?"
    port = free_port()
    pidfile, logfile = tmp_path / "twistd.pid", tmp_path / "twistd.log"
    env = python_path_env(RATCHETPY_REDIS_URL=f"{redis.url}{separator}prefix={prefix}")
    launched = subprocess.run(
        [str(TWISTD), f"--pidfile={pidfile}", f"--logfile={logfile}", "ratchetpy", "--route", "/chat",
         "--workers", "2", "--listen", f"tcp:{port}:interface=127.0.0.1", "--shutdown-timeout", "3"],
        cwd=ROOT, env=env, capture_output=True, timeout=seconds(30),
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr.decode()
    parent = int(pidfile.read_text())
    workers: set[int] = set()
    try:
        assert eventually(lambda: len(children(parent)) == 2), logfile.read_text()
        workers = children(parent)
        with ExitStack() as stack:
            welcomes = set()
            deadline = time.monotonic() + seconds(60)
            while len(welcomes) < 2 and time.monotonic() < deadline:
                try:
                    ws = stack.enter_context(connect(f"ws://127.0.0.1:{port}/chat", proxy=None))
                    welcomes.add(node_of(ws.recv(timeout=seconds(5))))
                except (OSError, TimeoutError):
                    time.sleep(0.1)
            assert len(welcomes) == 2
        os.kill(parent, signal.SIGTERM)
        assert eventually(lambda: not alive(parent) and not pidfile.exists())
        assert not any(alive(pid) for pid in workers)
    finally:
        for pid in (parent, *workers):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    log = logfile.read_text()
    # The workers' events, through the parent, marked with the worker.
    assert "[ratchetpy.app#info worker 0] Hub spans processes through Redis" in log, log
    assert "[ratchetpy.app#info worker 1] Hub spans processes through Redis" in log, log
    assert "WebSocket #1 from 127.0.0.1 opened /chat" in log
    assert "Server Shut Down." in log and "Traceback" not in log
