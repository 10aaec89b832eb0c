"""
Memory per idle connection: Autobahn state moved from instances to a class.

An open Autobahn protocol keeps ~100 instance attributes: 29 copies of the
factory's options, ~30 flags at their initial None/False/0, and the parsed
handshake. ``bind_protocol_class`` makes a per-server subclass holding the
options and the initial flags as class attributes; ``trim_after_open`` then
drops the instance copies equal to them (reads fall back to the class,
writes recreate the instance attribute) and the handshake leftovers, and
compacts the instance dict. Saves ~3 KiB per connection.

Used only with the fast path (see ``_selfcheck``): it depends on how
Autobahn copies its options (``CONFIG_ATTRS_*``) and on its initial flags.
"""

from __future__ import annotations

from typing import Any

from ._engine import WebSocketServerProtocol

__all__ = [
    "CLASS_DEFAULTS",
    "LEARNED_DEFAULTS",
    "HANDSHAKE_LEFTOVERS",
    "config_attrs",
    "bind_protocol_class",
    "refresh_protocol_class",
    "trim_after_open",
]


def config_attrs() -> tuple[str, ...]:
    """Options Autobahn copies from the factory into every protocol instance."""
    return tuple(
        WebSocketServerProtocol.CONFIG_ATTRS_COMMON + WebSocketServerProtocol.CONFIG_ATTRS_SERVER
    )


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

        queue: deque[Any] = deque()
        obj.__dict__["send_queue"] = queue
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
    cls._trimmable = (  # type: ignore[attr-defined]
        frozenset(CLASS_DEFAULTS) | frozenset(config_attrs()) | frozenset(LEARNED_DEFAULTS)
    )
    refresh_protocol_class(cls, factory)
    return cls


def refresh_protocol_class(cls: type, factory: Any) -> None:
    """Copy ``factory``'s current options onto ``cls`` (after setProtocolOptions)."""
    import types

    for name in config_attrs():
        if hasattr(factory, name):
            value = getattr(factory, name)
            if isinstance(value, types.FunctionType):
                # a plain function on a class would become a bound method
                value = staticmethod(value)
            setattr(cls, name, value)


_LEARNED = frozenset(LEARNED_DEFAULTS)
_LEFTOVERS = frozenset(HANDSHAKE_LEFTOVERS)


def trim_after_open(proto: Any) -> None:
    """Drop what an open connection does not need from ``proto.__dict__``."""
    cls = type(proto)
    own = cls.__dict__
    trimmable = cls._trimmable
    new = {}
    missing = object()
    for name, value in proto.__dict__.items():
        if name not in trimmable:
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
