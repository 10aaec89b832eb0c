# -*- test-case-name: tests.test_app -*-
"""
How ``App.route`` wraps what it is given, as Ratchet's ``App::route`` does.

``wrap_component`` turns a message component into ``WsServer(component)``
and a WAMP application (``is_wamp_component``) into
``WsServer(WampServer(component))``, both with keepalive pings every
``DEFAULT_KEEPALIVE`` seconds; an ``HttpServerInterface`` is routed as is.
``wraps_component`` follows the ``.component`` links of what was routed.
"""

from __future__ import annotations

from typing import Any

from .exceptions import ComponentError
from .http.interfaces import HttpServerInterface
from .hub import Hub
from .websocket.admission import Admission
from .websocket.server import DEFAULT_MAX_MESSAGE_SIZE, WsServer

__all__ = ["DEFAULT_KEEPALIVE", "is_wamp_component", "wrap_component", "wraps_component"]

DEFAULT_KEEPALIVE = 30.0
"""Seconds between keepalive pings on routed WebSocket components (Ratchet's 30)."""


def is_wamp_component(component: object) -> bool:
    """True for a WAMP v1 application (it has ``on_call`` and ``on_publish``)."""
    return callable(getattr(component, "on_call", None)) and callable(
        getattr(component, "on_publish", None)
    )


def wrap_component(
    component: Any,
    *,
    keepalive: float = DEFAULT_KEEPALIVE,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    log_connections: bool = True,
    hub: Hub | None = None,
    register: bool | None = None,
    admission: Admission | None = None,
    idle_timeout: float | None = None,
    idle_counts_pongs: bool = False,
) -> Any:
    """
    Wrap ``component`` for a route as Ratchet's ``App::route`` does.

    - an ``HttpServerInterface`` (``WsServer``, ``OriginCheck``, a plain HTTP
      controller) is used as is, with no keepalive added;
    - a WAMP application (``on_call``/``on_publish``) becomes
      ``WsServer(WampServer(component))`` with keepalive;
    - a message component becomes ``WsServer(component)`` with keepalive.

    ``hub``, ``register``, ``admission``, ``idle_timeout`` and
    ``idle_counts_pongs`` go to the ``WsServer`` it creates.

    Raises:
        ComponentError: ``component`` is none of these.
    """
    if isinstance(component, (HttpServerInterface, WsServer)):
        return component
    if is_wamp_component(component):
        try:
            from .wamp import WampServer
        except ImportError as exc:
            raise ComponentError(
                f"{type(component).__name__} is a WAMP application (it has on_call and "
                "on_publish), but ratchetpy.wamp is not available in this installation"
            ) from exc
        inner: Any = WampServer(component)
    elif callable(getattr(component, "on_message", None)):
        inner = component
    else:
        raise ComponentError(
            f"cannot route {component!r}: it is not a component (a message component needs "
            "on_open, on_message, on_close and on_error; a WAMP one on_call and on_publish too; "
            "an HTTP controller subclasses ratchetpy.HttpServerInterface)"
        )
    ws = WsServer(
        inner,
        max_message_size=max_message_size,
        log_connections=log_connections,
        hub=hub,
        register=register,
        admission=admission,
        idle_timeout=idle_timeout,
        idle_counts_pongs=idle_counts_pongs,
    )
    ws.enable_keep_alive(keepalive)
    return ws


def wraps_component(outer: Any, inner: Any) -> bool:
    """True if ``inner`` is ``outer`` or under it (along ``.component`` links, 16 at most)."""
    for _ in range(16):
        if outer is inner:
            return True
        outer = getattr(outer, "component", None)
        if outer is None:
            return False
    return False
