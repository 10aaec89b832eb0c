"""
``ratchetpy.client.phpws.connect_php`` against phpws routes of an App run
by the test's reactor (the blocking clients in a thread), with a
``websockets`` client as the browser.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.sync.client import connect as ws_connect

from ratchetpy.app import App
from ratchetpy.client import ConnectionClosed
from ratchetpy.client.phpws import connect_php
from ratchetpy.phpws import PhpWsServer
from tests.support.components import Quiet
from tests.support.timing import seconds


class ReadyThenSilent(Quiet):
    """Says ready, then never answers (no "next")."""

    def on_open(self, conn: Any) -> None:
        conn.send('{"opcode":"ready","uuid":"silent-1"}')


class PhpClientLoopback(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.app = App("*", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        self.app.route("/silent", ReadyThenSilent(), ["*"])
        for path in ("/web", "/php"):
            self.app.route(path, PhpWsServer(log_connections=False), ["*"])
        self.app.route("/{unknown<.*>}", PhpWsServer(catch_all=True, log_connections=False), ["*"])
        self.app.privilegedStartService()
        self.app.startService()
        self.addCleanup(self.app.stopService)
        self.base = f"ws://127.0.0.1:{self.app.servers[0].port.getHost().port}"
        self.addCleanup(lambda: defer.ensureDeferred(self.paced_frames_done(reactor)))

    async def paced_frames_done(self, reactor: Any) -> None:
        # A PHP-type client's frames are paced (php_gap); one may still be
        # scheduled when the client has already hung up. Wait (bounded) for it.
        from twisted.internet.task import deferLater

        for _ in range(int(seconds(5) / 0.02)):
            if not any("Pacer" in repr(c) for c in reactor.getDelayedCalls()):
                return
            await deferLater(reactor, 0.02, lambda: None)

    def test_ready_feedback_by_ident_and_broadcast(self):
        def scenario() -> None:
            with ws_connect(f"{self.base}/web", origin="http://127.0.0.1") as browser, \
                    connect_php(f"{self.base}/php", ident="alice") as alice, \
                    connect_php(f"{self.base}/php", ident="bob") as bob:
                assert json.loads(browser.recv(timeout=seconds(10)))["opcode"] == "ready"
                assert alice.uuid and bob.uuid and alice.uuid != bob.uuid
                alice.feedback("hi bob", ident="bob", extra=1)
                packet = bob.receive(timeout=seconds(10))
                assert (packet["opcode"], packet["message"], packet["extra"]) == ("feedback", "hi bob", 1)
                bob.broadcast("to the browsers")
                got = json.loads(browser.recv(timeout=seconds(10)))
                assert got["message"] == "to the browsers"
                # PHP-type clients get no broadcast: the next thing alice gets is this
                bob.feedback("marker", ident="alice")
                assert alice.receive(timeout=seconds(10))["message"] == "marker"
                with pytest.raises(ValueError):
                    alice.feedback("x")

        return threads.deferToThread(scenario)

    def test_unknown_resource_is_closed_with_a_clear_error(self):
        def scenario() -> None:
            with pytest.raises(ConnectionClosed):
                connect_php(f"{self.base}/nowhere")

        return threads.deferToThread(scenario)

    def test_no_next_in_time_is_a_timeout(self):
        def scenario() -> Any:
            with connect_php(f"{self.base}/silent", timeout=0.2) as php:
                assert php.uuid == "silent-1"
                with pytest.raises(TimeoutError):
                    php.feedback("x", ident="nobody")

        return threads.deferToThread(scenario)
