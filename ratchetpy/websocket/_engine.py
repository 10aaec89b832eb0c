"""
The Autobahn engine: its factory, connection states and timers.

Autobahn is the protocol engine (RFC 6455 framing, handshake, control
frames, closing handshake, compression). This module holds what every
connection uses, on the fast path and the stock path alike; the names it
relies on are listed in ``REQUIRED_NAMES`` and checked by
``tests/websocket/test_engine.py``. The internals only the fast path touches are in
``_selfcheck`` (their list and the lazy check), ``_tcpwrite`` (Twisted's
TCP buffer) and ``_trim`` (memory per idle connection).

Importing this module imports Autobahn and nothing more: no handshake is
run and no warning issued until the first ``WsServer`` asks for the fast
path (``_selfcheck.fastpath_available``).
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
    "STREAMING_HOOKS",
    "REQUIRED_NAMES",
    "WebSocketServerFactory",
    "WebSocketServerProtocol",
    "build_factory",
]

STATE_OPEN: int = WebSocketProtocol.STATE_OPEN
STATE_CLOSING: int = WebSocketProtocol.STATE_CLOSING
STATE_CLOSED: int = WebSocketProtocol.STATE_CLOSED

STREAMING_HOOKS: tuple[str, ...] = (
    "onMessageBegin",
    "onMessageFrameBegin",
    "onMessageFrameData",
    "onMessageFrameEnd",
    "onMessageFrame",
    "onMessageEnd",
)
"""Autobahn streaming hooks the fast path skips; overriding one disables it."""

REQUIRED_NAMES: dict[str, tuple[str, ...]] = {
    # methods and class attributes, checked on the classes
    "protocol_class": (
        "sendFrame",
        "sendCloseFrame",
        "sendMessage",
        "dataReceived",
        "connectionLost",
        "STATE_OPEN",
        "STATE_CLOSING",
        "STATE_CLOSED",
    ),
    "factory_class": ("setProtocolOptions", "prepareMessage"),
    # state set up per connection, checked on a connected instance
    "protocol_instance": (
        "state",
        "websocket_extensions_in_use",
        "websocket_protocol_in_use",
    ),
    "factory_instance": ("_batched_timer",),
}
"""Names every connection relies on, fast path or not; see tests/websocket/test_engine.py.
The only private one, ``_batched_timer``, is set by us (``build_factory``)."""


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
