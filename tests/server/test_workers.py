"""--workers: one parent binds, N worker processes serve the same sockets."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.sync.client import connect

from ratchetpy.exceptions import ConfigurationError, ListenError
from ratchetpy.server.workers import (
    WorkerSupervisor,
    bind_listen_spec,
    inherit_arg,
    parse_inherit_arg,
)
from tests.support.processes import python_path_env

ROOT = Path(__file__).resolve().parents[2]
TARGET = [sys.executable, str(ROOT / "tests" / "support" / "worker_target.py")]


def test_bind_refuses_what_workers_cannot_share():
    with pytest.raises(ConfigurationError, match="tcp:, tcp6: and ssl:"):
        bind_listen_spec("unix:/tmp/x.sock")
    with pytest.raises(ConfigurationError, match="give a port"):
        bind_listen_spec("tcp:interface=127.0.0.1")


def test_bind_reports_a_port_in_use():
    taken = bind_listen_spec("tcp:0:interface=127.0.0.1")
    try:
        with pytest.raises(ListenError, match="cannot listen on"):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.listen()
            try:
                bind_listen_spec(f"tcp:{port}:interface=127.0.0.1")
            finally:
                s.close()
    finally:
        taken.sock.close()


def test_inherit_arg_round_trips():
    s = bind_listen_spec("tcp:0:interface=127.0.0.1")
    try:
        assert parse_inherit_arg(inherit_arg([s])) == [(s.fd, "tcp:0:interface=127.0.0.1")]
    finally:
        s.sock.close()
    with pytest.raises(ConfigurationError, match="FD=SPEC"):
        parse_inherit_arg("x=tcp:1")


@pytest.mark.slow
class WorkerTests(unittest.TestCase):
    timeout = 60

    def start(self, count=2, extra=(), grace=5.0):
        from twisted.internet import reactor

        self.supervisor = WorkerSupervisor(
            [*TARGET, *extra],
            ["tcp:0:interface=127.0.0.1"],
            count,
            reactor,
            grace=grace,
            restart_delay=0.2,
            env=python_path_env(),
        )
        self.supervisor.startService()
        self.addCleanup(self._stop)
        self.port = self.supervisor.sockets[0].port

    def _stop(self):
        if self.supervisor.running:
            return self.supervisor.stopService()
        return None

    def ask(self, attempts=100):
        """Pids (and worker indexes) answering ``attempts`` fresh connections."""
        seen = set()
        deadline = time.monotonic() + 30
        for _ in range(attempts):
            while time.monotonic() < deadline:
                try:
                    with connect(f"ws://127.0.0.1:{self.port}/pid", open_timeout=5) as ws:
                        ws.send("?")
                        seen.add(ws.recv(timeout=5))
                    break
                except (OSError, TimeoutError):
                    time.sleep(0.1)  # a worker still starting
            if len(seen) >= 2 and attempts > 10:
                break
        return seen

    @defer.inlineCallbacks
    def test_every_worker_serves_the_shared_port(self):
        self.start(2)
        seen = yield threads.deferToThread(self.ask)
        self.assertEqual(len({answer.split()[1] for answer in seen}), 2, seen)
        pids = {int(answer.split()[0]) for answer in seen}
        self.assertNotIn(os.getpid(), pids)

    @defer.inlineCallbacks
    def test_a_killed_worker_is_restarted(self):
        self.start(1)
        first = yield threads.deferToThread(self.ask, 1)
        (old_pid,) = {int(a.split()[0]) for a in first}
        os.kill(old_pid, signal.SIGKILL)
        for _ in range(200):
            worker = self.supervisor.workers.get(0)
            if worker is not None and worker.pid != old_pid:
                break
            yield threads.deferToThread(time.sleep, 0.05)
        later = yield threads.deferToThread(self.ask, 1)
        (new_pid,) = {int(a.split()[0]) for a in later}
        self.assertNotEqual(new_pid, old_pid)
        self.assertEqual(self.supervisor.restarts, 1)

    @defer.inlineCallbacks
    def test_stop_waits_for_every_worker(self):
        self.start(2)
        yield threads.deferToThread(self.ask, 1)
        pids = [w.pid for w in self.supervisor.workers.values()]
        yield self.supervisor.stopService()
        self.assertEqual(self.supervisor.workers, {})
        for pid in pids:
            with self.assertRaises(ProcessLookupError):
                os.kill(pid, 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()

    @defer.inlineCallbacks
    def test_a_worker_ignoring_sigterm_is_killed_after_the_grace(self):
        self.start(1, extra=["--ignore-term"], grace=1.0)
        yield threads.deferToThread(self.ask, 1)
        started = time.monotonic()
        yield self.supervisor.stopService()
        # It ignored SIGTERM, so only the SIGKILL after the grace ended it.
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        self.assertEqual(self.supervisor.workers, {})
