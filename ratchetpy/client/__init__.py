"""
WebSocket clients: Ratchet's Pawl for ratchetpy, and more.

- ``connect(url, component)``: one connection from Twisted code, with the
  server's component interface (``on_open``/``on_message``/``on_close``/
  ``on_error``), timeouts, keepalive and TLS checks
  (``ratchetpy.client.connect``);
- ``ReconnectingClient``: a connection kept open across server restarts,
  with jittered backoff and a bounded send queue;
- ``ratchetpy.client.sync``: a blocking client for scripts (the
  ``ratchetpy[client]`` extra), and ``ratchetpy.client.phpws`` on it for
  ``phpws`` routes;
- ``python -m ratchetpy.client URL``: a command line (``--help``).

Every failure to connect is a ``ClientError`` subclass
(``ratchetpy.exceptions``) whose message says what happened and what to do.
Guide: docs/client.md.
"""

from __future__ import annotations

from ..exceptions import (
    ClientError,
    ClientTimeout,
    ClientUnavailable,
    ConnectFailed,
    ConnectionClosed,
    ConnectTimeout,
    HandshakeRefused,
    HandshakeTimeout,
    KeepaliveTimeout,
    SendQueueFull,
    SubprotocolRefused,
    TlsError,
)
from .connect import connect
from .connection import ClientConnection
from .options import ClientOptions
from .reconnecting import ReconnectingClient

__all__ = [
    "connect",
    "ClientConnection",
    "ClientOptions",
    "ReconnectingClient",
    "ClientError",
    "ClientTimeout",
    "ClientUnavailable",
    "ConnectFailed",
    "ConnectTimeout",
    "HandshakeTimeout",
    "KeepaliveTimeout",
    "HandshakeRefused",
    "SubprotocolRefused",
    "TlsError",
    "SendQueueFull",
    "ConnectionClosed",
]
