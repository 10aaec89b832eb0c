# -*- test-case-name: tests.http.test_origin -*-
"""
``OriginCheck``: refuse (403) requests from pages on other sites.

As in Ratchet, only the **host** of the ``Origin`` header is compared (the
scheme and port are ignored), a request without ``Origin`` is refused, and
the check runs before the WebSocket handshake checks (so a plain GET with
a bad Origin gets 403, not 426).

Beyond Ratchet: entries may be written as URLs (``http://example.com:8080``
is read as ``example.com``; in Ratchet such an entry never matches), ``*``
allows every origin, ``*.example.com`` allows any subdomain of
``example.com``, and ``same-host`` allows a page served under the host
the request was sent to (the ``Host`` header). ``allow_missing=True``
lets clients that send no ``Origin`` (non-browser clients) through.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit
from weakref import WeakSet

from twisted.logger import Logger

from ..interfaces import ConnectionInterface, check_component
from .interfaces import HttpServerInterface
from .request import Request
from .response import close_response

__all__ = ["OriginCheck", "origin_host", "SAME_HOST"]

_log = Logger(namespace="ratchetpy.http")

SAME_HOST = "same-host"
"""Allowed-origins entry: the Origin's host equals the request's Host."""


def origin_host(value: str) -> str:
    """
    The host part of an Origin value or allowed-origins entry, lower-cased.

    ``http://Example.com:8080`` gives ``example.com``; a bare
    ``example.com:8080`` gives ``example.com``; ``null`` stays ``null``.
    """
    value = value.strip()
    if "://" in value:
        try:
            host = urlsplit(value).hostname
        except ValueError:
            host = None
        return (host or "").lower()
    if value.startswith("["):
        return value[1 : value.find("]")].lower() if "]" in value else value.lower()
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.lower()


class OriginCheck(HttpServerInterface):
    """
    Pass requests whose ``Origin`` host is allowed on to ``component``;
    refuse the others with ``403 Forbidden``.

    Args:
        component: the ``HttpServerInterface`` to protect (a ``WsServer``).
        allowed_origins: hosts (``example.com``), ``*``, ``*.example.com``
            or ``same-host``. ``allowed_origins`` is a list you may change
            later (``check.allowed_origins.append("example.org")``).
        allow_missing: accept requests without an ``Origin`` header
            (Ratchet refuses them).
    """

    def __init__(
        self,
        component: Any,
        allowed_origins: Iterable[str] = (),
        *,
        allow_missing: bool = False,
    ) -> None:
        check_component(
            component, ("on_open", "on_message", "on_close", "on_error"), "OriginCheck"
        )
        if isinstance(allowed_origins, str):
            allowed_origins = [allowed_origins]
        self.component = component
        # Refused connections, here rather than flagged on the connection.
        self._refused: WeakSet[ConnectionInterface] = WeakSet()
        self.allowed_origins: list[str] = list(allowed_origins)
        self.allow_missing = allow_missing

    def is_allowed(self, origin: str | None, request_host: str = "") -> bool:
        """True if a request with this ``Origin`` value may pass."""
        if origin is None:
            return self.allow_missing or "*" in self.allowed_origins
        host = origin_host(origin)
        for entry in self.allowed_origins:
            entry = entry.strip()
            if entry == "*":
                return True
            if entry == SAME_HOST:
                if host and host == request_host.lower():
                    return True
                continue
            if entry.startswith("*."):
                suffix = origin_host(entry[1:])
                if host.endswith(suffix) and len(host) > len(suffix):
                    return True
                continue
            if host and host == origin_host(entry):
                return True
        return False

    def on_open(self, conn: ConnectionInterface, request: Request) -> Any:
        values = request.headers.get_all("origin")
        origin = values[0] if values else None
        if self.is_allowed(origin, request.host):
            return self.component.on_open(conn, request)
        if origin is None:
            why = "it sent no Origin header"
            fix = "browsers always send one; for other clients use allowed origins ['*'] or allow_missing=True (--origin '*')"
        else:
            host = origin_host(origin) or origin
            why = f"Origin {origin!r} (host {host!r}) is not allowed"
            fix = f"to allow it, add {host!r} to the allowed origins (App.route(path, component, [{host!r}]) or --origin {host})"
        _log.info(
            "Refused {path} from {peer} with 403: {why} (allowed: {allowed}); {fix}",
            path=request.path,
            peer=conn.remote_address,
            why=why,
            allowed=", ".join(self.allowed_origins) or "none",
            fix=fix,
        )
        self._refused.add(conn)
        close_response(conn, 403)
        return None

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        if conn not in self._refused:
            return self.component.on_message(conn, msg)
        return None

    def on_close(self, conn: ConnectionInterface) -> Any:
        if conn in self._refused:
            self._refused.discard(conn)
            return None
        return self.component.on_close(conn)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Any:
        if conn not in self._refused:
            return self.component.on_error(conn, exc)
        return None
