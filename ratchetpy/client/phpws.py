# -*- test-case-name: tests.client.test_examples -*-
"""
A blocking client that talks like phpWebSocketServer's PHP client
(``websocketPhp``), for Python backend scripts on a ``phpws`` route:

    from ratchetpy.client.phpws import connect_php

    with connect_php("ws://127.0.0.1:8080/php", ident="billing") as php:
        php.feedback("50 % done", uuid=browser_uuid)   # to one browser
        php.feedback("invoice ready", ident="mailer")  # to another script

It sends ``Client-Type: php`` and ``Ident: <ident>`` with the handshake
(and ``Origin: http://<host>`` unless told otherwise), waits for the
``ready`` packet (its ``uuid`` is kept), and after each packet it sends
waits for the server's ``{"opcode":"next"}``, as the PHP client does;
packets that arrive meanwhile (feedback forwarded to this script's ident)
are kept for ``receive()``. Built on ``ratchetpy.client.sync``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from ..exceptions import ClientError, ConnectionClosed
from .options import parse_url
from .sync import SyncConnection, connect

__all__ = ["connect_php", "PhpClient"]


class PhpClient:
    """
    A PHP-type client of a ``phpws`` route (from ``connect_php()``).

    Attributes:
        uuid: the id the server gave this client in its ``ready`` packet.
        ident: the ``Ident`` it connected with.
        timeout: seconds to wait for each ``next`` (and for ``ready``).
    """

    def __init__(self, ws: SyncConnection, ident: str, timeout: float) -> None:
        self.ws = ws
        self.ident = ident
        self.timeout = timeout
        self.inbox: deque[dict[str, Any]] = deque()
        ready = self._next_packet(timeout)
        if ready.get("opcode") != "ready":
            raise ClientError(f"{ws.url}: expected the ready packet, got {ready!r}")
        self.uuid = str(ready.get("uuid", ""))

    def _next_packet(self, timeout: float | None) -> dict[str, Any]:
        message = self.ws.recv(timeout=timeout)
        try:
            packet = json.loads(message)
        except ValueError:
            raise ClientError(f"{self.ws.url}: the server sent a non-JSON message {message!r}") from None
        if not isinstance(packet, dict):
            raise ClientError(f"{self.ws.url}: the server sent {packet!r}, not a JSON object")
        if packet.get("opcode") == "close":
            error = packet.get("error") or "closed by the server"
            raise ConnectionClosed(1000, str(error))
        return packet

    def send_packet(self, packet: dict[str, Any]) -> None:
        """
        Send ``packet`` (it needs an ``opcode``) and wait for the server's
        ``next``; other packets that arrive first go to the inbox.

        Raises:
            TimeoutError: no ``next`` within ``timeout``.
            ConnectionClosed: the server closed (``{"opcode":"close"}``).
        """
        self.ws.send(json.dumps(packet))
        deadline = time.monotonic() + self.timeout
        while True:
            packet = self._next_packet(max(0.0, deadline - time.monotonic()))
            if packet.get("opcode") == "next":
                return
            self.inbox.append(packet)

    def feedback(
        self, message: Any = "", *, uuid: str | None = None, ident: str | None = None, **fields: Any
    ) -> None:
        """
        Forward ``message`` (with ``fields``) to the browser whose uuid is
        ``uuid``, or to the client whose ident is ``ident``. The server does
        not say whether anyone got it.
        """
        if (uuid is None) == (ident is None):
            raise ValueError("feedback() needs exactly one of uuid= or ident=")
        packet: dict[str, Any] = {"opcode": "feedback", "message": message, **fields}
        if uuid is not None:
            packet["uuid"] = uuid
        else:
            packet["ident"] = ident
        self.send_packet(packet)

    def broadcast(self, message: Any, **fields: Any) -> None:
        """Send ``message`` to every browser-type client (never to PHP-type ones)."""
        self.send_packet({"opcode": "broadcast", "message": message, **fields})

    def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """
        The next packet sent to this client (a forwarded ``feedback``, ...).

        Raises:
            TimeoutError: nothing within ``timeout`` seconds.
            ConnectionClosed: the server closed.
        """
        if self.inbox:
            return self.inbox.popleft()
        return self._next_packet(timeout)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Packets until the connection closes."""
        while True:
            try:
                yield self.receive()
            except ConnectionClosed:
                return

    def close(self) -> None:
        """Say ``quit`` (the server then closes) and close."""
        try:
            self.ws.send(json.dumps({"opcode": "quit"}))
        except ConnectionClosed:
            pass
        self.ws.close()

    def __enter__(self) -> PhpClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def connect_php(
    url: str,
    ident: str = "",
    *,
    origin: str | None = None,
    timeout: float = 10.0,
    **options: Any,
) -> PhpClient:
    """
    Connect to a ``phpws`` route as a PHP-type client and wait for ``ready``.

    Args:
        url: the route, e.g. ``ws://127.0.0.1:8080/php``.
        ident: the name other scripts reach this one by (``feedback(ident=...)``).
        origin: the ``Origin`` header (default ``http://<host of url>``, as
            the PHP client sends).
        timeout: seconds to wait for ``ready`` and for each ``next``.
        **options: ``ratchetpy.client.sync.connect()``'s options.

    Raises:
        ClientError: as ``ratchetpy.client.sync.connect()``; also when the
            server closes at once (``{"opcode":"close","error":...}``).
    """
    target = parse_url(url)
    headers = {"Client-Type": "php", **dict(options.pop("headers", None) or {})}
    if ident:
        headers["Ident"] = ident
    ws = connect(
        url, headers=headers, origin=origin or f"http://{target.host_header}", **options
    )
    try:
        return PhpClient(ws, ident, timeout)
    except BaseException:
        ws.close()
        raise
