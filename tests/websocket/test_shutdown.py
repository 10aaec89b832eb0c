"""WsServer.close_all: graceful shutdown, deterministic (Clock, in memory)."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from websockets.frames import Close

from ratchetpy import HttpServer, WsServer
from ratchetpy.testing import RecordingComponent
from tests.support.memory import WsPeer


def open_peers(count: int):
    app = RecordingComponent()
    ws = WsServer(app)
    reactor = MemoryReactorClock()
    peers = [WsPeer(stack=HttpServer(ws), reactor=reactor).open() for _ in range(count)]
    return app, ws, reactor, peers


def test_no_connections_fires_at_once():
    """With nothing open, close_all fires at once with 0 dropped."""
    d = WsServer(RecordingComponent()).close_all()
    assert d.called and d.result == 0


def test_close_all_sends_1001_and_waits_for_the_handshakes():
    """Each peer gets 1001; the Deferred fires once every on_close has run."""
    app, ws, reactor, peers = open_peers(2)
    assert len(ws.connections) == 2
    results = []
    ws.close_all(1001, "bye", timeout=5).addCallback(results.append)
    for peer in peers:
        peer.pump()  # receives the close frame; the client queues its reply
        assert peer.client.close_rcvd == Close(1001, "bye")
        assert results == []
        peer.pump()  # the reply reaches the server, which closes
    assert results == [0]
    assert app.kinds().count("close") == 2
    assert ws.connections == []
    assert [c.close_code for _, c in [e for e in app.events if e[0] == "close"]] == [1001, 1001]
    reactor.advance(10)  # no timer left to drop anything
    assert results == [0]


def test_close_all_drops_peers_that_do_not_answer():
    """After the timeout the silent peers are dropped; on_close still runs for each."""
    app, ws, reactor, peers = open_peers(2)
    results = []
    ws.close_all(timeout=3).addCallback(results.append)
    peers[0].pump()
    peers[0].pump()  # the first answers
    assert results == []
    reactor.advance(3)
    assert results == [1]
    assert peers[1].memory.transport.aborted
    assert app.kinds().count("close") == 2
    assert ws.connections == []
