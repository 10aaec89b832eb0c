"""
WAMP through the App facade and the twistd plugin, as a Ratchet user would
deploy it: ``App('localhost').route('/pubsub', BasicPubSub())``.
"""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from examples.pubsub import BasicPubSub
from ratchetpy import WsServer
from ratchetpy.app import App, wrap_component
from ratchetpy.wamp import WampServer
from tests.support.timing import seconds
from tests.support.wamp_client import WampClient


def test_wamp_app_is_wrapped_as_ratchet_does():
    """A WampServerInterface routed in App becomes WsServer(WampServer(app)) with keepalive."""
    app = BasicPubSub()
    ws = wrap_component(app)
    assert isinstance(ws, WsServer) and isinstance(ws.component, WampServer)
    assert ws.component.app is app
    assert ws.sub_protocols == ["wamp"]
    assert ws.keep_alive_interval == 30


class AppWampTests(unittest.TestCase):
    """App serving the socketo.me PubSub example over real loopback sockets."""

    timeout = 30

    def setUp(self):
        from twisted.internet import reactor

        self.app = App("localhost", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/pubsub", BasicPubSub())  # default origins: [http_host], as Ratchet
        self.app.privilegedStartService()
        self.app.startService()
        self.port = self.app.servers[0].port.getHost().port
        self.addCleanup(lambda: self.app.stopService() if self.app.running else None)

    @defer.inlineCallbacks
    def test_pubsub_through_app(self):
        """Two sessions: subscribe, publish excluding me, the other gets the EVENT."""
        url = f"ws://localhost:{self.port}/pubsub"

        def sessions():
            # Ratchet's same-origin default: without an Origin of http_host, 403.
            try:
                connect(url, subprotocols=["wamp"], open_timeout=seconds(5)).close()
                refused = None
            except InvalidStatus as exc:
                refused = exc.response.status_code
            a = connect(url, subprotocols=["wamp"], origin="http://localhost", open_timeout=seconds(5))
            b = connect(url, subprotocols=["wamp"], origin="http://localhost", open_timeout=seconds(5))
            with a, b:
                welcome = json.loads(a.recv(timeout=seconds(5)))
                json.loads(b.recv(timeout=seconds(5)))
                topic = "http://example.com/kittens"
                a.send(json.dumps([5, topic]))
                b.send(json.dumps([5, topic]))
                # Separate connections: wait until a's SUBSCRIBE was handled
                # (its CALL is answered after it) before b publishes.
                a.send(json.dumps([2, "sync", "http://example.com/rpc"]))
                assert json.loads(a.recv(timeout=seconds(5)))[:2] == [4, "sync"]
                b.send(json.dumps([7, topic, {"title": "hi"}, True]))
                event = json.loads(a.recv(timeout=seconds(5)))
                b.send(json.dumps([2, "c1", "http://example.com/rpc", 1]))
                call_error = json.loads(b.recv(timeout=seconds(5)))  # b excluded itself
            return refused, welcome, event, call_error

        refused, welcome, event, call_error = yield threads.deferToThread(sessions)
        self.assertEqual(refused, 403)
        self.assertEqual((welcome[0], welcome[2], welcome[3]), (0, 1, "Ratchet/0.4.4"))
        self.assertEqual(event, [8, "http://example.com/kittens", {"title": "hi"}])
        self.assertEqual(call_error[:3], [4, "c1", "http://example.com/rpc"])


@pytest.mark.slow
def test_twistd_routes_a_wamp_class(twistd):
    """``twistd ratchetpy --route /pubsub=pubsub:BasicPubSub`` serves WAMP v1."""
    server = twistd("--route", "/pubsub=examples.pubsub:BasicPubSub", "--origin", "*")
    server.wait_listening()
    with WampClient(f"ws://127.0.0.1:{server.port}/pubsub") as client:
        assert client.welcome[0] == 0 and len(client.session_id) >= 30
        topic = "http://example.com/t"
        client.send([5, topic])
        client.send([7, topic, "to myself"])
        assert json.loads(client.recv()) == [8, topic, "to myself"]
    server.stop()
