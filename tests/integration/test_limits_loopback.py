"""
Connection limits and the idle timeout on real loopback sockets, seen by an
independent client (the ``websockets`` library): the refused client gets
``503`` with ``Retry-After``, a place comes back once a client leaves, the
per-address limit tells 127.0.0.1 from 127.0.0.2, and a silent client
receives close 1001.
"""

from __future__ import annotations

import time

import pytest
from twisted.internet import defer
from twisted.trial.unittest import TestCase
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ratchetpy import EchoServer, HttpServer, WsServer
from ratchetpy.websocket.admission import Admission
from tests.support.loopback import Served, in_thread
from tests.support.timing import seconds

pytestmark = pytest.mark.slow


def status_and_retry_after(url: str, **kwargs: object) -> tuple[int, str | None]:
    try:
        with connect(url, open_timeout=seconds(5), proxy=None, **kwargs):
            return 101, None
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.headers.get("Retry-After")


def connect_when_admitted(url: str, timeout: float = 5.0, **kwargs: object):
    """Connect, retrying while refused with 503 (the server frees a place once TCP is gone)."""
    deadline = time.monotonic() + seconds(timeout)
    while True:
        try:
            return connect(url, open_timeout=seconds(5), proxy=None, **kwargs)
        except InvalidStatus as exc:
            if exc.response.status_code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class LimitsLoopbackTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def serve(self, ws: WsServer):
        served = yield Served(HttpServer(ws)).start()
        self.addCleanup(served.stop)
        # Ends the refusal burst (and its timer) before the reactor is checked.
        self.addCleanup(ws.admission.flush)
        return served

    @defer.inlineCallbacks
    def test_max_connections_503_with_retry_after(self):
        """Over max_connections the client sees 503 + Retry-After; a freed place admits again."""
        admission = Admission(max_connections=2, retry_after=7, burst_quiet=60)
        ws = WsServer(EchoServer(), admission=admission, log_connections=False)
        served = yield self.serve(ws)

        def clients(url):
            with connect(url, proxy=None) as a, connect(url, proxy=None) as b:
                refused = status_and_retry_after(url)
                a.send("a still works")
                echoed = a.recv(timeout=seconds(5))
                b.close()
                with connect_when_admitted(url) as c:
                    c.send("c admitted")
                    admitted = c.recv(timeout=seconds(5))
            return refused, echoed, admitted

        refused, echoed, admitted = yield in_thread(clients, served.url)
        self.assertEqual(refused, (503, "7"))
        self.assertEqual((echoed, admitted), ("a still works", "c admitted"))
        self.assertGreaterEqual(ws.hub.counters.refused["max_connections"], 1)

    @defer.inlineCallbacks
    def test_max_connections_per_ip_tells_addresses_apart(self):
        """One connection per address: a second from 127.0.0.1 gets 503, one from 127.0.0.2 is admitted."""
        ws = WsServer(EchoServer(), max_connections_per_ip=1, log_connections=False)
        served = yield self.serve(ws)

        def clients(url):
            with connect(url, proxy=None, source_address=("127.0.0.1", 0)):
                same = status_and_retry_after(url, source_address=("127.0.0.1", 0))
                other = status_and_retry_after(url, source_address=("127.0.0.2", 0))
            return same, other

        same, other = yield in_thread(clients, served.url)
        self.assertEqual(same, (503, "5"))
        self.assertEqual(other, (101, None))
        self.assertEqual(dict(ws.hub.counters.refused), {"max_connections_per_ip": 1})

    @defer.inlineCallbacks
    def test_idle_client_receives_close_1001(self):
        """A client that sends nothing after its first message is closed with 1001 'Idle timeout'."""
        ws = WsServer(EchoServer(), idle_timeout=0.5, log_connections=False)
        served = yield self.serve(ws)

        def client(url):
            with connect(url, proxy=None) as quiet:
                quiet.send("hello")
                echoed = quiet.recv(timeout=seconds(5))
                try:
                    quiet.recv(timeout=seconds(10))
                except ConnectionClosed as exc:
                    return echoed, exc.rcvd.code, exc.rcvd.reason
            return echoed, None, None

        result = yield in_thread(client, served.url)
        self.assertEqual(result, ("hello", 1001, "Idle timeout"))
