"""
``ReconnectingClient`` against a server process that is killed and started
again on the same port: a plain Autobahn server and ``twistd ratchetpy``.
Messages sent while the server is down are queued and delivered, in
order, after the reconnect; ``on_open`` runs again.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, threads
from twisted.trial import unittest

from ratchetpy.client import ReconnectingClient
from tests.client.components import Recorder
from tests.support.paths import ROOT
from tests.support.processes import Twistd, free_port, python_path_env
from tests.support.timing import seconds


class AutobahnProcess:
    """``python -m tests.support.autobahn_server PORT`` (Autobahn only)."""

    def __init__(self, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.autobahn_server", str(port)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=python_path_env(),
        )

    def wait_listening(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == b"listening", line

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class ServerRestart(unittest.TestCase):
    timeout = 120

    def run_scenario(self, start: Callable[[int], Any], path: str) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._scenario(start, path))

    async def _scenario(self, start: Callable[[int], Any], path: str) -> None:
        from twisted.internet import reactor

        port = free_port()
        server = start(port)
        self.addCleanup(lambda: server.kill())
        await threads.deferToThread(server.wait_listening)
        recorder = Recorder()
        client = ReconnectingClient(
            f"ws://127.0.0.1:{port}{path}",
            recorder,
            reactor=reactor,
            backoff_initial=0.1,
            backoff_max=0.4,
            max_queued=10,
        )
        client.startService()
        self.addCleanup(client.stopService)
        await client.when_connected()
        echoed = recorder.wait("message", reactor, seconds(20))
        client.send("before")
        self.assertEqual(await echoed, "before")

        closed = recorder.wait("close", reactor, seconds(20))
        await threads.deferToThread(server.kill)
        await closed
        self.assertIsNone(client.connection)
        client.send("queued-1")
        client.send(b"queued-2")
        self.assertEqual(list(client.queue), ["queued-1", b"queued-2"])

        reopened = recorder.wait("open", reactor, seconds(30))
        server = start(port)
        await threads.deferToThread(server.wait_listening)
        await reopened
        while len(recorder.messages) < 3:
            await recorder.wait("message", reactor, seconds(20))
        self.assertEqual(recorder.messages, ["before", "queued-1", b"queued-2"])
        self.assertEqual(recorder.opens, 2)
        self.assertEqual(client.connections, 2)
        self.assertEqual(list(client.queue), [])
        await client.stopService()
        server.kill()

    @pytest.mark.slow
    def test_autobahn_server_restart(self):
        return self.run_scenario(AutobahnProcess, "/")

    @pytest.mark.slow
    def test_twistd_ratchetpy_restart(self):
        directory = Path(self.mktemp())
        directory.mkdir()
        return self.run_scenario(
            lambda port: Twistd(directory, "--route", "/echo", port=port), "/echo"
        )
