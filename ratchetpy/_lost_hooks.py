"""
Callbacks run once a connection is gone, after its component's
``on_close``: how the hub forgets a connection (leaves its channels,
unbinds its user) without every layer knowing about the hub.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

__all__ = ["on_lost", "run_lost_hooks"]

_log = Logger(namespace="ratchetpy.hub")


def on_lost(conn: Any, callback: Callable[[], None]) -> bool:
    """
    Run ``callback()`` once ``conn`` has closed (after its ``on_close``).

    Returns:
        ``False`` if ``conn`` is not a connection of a ratchetpy server (a
        test double), for which nothing will call it.
    """
    from .server.io import io_side
    from .websocket.connection import protocol_of

    protocol: Any = protocol_of(conn)
    if protocol is None:
        protocol = io_side(conn)
    if protocol is None:
        return False
    hooks = protocol.__dict__.get("_lost_hooks")
    if hooks is None:
        hooks = protocol._lost_hooks = []
    hooks.append(callback)
    return True


def run_lost_hooks(protocol: Any) -> None:
    """Called by the protocols once a connection is gone; each hook runs once."""
    hooks = protocol.__dict__.pop("_lost_hooks", None)
    for hook in hooks or ():
        try:
            hook()
        except Exception:  # noqa: BLE001 - one failing hook must not stop the others
            _log.failure("A cleanup hook for a closed connection failed")
