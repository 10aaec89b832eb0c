"""
The built-in chat with history on real loopback sockets, with the
``websockets`` client speaking the demo page's protocol: positioned
messages, a reconnect that recovers what was missed (the page's own
messages left out), a reset for a position the server cannot serve, and a
tutorial client beside it that keeps the plain relay.
"""

from __future__ import annotations

import base64
import json
from contextlib import ExitStack

from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.sync.client import connect

from ratchetpy.app import App
from ratchetpy.builtins import Chat
from tests.support.loopback import start_app
from tests.support.timing import seconds


class ChatHistoryLoopbackTests(unittest.TestCase):
    timeout = 30

    def setUp(self):
        from twisted.internet import reactor

        self.app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        self.app.route("/room/{name}", Chat(history=3), ["*"])
        self.port = start_app(self, self.app)

    def open(self, stack: ExitStack, query: str = "") -> tuple:
        ws = stack.enter_context(
            connect(f"ws://127.0.0.1:{self.port}/room/lobby{query}", open_timeout=seconds(5))
        )
        return ws, json.loads(ws.recv(timeout=seconds(5)))

    @staticmethod
    def recv(ws) -> dict:
        return json.loads(ws.recv(timeout=seconds(5)))

    @defer.inlineCallbacks
    def test_a_page_reconnects_and_gets_what_it_missed(self):
        def talk():
            with ExitStack() as stack:
                plain, _ = self.open(stack)
                with ExitStack() as visit:
                    page, welcome = self.open(visit, "?positions=1")
                    page.send(json.dumps({"type": "recover"}))
                    start = self.recv(page)
                    plain.send("one")
                    one = self.recv(page)
                    page.send("from the page")
                    heard_plain = plain.recv(timeout=seconds(5))
                plain.send(b"\x01\x02")
                plain.send("three")
                back, _ = self.open(stack, "?positions=1")
                back.send(json.dumps({
                    "type": "recover", "epoch": one["epoch"], "offset": one["offset"], "id": welcome["id"],
                }))  # fmt: skip
                missed = [self.recv(back) for _ in range(3)]
                plain.send("live")
                live = self.recv(back)
                return welcome, start, one, heard_plain, missed, live

        welcome, start, one, heard_plain, missed, live = yield threads.deferToThread(talk)
        epoch = start["epoch"]
        self.assertEqual(welcome["positions"], True)
        self.assertEqual(start, {"type": "recovered", "epoch": epoch, "offset": 0, "missed": 0})
        self.assertEqual(one, {"type": "message", "epoch": epoch, "offset": 1, "data": "one"})
        self.assertEqual(heard_plain, "from the page")  # raw, as the tutorial client expects
        self.assertEqual(
            missed,
            [
                {"type": "message", "epoch": epoch, "offset": 3, "base64": base64.b64encode(b"\x01\x02").decode()},
                {"type": "message", "epoch": epoch, "offset": 4, "data": "three"},
                {"type": "recovered", "epoch": epoch, "offset": 4, "missed": 2},
            ],
        )  # offset 2 was the page's own message: not sent again
        self.assertEqual(live, {"type": "message", "epoch": epoch, "offset": 5, "data": "live"})

    @defer.inlineCallbacks
    def test_a_position_the_server_cannot_serve_gets_a_reset(self):
        def talk():
            with ExitStack() as stack:
                plain, _ = self.open(stack)
                observer, _ = self.open(stack, "?positions=1")
                observer.send(json.dumps({"type": "recover"}))
                self.recv(observer)
                for i in range(5):
                    plain.send(f"m{i}")
                while self.recv(observer).get("offset") != 5:
                    pass  # all five are stored
                page, _ = self.open(stack, "?positions=1")
                page.send(json.dumps({"type": "recover", "epoch": "from-another-server", "offset": 2}))
                reset = self.recv(page)
                page2, _ = self.open(stack, "?positions=1")
                page2.send(json.dumps({"type": "recover", "epoch": reset["epoch"], "offset": 1}))
                trimmed = self.recv(page2)  # 3 kept: 2..1 are gone
                return reset, trimmed

        reset, trimmed = yield threads.deferToThread(talk)
        self.assertEqual((reset["type"], reset["offset"]), ("reset", 5))
        self.assertEqual(trimmed, reset)
