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
from txaio._common import _BatchedTimer  # noqa: E402

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
    # Autobahn's timers (open/close handshake, auto-ping) go through this;
    # txaio's default would pick up the global reactor.
    factory._batched_timer = _BatchedTimer(
        200.0,
        1000,
        seconds_provider=reactor.seconds,
        delayed_call_creator=reactor.callLater,
    )
    factory.setProtocolOptions(**options)
    return factory
