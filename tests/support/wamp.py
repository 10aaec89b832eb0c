"""The WAMP apps, in-memory WAMP peers and loopback server plumbing shared by the WAMP tests."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer
from websockets.frames import Close, Opcode

from ratchetpy import HttpServer, WsServer
from ratchetpy.exceptions import WampError
from ratchetpy.wamp import WampServer, WampServerInterface
from tests.support.loopback import Served
from tests.support.memory import WsPeer

__all__ = ["LoopbackMixin", "WampEcho", "WampRecorder", "close_of", "open_peer", "texts", "wamp_peer"]


class WampEcho(WampServerInterface):
    """
    The app PHP Ratchet ran for ``ratchet-wire/frames.txt``'s WAMP section:
    calls are answered with their params, URIs ending ``#error`` with a
    CALLERROR carrying ``{"params": params}``, ``#error-nodetails`` with
    one without details; publishes are broadcast with exclude/eligible.
    ``#throw`` raises ``Exception`` and ``#wamp-exception`` raises
    ``WampError`` (the transcript's handler-throws rows); ``on_error``
    closes the connection, as the tutorials do.
    """

    def __init__(self) -> None:
        self.open: set[Any] = set()
        self.errors: list[Exception] = []
        self.calls: list[tuple[Any, str, Any]] = []

    def on_open(self, conn: Any) -> None:
        self.open.add(conn)

    def on_close(self, conn: Any) -> None:
        self.open.discard(conn)

    def on_error(self, conn: Any, exc: Exception) -> None:
        self.errors.append(exc)
        conn.close()

    def on_call(self, conn: Any, id: Any, topic: Any, params: Any) -> None:
        uri = str(topic)
        self.calls.append((id, uri, params))
        if uri.endswith("#error"):
            conn.call_error(id, topic, "requested error", {"params": params})
        elif uri.endswith("#error-nodetails"):
            conn.call_error(id, topic, "requested error")
        elif uri.endswith("#throw"):
            raise Exception("handler failed")
        elif uri.endswith("#wamp-exception"):
            raise WampError("handler refused the call")
        else:
            conn.call_result(id, params)

    def on_subscribe(self, conn: Any, topic: Any) -> None:
        pass

    def on_unsubscribe(self, conn: Any, topic: Any) -> None:
        pass

    def on_publish(self, conn: Any, topic: Any, event: Any, exclude: Any, eligible: Any) -> None:
        topic.broadcast(event, exclude, eligible)


class LoopbackMixin:
    """
    For ``twisted.trial.unittest.TestCase``: serve a component on
    127.0.0.1, port 0, with the real reactor, and clean up after the test
    (wait until the server saw every connection close, stop listening).
    """

    def serve(self, component: Any) -> defer.Deferred[str]:
        """Serve ``IoServer(HttpServer(WsServer(component)))``; fire with the ``ws://`` URL."""
        served = Served(HttpServer(WsServer(component)))
        self.addCleanup(served.stop)  # type: ignore[attr-defined]
        d = served.start()
        d.addCallback(lambda _: served.url.rstrip("/"))
        return d


def wamp_peer(app: Any = None, *, subprotocols: list[str] | None = None, **options: Any) -> WsPeer:
    """An in-memory peer of ``HttpServer(WsServer(WampServer(app or WampEcho(), **options)))``, not yet open."""
    stack = HttpServer(WsServer(WampServer(app or WampEcho(), **options)))
    return WsPeer(stack=stack, subprotocols=["wamp"] if subprotocols is None else subprotocols)


def open_peer(app: Any = None, **options: Any) -> tuple[WsPeer, list[Any]]:
    """An open WAMP peer and the messages it got with the handshake (WELCOME first)."""
    peer = wamp_peer(app, **options)
    peer.client.send_request(peer.client.connect())
    events = peer.pump()
    assert events[0].status_code == 101
    return peer, [json.loads(f.data) for f in events[1:]]


def texts(frames: list[Any]) -> list[str]:
    """The payloads of ``frames`` (all must be text frames)."""
    assert all(f.opcode == Opcode.TEXT for f in frames), frames
    return [f.data.decode() for f in frames]


def close_of(frames: list[Any]) -> tuple[int, str]:
    """The code and reason of the one close frame among ``frames``."""
    closes = [Close.parse(f.data) for f in frames if f.opcode == Opcode.CLOSE]
    assert len(closes) == 1, frames
    return closes[0].code, closes[0].reason


class WampRecorder(WampServerInterface):
    """Records every WAMP event as a tuple."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_open(self, conn: Any) -> None:
        self.events.append(("open", conn))

    def on_close(self, conn: Any) -> None:
        self.events.append(("close", conn))

    def on_error(self, conn: Any, exc: Exception) -> None:
        self.events.append(("error", conn, exc))

    def on_call(self, conn: Any, id: Any, topic: Any, params: Any) -> None:
        self.events.append(("call", id, topic, params))

    def on_subscribe(self, conn: Any, topic: Any) -> None:
        self.events.append(("subscribe", topic))

    def on_unsubscribe(self, conn: Any, topic: Any) -> None:
        self.events.append(("unsubscribe", topic))

    def on_publish(self, conn: Any, topic: Any, event: Any, exclude: Any, eligible: Any) -> None:
        self.events.append(("publish", topic, event, exclude, eligible))

    def last(self) -> tuple[Any, ...]:
        return self.events[-1]
