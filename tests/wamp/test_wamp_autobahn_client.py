"""A second, independent client family: Autobahn's Twisted WebSocket client speaking WAMP v1."""

from __future__ import annotations

import json
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase

from ratchetpy import HttpServer, WsServer
from ratchetpy.wamp import WampServer
from tests.support.loopback import Served
from tests.support.wamp import WampEcho

T = "http://example.com/simple"


class WampV1Session(WebSocketClientProtocol):
    """WELCOME, a CALL, a CURIE CALL, SUBSCRIBE + PUBLISH to itself, then close 1000."""

    def onOpen(self) -> None:
        self.received: list[Any] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        message = json.loads(payload)
        self.received.append(message)
        step = len(self.received)
        if step == 1:  # WELCOME
            self.send([2, "c1", T + "/calc#add", 23, 7])
        elif step == 2:
            self.send([1, "calc", T + "/calc#"])
            self.send([2, "c2", "calc:error"])
        elif step == 3:
            self.send([5, T])
            self.send([7, T, {"x": "/ü"}])
        elif step == 4:
            self.sendClose(1000)

    def send(self, message: Any) -> None:
        self.sendMessage(json.dumps(message).encode(), isBinary=False)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.done.callback((self.received, self.websocket_protocol_in_use, wasClean, code))


class AutobahnWampClientTests(TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def test_wamp_session_with_autobahn_client(self) -> Any:
        """Autobahn's client negotiates ``wamp`` and gets WELCOME, results, errors and events."""
        served = yield Served(HttpServer(WsServer(WampServer(WampEcho())))).start()
        self.addCleanup(served.stop)
        factory = WebSocketClientFactory(served.url, reactor=reactor, protocols=["wamp"])
        factory.protocol = WampV1Session
        factory.done = defer.Deferred()
        yield TCP4ClientEndpoint(reactor, "127.0.0.1", served.port).connect(factory)
        received, protocol, clean, code = yield factory.done
        self.assertEqual(protocol, "wamp")
        welcome, result, error, event = received
        self.assertEqual((welcome[0], welcome[2], welcome[3]), (0, 1, "Ratchet/0.4.4"))
        self.assertEqual(result, [3, "c1", [23, 7]])
        self.assertEqual(error, [4, "c2", T + "/calc##error", "requested error", {"params": []}])
        self.assertEqual(event, [8, T, {"x": "/ü"}])
        self.assertTrue(clean)
        self.assertEqual(code, 1000)
