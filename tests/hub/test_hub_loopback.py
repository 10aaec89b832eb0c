"""The hub over real loopback sockets, with the ``websockets`` client in threads."""

from __future__ import annotations

import contextlib
import json
import time

from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ratchetpy.app import App
from ratchetpy.testing import RecordingComponent
from tests.support.loopback import assert_silent, start_app
from tests.support.timing import seconds


class Tell(RecordingComponent):
    """Sends each client its id; ``{"join": C, "user": U}`` joins and binds."""

    def on_open(self, conn):
        super().on_open(conn)
        conn.send(json.dumps({"id": conn.id}))

    def on_message(self, conn, msg):
        super().on_message(conn, msg)
        command = json.loads(msg)
        if "join" in command:
            conn.hub.join(conn, command["join"])
        if "user" in command:
            conn.hub.bind(conn, command["user"])
        conn.send("ok")


def call(reactor, f, *args):
    """Run ``f(*args)`` in the reactor thread from a client thread; its result."""
    return threads.blockingCallFromThread(reactor, f, *args)


class HubLoopbackTests(unittest.TestCase):
    timeout = 30

    def setUp(self):
        from twisted.internet import reactor

        self.reactor = reactor
        self.app = App("localhost", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/tell", Tell(), ["*"], hub=True)
        self.port = start_app(self, self.app)

    def url(self):
        return f"ws://localhost:{self.port}/tell"

    def hub(self, method, *args):
        # Hub calls from a client thread: run in the reactor, wait for the Deferred.
        return call(self.reactor, getattr(self.app.hub, method), *args)

    def open(self, stack, **command):
        ws = stack.enter_context(connect(self.url()))
        cid = json.loads(ws.recv(timeout=seconds(5)))["id"]
        if command:
            ws.send(json.dumps(command))
            assert ws.recv(timeout=seconds(5)) == "ok"
        return ws, cid

    @defer.inlineCallbacks
    def test_push_from_outside_reaches_exactly_that_client(self):
        def scenario():
            with contextlib.ExitStack() as stack:
                a, a_id = self.open(stack)
                b, b_id = self.open(stack)
                delivered = self.hub("push", a_id, "for a")
                got = a.recv(timeout=seconds(5))
                assert_silent(b)
                missed = self.hub("push", "not-an-id", "x")
                return delivered, got, missed

        delivered, got, missed = yield threads.deferToThread(scenario)
        self.assertEqual((delivered, got, missed), (True, "for a", False))

    @defer.inlineCallbacks
    def test_users_channels_presence_and_disconnect(self):
        def scenario():
            with contextlib.ExitStack() as stack:
                tab1, id1 = self.open(stack, user="ann", join="lobby")
                tab2, id2 = self.open(stack, user="ann")
                bob, id3 = self.open(stack, user="bob", join="lobby")
                to_ann = self.hub("push_user", "ann", "hi ann")
                ann_got = [tab1.recv(timeout=seconds(5)), tab2.recv(timeout=seconds(5))]
                to_lobby = self.hub("publish", "lobby", b"\x01\x02", [id1])
                bob_got = bob.recv(timeout=seconds(5))
                assert_silent(tab1)
                members = sorted(tuple(m) for m in self.hub("members", "lobby"))
                tabs = sorted(self.hub("connections_of", "ann"))
                info = self.hub("client_info", id1)
                closed = self.hub("disconnect", id3, 4002, "kicked")
                try:
                    bob.recv(timeout=seconds(5))
                except ConnectionClosed as exc:
                    close = (exc.rcvd.code, exc.rcvd.reason)
                return to_ann, ann_got, to_lobby, bob_got, members, tabs, info, closed, close, (
                    id1,
                    id2,
                    id3,
                )

        result = yield threads.deferToThread(scenario)
        to_ann, ann_got, to_lobby, bob_got, members, tabs, info, closed, close, ids = result
        id1, id2, id3 = ids
        self.assertEqual(to_ann, 2)
        self.assertEqual(ann_got, ["hi ann", "hi ann"])
        self.assertEqual((to_lobby, bob_got), (1, b"\x01\x02"))
        self.assertEqual(members, sorted([(id1, "ann"), (id3, "bob")]))
        self.assertEqual(tabs, sorted([id1, id2]))
        self.assertEqual((info.user, info.channels, info.route), ("ann", ("lobby",), "/tell"))
        self.assertEqual(info.messages_in, 1)
        self.assertGreaterEqual(info.messages_out, 3)  # id, ok, hi ann
        self.assertTrue(info.remote_address.startswith("127.0.0.1"))
        self.assertEqual((closed, close), (True, (4002, "kicked")))

    @defer.inlineCallbacks
    def test_stats_after_real_traffic(self):
        def scenario():
            with contextlib.ExitStack() as stack:
                self.open(stack, join="x")

        yield threads.deferToThread(scenario)
        # wait for the server to see the close
        for _ in range(100):
            if self.app.hub.counters.open == 0:
                break
            yield threads.deferToThread(time.sleep, 0.05)
        stats = yield self.app.hub.stats()
        self.assertEqual(stats["accepted"], 1)
        self.assertEqual(stats["open"], 0)
        self.assertEqual(stats["closed"], {"1000": 1})
        self.assertEqual((stats["messages_in"], stats["messages_out"]), (1, 2))
        self.assertEqual(stats["registered"], 0)
        self.assertEqual(stats["channels"], 0)
