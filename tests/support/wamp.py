"""The WAMP apps and loopback server plumbing shared by the WAMP tests."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from ratchetpy import HttpServer, WsServer
from ratchetpy.exceptions import WampError
from ratchetpy.wamp import WampServerInterface

from tests.support.loopback import Served

__all__ = ["WampEcho", "LoopbackMixin"]


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
