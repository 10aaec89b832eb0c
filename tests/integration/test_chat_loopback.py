"""
The built-in chat on real loopback sockets, with the ``websockets`` client:
the welcome message, rooms, raw relay, isolation, and leaving on close, as
the App's hub sees them.
"""

from __future__ import annotations

import json
import socket
from contextlib import ExitStack

from twisted.internet import defer, task, threads
from twisted.trial import unittest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ratchetpy.app import App
from ratchetpy.builtins import Chat
from ratchetpy.server.ids import is_connection_id
from tests.support.loopback import Served, start_app
from tests.support.timing import seconds


class ChatLoopbackTests(unittest.TestCase):
    """``/chat`` and ``/room/{name}`` served by built-in chats on one App."""

    timeout = 30

    def setUp(self):
        from twisted.internet import reactor

        self.reactor = reactor
        self.app = App("127.0.0.1", 0, reactor=reactor, shutdown_timeout=seconds(5), log_connections=False)
        self.app.route("/chat", Chat(), ["*"])
        self.app.route("/room/{name}", Chat(), ["*"])
        self.port = start_app(self, self.app)

    def url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"

    def join(self, path, clients):
        """Connect (in a client thread), closed with ``clients``; (client, welcome dict)."""
        client = clients.enter_context(connect(self.url(path), open_timeout=seconds(5)))
        welcome = json.loads(client.recv(timeout=seconds(5)))
        return client, welcome

    def on_reactor(self, function, *args):
        """Call ``function`` on the reactor from a client thread; its (Deferred) result."""
        return threads.blockingCallFromThread(self.reactor, function, *args)

    @defer.inlineCallbacks
    def wait_for_count(self, channel, count):
        for _ in range(int(seconds(10) / 0.02)):
            if (yield self.app.hub.member_count(channel)) == count:
                return
            yield task.deferLater(self.reactor, 0.02, lambda: None)
        self.fail(f"{channel} never had {count} members")

    @defer.inlineCallbacks
    def test_welcome_gives_a_registered_id_and_the_room(self):
        """The first message is {"type": "welcome", "id", "room"}; the id is the hub's."""

        def talk():
            with connect(self.url("/chat"), open_timeout=seconds(5)) as a:
                first = a.recv(timeout=seconds(5))
                registered = self.on_reactor(self.app.hub.exists, json.loads(first)["id"])
                return first, registered

        first, registered = yield threads.deferToThread(talk)
        self.assertIsInstance(first, str)
        welcome = json.loads(first)
        self.assertEqual(set(welcome), {"type", "id", "room"})
        self.assertEqual((welcome["type"], welcome["room"]), ("welcome", "chat"))
        self.assertTrue(is_connection_id(welcome["id"]))
        self.assertTrue(registered)

    @defer.inlineCallbacks
    def test_relay_within_a_room_and_isolation_between_rooms(self):
        """Messages reach the others in the room, as sent; never the sender or another room."""

        def talk():
            with ExitStack() as clients:
                a, wa = self.join("/room/x", clients)
                b, wb = self.join("/room/x", clients)
                c, wc = self.join("/room/y", clients)
                d, _ = self.join("/room/y", clients)
                members = self.on_reactor(self.app.hub.members, "chat:x")
                a.send("hello x")
                got_b = b.recv(timeout=seconds(5))
                b.send(b"\x00\xffbinary")
                got_a_binary = a.recv(timeout=seconds(5))
                c.send("only y")
                got_d = d.recv(timeout=seconds(5))
                # Room y's message has been published (d has it): had it
                # leaked to x, or a's own message come back, it would be
                # ahead of this marker in a's stream.
                b.send("marker")
                got_a_next = a.recv(timeout=seconds(5))
                return wa, wb, wc, members, got_b, got_a_binary, got_d, got_a_next

        wa, wb, wc, members, got_b, got_a_binary, got_d, got_a_next = yield threads.deferToThread(talk)
        self.assertEqual((wa["room"], wb["room"], wc["room"]), ("x", "x", "y"))
        self.assertEqual(len({wa["id"], wb["id"], wc["id"]}), 3)
        self.assertEqual(sorted(m.id for m in members), sorted([wa["id"], wb["id"]]))
        self.assertEqual(got_b, "hello x")
        self.assertEqual(got_a_binary, b"\x00\xffbinary")
        self.assertEqual(got_d, "only y")
        self.assertEqual(got_a_next, "marker")

    @defer.inlineCallbacks
    def test_closing_leaves_the_room(self):
        """A client that closes leaves its room's channel; the last one empties it."""
        stack = ExitStack()
        self.addCleanup(threads.deferToThread, stack.close)
        clients = yield threads.deferToThread(lambda: [self.join("/room/z", stack)[0] for _ in range(3)])
        self.assertEqual((yield self.app.hub.member_count("chat:z")), 3)
        yield threads.deferToThread(clients[0].close)
        yield self.wait_for_count("chat:z", 2)
        yield threads.deferToThread(lambda: [c.close() for c in clients[1:]])
        yield self.wait_for_count("chat:z", 0)
        self.assertNotIn("chat:z", self.app.hub.channels())
        self.assertEqual(len(self.app.hub), 0)

    @defer.inlineCallbacks
    def test_bad_room_name_closes_with_1008(self):
        """A room the hub cannot take (a control character) gets 1008 with a reason, no welcome."""

        def attempt():
            with connect(self.url("/room/bad%01name"), open_timeout=seconds(5)) as ws:
                try:
                    ws.recv(timeout=seconds(5))
                except ConnectionClosed:
                    return ws.close_code, ws.close_reason
                return None

        code, reason = yield threads.deferToThread(attempt)
        self.assertEqual(code, 1008)
        self.assertIn("room name", reason)
        self.assertEqual(self.app.hub.channels(), [])


class RawTcpChatTests(unittest.TestCase):
    """``IoServer.factory(Chat(), port)``: the tutorial's telnet step, with a hub of the chat's own."""

    timeout = 30

    @defer.inlineCallbacks
    def test_telnet_clients_chat_after_a_welcome_line(self):
        """Each client reads a welcome line (room 'chat'), then lines go raw to the other."""
        served = yield Served(Chat()).start()
        self.addCleanup(served.server.stopService)

        def talk():
            with socket.create_connection(("127.0.0.1", served.port), timeout=seconds(5)) as a, \
                    socket.create_connection(("127.0.0.1", served.port), timeout=seconds(5)) as b:
                welcomes = [read_line(a), read_line(b)]
                a.sendall(b"hi there\r\n")
                return welcomes, read_line(b)

        welcomes, relayed = yield threads.deferToThread(talk)
        parsed = [json.loads(line) for line in welcomes]
        self.assertEqual([w["room"] for w in parsed], ["chat", "chat"])
        self.assertTrue(all(is_connection_id(w["id"]) for w in parsed))
        self.assertEqual(relayed, b"hi there\r\n")
        yield served.stop()


def read_line(sock):
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError(f"closed after {line!r}")
        line += chunk
    return line
