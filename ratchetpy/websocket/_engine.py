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
from twisted.internet import tcp as _tcp  # noqa: E402

__all__ = [
    "STATE_OPEN",
    "STATE_CLOSING",
    "STATE_CLOSED",
    "WebSocketServerProtocol",
    "build_factory",
    "REQUIRED_NAMES",
    "FASTPATH_NAMES",
    "TRANSPORT_NAMES",
    "STREAMING_HOOKS",
    "VERIFIED_VERSIONS",
    "fastpath_problems",
    "FASTPATH_AVAILABLE",
    "FASTPATH_ENV",
    "fastpath_enabled_by_env",
    "DIRECT_WRITE_TYPES",
    "direct_write",
    "buffered_bytes",
    "xor_masker",
    "CONFIG_ATTRS",
    "CLASS_DEFAULTS",
    "HANDSHAKE_LEFTOVERS",
    "bind_protocol_class",
    "refresh_protocol_class",
    "trim_after_open",
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
        "sendPreparedMessage",
        "dataReceived",
        "STATE_OPEN",
        "STATE_CLOSING",
        "STATE_CLOSED",
        # overridden in protocol.py (hostile peers; see _limits.py)
        "onFrameBegin",
        "onCloseFrame",
        "dropConnection",
        "connectionLost",
        "_dataReceived",
        "_onMessageFrame",  # Twisted adapter; assembles into ``message_data``
        "CLOSE_STATUS_CODES_ALLOWED",
    ),
    "factory_class": ("setProtocolOptions", "prepareMessage"),
    # state set up per connection, checked on a connected instance
    "protocol_instance": (
        "state",
        "_perMessageCompress",
        "remoteCloseCode",
        "remoteCloseReason",
        "trafficStats",
        "current_frame",
        "failedByMe",
        "wasClean",
        "wasNotCleanReason",
        "closeHandshakeTimeout",
        "maxMessagePayloadSize",
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


# -- fast path (see _fastpath.py) -------------------------------------------
#
# The fast data path reads and writes the Autobahn state below directly. If any
# of these names is missing (an Autobahn or Twisted upgrade moved it), the
# import-time self-check turns the fast path off and logs why; the stock
# Autobahn path then carries every frame, slower but correct.

VERIFIED_VERSIONS: dict[str, tuple[str, ...]] = {
    "autobahn": ("26.10.2",),
    "twisted": ("26.10.0",),
}
"""Versions the fast path was verified against (tests + Autobahn TestSuite)."""

FASTPATH_NAMES: dict[str, tuple[str, ...]] = {
    "protocol_class": (
        "_dataReceived",
        "consumeData",
        "_cancelAutoPingTimeoutCall",
        "_onOpen",
        "sendData",
        "_trigger",
        *STREAMING_HOOKS,
        "onMessage",
    ),
    # set per connection by Autobahn; checked on a connected instance
    "protocol_instance": (
        "state",
        "data",
        "current_frame",
        "inside_message",
        "_perMessageCompress",
        "logOctets",
        "logFrames",
        "trackedTimings",
        "trafficStats",
        "maxFramePayloadSize",
        "maxMessagePayloadSize",
        "utf8validateIncoming",
        "maskServerFrames",
        "autoFragmentSize",
        "requireMaskedClientFrames",
        "applyMask",
        "send_queue",
        "autoPingTimeoutCall",
        "autoPingRestartOnAnyTraffic",
        "triggered",
    ),
    "traffic_stats": (
        "incomingOctetsWireLevel",
        "incomingWebSocketFrames",
        "incomingWebSocketMessages",
        "outgoingOctetsWireLevel",
        "outgoingWebSocketFrames",
        "outgoingWebSocketMessages",
    ),
}
"""Autobahn internals the fast path reads (and for ``data``/stats, writes)."""


TRANSPORT_NAMES: tuple[str, ...] = (
    "socket",
    "dataBuffer",
    "offset",
    "_tempDataLen",
    "connected",
    "disconnecting",
    "_writeDisconnected",
    "producer",
)
"""Twisted ``tcp.Connection`` internals used to write straight to the socket."""

FASTPATH_ENV = "RATCHETPY_FASTPATH"
"""Set to ``0`` to force Autobahn's stock data path for every connection."""

DIRECT_WRITE_TYPES: tuple[type, ...] = (_tcp.Server,)
"""Transport types (exactly these, not subclasses) eligible for write-through."""


def fastpath_problems() -> list[str]:
    """
    What is missing for the fast path in the installed Autobahn/Twisted,
    checked on the classes and on a scratch (unconnected) protocol.
    Empty means the fast path can run.
    """
    problems: list[str] = []
    for name in FASTPATH_NAMES["protocol_class"]:
        if not hasattr(WebSocketServerProtocol, name):
            problems.append(f"autobahn WebSocketServerProtocol.{name}")
    try:
        from twisted.internet.testing import MemoryReactorClock, StringTransport

        # A memory reactor: importing ratchetpy must not install the global one.
        factory = build_factory(MemoryReactorClock(), {})
        factory.protocol = WebSocketServerProtocol
        proto = factory.buildProtocol(None)
        proto.makeConnection(StringTransport())
        # Complete an opening handshake: some state only exists once open.
        proto._dataReceived(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        if getattr(proto, "state", None) != STATE_OPEN:
            problems.append("a scratch Autobahn handshake did not reach STATE_OPEN")
        for name in FASTPATH_NAMES["protocol_instance"]:
            if not hasattr(proto, name):
                problems.append(f"autobahn protocol instance .{name}")
        stats = getattr(proto, "trafficStats", None)
        for name in FASTPATH_NAMES["traffic_stats"]:
            if not hasattr(stats, name):
                problems.append(f"autobahn trafficStats.{name}")
    except Exception as exc:  # an Autobahn change we cannot even probe
        problems.append(f"cannot build a scratch Autobahn protocol: {exc!r}")
    from twisted.internet.abstract import FileDescriptor

    # Instance attributes are set in FileDescriptor.__init__/tcp.Connection.__init__.
    assigned = set(FileDescriptor.__init__.__code__.co_names) | set(
        _tcp.Connection.__init__.__code__.co_names
    )
    for name in TRANSPORT_NAMES:
        if not hasattr(_tcp.Server, name) and name not in assigned:
            problems.append(f"twisted tcp.Server.{name}")
    return problems


def fastpath_enabled_by_env() -> bool:
    """False when ``RATCHETPY_FASTPATH`` is ``0``/``false``/``no``/``off``."""
    import os

    return os.environ.get(FASTPATH_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _self_check() -> bool:
    problems = fastpath_problems()
    if problems:
        import warnings

        warnings.warn(
            "ratchetpy: fast data path disabled, the installed Autobahn/Twisted lack "
            + ", ".join(problems)
            + "; every frame goes through Autobahn's stock path (correct, slower). "
            "Install the versions in setup.cfg to get it back.",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


FASTPATH_AVAILABLE: bool = _self_check()
"""Result of the import-time self-check of the names above."""


def direct_write(transport: Any, data: bytes) -> bool:
    """
    Write ``data`` to ``transport``, straight to the socket when nothing is
    buffered (saves a reactor turn and two epoll_ctl calls per message).

    Order is preserved: once anything is buffered, everything goes through
    ``transport.write``. TLS and other transports always use ``write``.
    Returns True when some bytes are left in the transport's buffer.
    """
    if (
        type(transport) in DIRECT_WRITE_TYPES
        and not transport.dataBuffer
        and not transport._tempDataLen
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
    ):
        try:
            sent = transport.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            # Let Twisted find and report the error in its own write path.
            transport.write(data)
            return True
        if sent == len(data):
            return False
        transport.write(data[sent:])
        return True
    transport.write(data)
    return bool(getattr(transport, "_tempDataLen", 1) or getattr(transport, "dataBuffer", b""))


def buffered_bytes(transport: Any) -> int:
    """Bytes written to ``transport`` that the kernel has not yet taken."""
    total = 0
    # TLS wraps the TCP transport: count its pending application data too.
    app_buffer = getattr(transport, "_appSendBuffer", None)
    if app_buffer:
        total += sum(len(chunk) for chunk in app_buffer)
    inner = getattr(transport, "transport", None)
    if inner is not None and hasattr(inner, "dataBuffer") and not hasattr(transport, "dataBuffer"):
        transport = inner
    data_buffer = getattr(transport, "dataBuffer", None)
    if data_buffer is not None:
        total += len(data_buffer) - getattr(transport, "offset", 0)
        total += getattr(transport, "_tempDataLen", 0)
    return total


try:
    from autobahn.websocket import USES_NVX as _USES_NVX
    from autobahn.websocket.xormasker import create_xor_masker as _create_xor_masker
except ImportError:  # pragma: no cover - Autobahn without NVX support
    _USES_NVX = False
    _create_xor_masker = None


def xor_masker() -> Any:
    """
    Autobahn's NVX (SIMD) unmasker as ``unmask(mask, payload) -> bytes``, or
    ``None`` when Autobahn was built without NVX.
    """
    if not _USES_NVX or _create_xor_masker is None:
        return None
    create = _create_xor_masker

    def unmask(mask: bytes, payload: bytes) -> bytes:
        return create(mask, len(payload)).process(payload)

    return unmask


# -- memory per idle connection ------------------------------------------------
#
# An open Autobahn protocol keeps ~100 instance attributes: 29 copies of the
# factory's options, ~30 flags at their initial None/False/0, and the parsed
# handshake. ``bind_protocol_class`` makes a per-server subclass holding the
# options and the initial flags as class attributes; ``trim_after_open`` then
# drops the instance copies equal to them (reads fall back to the class,
# writes recreate the instance attribute) and the handshake leftovers, and
# compacts the instance dict. Saves ~3 KiB per connection.

CONFIG_ATTRS: tuple[str, ...] = tuple(
    WebSocketProtocol.CONFIG_ATTRS_COMMON + WebSocketProtocol.CONFIG_ATTRS_SERVER
)
"""Options Autobahn copies from the factory into every protocol instance."""

CLASS_DEFAULTS: dict[str, Any] = {
    "autoPingPending": None,
    "autoPingPendingCall": None,
    "autoPingTimeoutCall": None,
    "closeHandshakeTimeoutCall": None,
    "openHandshakeTimeoutCall": None,
    "closedByMe": False,
    "droppedByMe": False,
    "failedByMe": False,
    "current_frame": None,
    "inside_message": False,
    "localCloseCode": None,
    "localCloseReason": None,
    "remoteCloseCode": None,
    "remoteCloseReason": None,
    "trackedTimings": None,
    "triggered": False,
    "wasClean": False,
    "wasCloseHandshakeTimeout": False,
    "wasMaxFramePayloadSizeExceeded": False,
    "wasMaxMessagePayloadSizeExceeded": False,
    "wasNotCleanReason": None,
    "wasOpenHandshakeTimeout": False,
    "wasServerConnectionDropTimeout": False,
    "wasServingFlashSocketPolicyFile": False,
    "_perMessageCompress": None,
    "data": b"",
    "connected": 1,
    "websocket_version": 13,
    "websocket_origin": "",
    "http_request_params": None,
}
"""Per-connection Autobahn state whose value after the handshake is usually this."""

LEARNED_DEFAULTS: tuple[str, ...] = (
    "_fast_rx",
    "_fast_tx",
    "_fast_max_frame",
    "_fastpath_wanted",
    "_flow",
    "_opened",
    "_sub_protocol",
    "autoPingPendingSent",
    "autoPingPendingSeq",
    "send_state",
    "websocket_protocol_in_use",
    "http_request_host",
    "http_request_path",
    "http_request_uri",
)
"""Immutable per-connection values whose first trimmed value becomes the
class default, so later connections with the same value need no copy."""

HANDSHAKE_LEFTOVERS: tuple[str, ...] = (
    "http_headers",
    "http_request_data",
    "http_response_data",
    "http_status_line",
    "_wskey",
    "websocket_protocols",
    "websocket_extensions",
)
"""Parsed-handshake state Autobahn only reads during the handshake."""

_IMMUTABLE = (type(None), bool, int, float, str, bytes)


class _LazySendQueue:
    """
    Class-level stand-in for Autobahn's per-connection ``send_queue`` deque
    (~0.7 KiB each, used only for ``sync``/``chopsize`` writes): the first
    access creates the instance's own deque. ratchetpy's writes check
    ``triggered`` instead, which Autobahn sets whenever the queue is in use.
    """

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        from collections import deque

        queue = obj.__dict__["send_queue"] = deque()
        return queue


def bind_protocol_class(base: type, factory: Any) -> type:
    """A subclass of ``base`` carrying ``factory``'s options as class attributes."""
    cls = type(base.__name__, (base,), {"__module__": base.__module__})
    for name, value in CLASS_DEFAULTS.items():
        setattr(cls, name, value)
    cls.send_queue = _LazySendQueue()  # type: ignore[attr-defined]
    # The options live on the class, so Autobahn's per-connection copy loop
    # (and its eagerly pformat()ed debug line, ~1/3 of a handshake's CPU)
    # has nothing to do.
    cls.CONFIG_ATTRS = ()  # type: ignore[attr-defined]
    refresh_protocol_class(cls, factory)
    return cls


def refresh_protocol_class(cls: type, factory: Any) -> None:
    """Copy ``factory``'s current options onto ``cls`` (after setProtocolOptions)."""
    import types

    for name in CONFIG_ATTRS:
        if hasattr(factory, name):
            value = getattr(factory, name)
            if isinstance(value, types.FunctionType):
                # a plain function on a class would become a bound method
                value = staticmethod(value)
            setattr(cls, name, value)


_TRIMMABLE = frozenset(CLASS_DEFAULTS) | frozenset(CONFIG_ATTRS) | frozenset(LEARNED_DEFAULTS)
_LEARNED = frozenset(LEARNED_DEFAULTS)
_LEFTOVERS = frozenset(HANDSHAKE_LEFTOVERS)


def trim_after_open(proto: Any) -> None:
    """Drop what an open connection does not need from ``proto.__dict__``."""
    cls = type(proto)
    own = cls.__dict__
    new = {}
    missing = object()
    for name, value in proto.__dict__.items():
        if name not in _TRIMMABLE:
            if name in _LEFTOVERS or (name == "send_queue" and not value):
                continue
            new[name] = value
            continue
        if name in _LEARNED and name not in own and type(value) in _IMMUTABLE:
            setattr(cls, name, value)
        default = getattr(cls, name, missing) if name in own else missing
        if default is value or (
            type(value) in _IMMUTABLE and type(default) is type(value) and default == value
        ):
            continue
        new[name] = value
    # A fresh dict: deleting keys never shrinks a dict's table.
    proto.__dict__ = new
