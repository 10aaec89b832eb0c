"""
Every Autobahn and txaio internal that ratchetpy depends on, in one place.

Autobahn is the protocol engine (RFC 6455 framing, handshake, control
frames, closing handshake, compression). Names used here that Autobahn does
not document as public are listed in ``REQUIRED_NAMES`` and checked by
``tests/test_engine.py``, so an Autobahn upgrade that moves them fails
loudly in CI rather than subtly in production.
"""

from __future__ import annotations

from typing import Any

import txaio

txaio.use_twisted()

from autobahn.twisted.websocket import (  # noqa: E402
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.protocol import WebSocketProtocol  # noqa: E402

__all__ = [
    "STATE_OPEN",
    "STATE_CLOSING",
    "STATE_CLOSED",
    "WebSocketServerProtocol",
    "build_factory",
    "REQUIRED_NAMES",
]

STATE_OPEN: int = WebSocketProtocol.STATE_OPEN
STATE_CLOSING: int = WebSocketProtocol.STATE_CLOSING
STATE_CLOSED: int = WebSocketProtocol.STATE_CLOSED

REQUIRED_NAMES: dict[str, tuple[str, ...]] = {
    # methods and class attributes, checked on the classes
    "protocol_class": (
        "sendFrame",
        "sendCloseFrame",
        "sendMessage",
        "sendPreparedMessage",
        "dataReceived",
        "STATE_OPEN",
        "STATE_CLOSING",
        "STATE_CLOSED",
    ),
    "factory_class": ("setProtocolOptions", "prepareMessage"),
    # state set up per connection, checked on a connected instance
    "protocol_instance": (
        "state",
        "_perMessageCompress",
        "remoteCloseCode",
        "remoteCloseReason",
        "trafficStats",
    ),
    "factory_instance": ("_batched_timer",),
}
"""Names ratchetpy relies on that Autobahn does not promise; see tests/test_engine.py."""


def build_factory(reactor: Any, options: dict[str, Any]) -> WebSocketServerFactory:
    """
    Build the Autobahn factory whose options every connection of one
    ``WsServer`` shares, with timers on ``reactor`` (never the global one).
    """
    factory = WebSocketServerFactory(server=None, reactor=reactor)
    factory._batched_timer = _ReactorTimer(reactor)
    factory.setProtocolOptions(**options)
    return factory


class _ReactorTimer:
    """
    Stands in for txaio's batched timer on Autobahn factories.

    Autobahn schedules its handshake and auto-ping timers through
    ``factory._batched_timer``. txaio's version would use the global
    reactor, and cancelling one of its calls leaves the shared bucket's
    DelayedCall pending; plain ``callLater`` on the injected reactor is
    exact and leaves nothing behind.
    """

    __slots__ = ("call_later",)

    def __init__(self, reactor: Any) -> None:
        self.call_later = reactor.callLater
