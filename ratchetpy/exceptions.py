"""
The one exception hierarchy of ratchetpy.

.. code-block:: text

    RatchetError
    ├── ComponentError          a component does not fit the layer it is given to
    ├── ConfigurationError      a bad option value (size, timeout, address, ...)
    │   ├── ListenError             an endpoint cannot be listened on (port in use, ...)
    │   └── MetricsUnavailable      metrics asked for, prometheus-client not installed
    ├── HubError                a hub call that cannot work (a bad channel name, close code)
    ├── SwooleError             a Swoole-style call that cannot work (a bad header, ...)
    ├── WampError               a WAMP v1 message breaks the protocol (closes 1007)
    │   └── JsonError               the message is not valid JSON
    ├── HttpError               an HTTP request is refused; carries the status
    │   ├── BadRequest              400: malformed request head
    │   ├── RequestTimeout          408: the head did not arrive in time
    │   ├── RequestHeadTooLarge     431: the head is over the size limit
    │   ├── HttpVersionNotSupported 505
    │   └── PushApiError            a publish API request is refused (its message is sent)
    ├── RedisError              a Redis command did not succeed (ratchetpy.redis)
    │   ├── RedisUnavailable        no usable connection: down, lost, too many pending
    │   │   ├── RedisTimeout            no reply in time (the connection is dropped)
    │   │   └── RedisProtocolError      the server sent bytes that are not RESP
    │   └── RedisReplyError         the server answered with an error reply
    │       └── RedisClusterError       a Redis Cluster cannot run it now (CLUSTERDOWN, CROSSSLOT, ...)
    ├── SessionError            a PHP session could not be read (ratchetpy.session)
    │   ├── SessionDataError        malformed, truncated, tampered or oversized data
    │   └── SessionStoreUnavailable the session store is down or did not answer in time
    ├── ClientError             a WebSocket client could not connect (ratchetpy.client)
    │   ├── ConnectFailed           TCP connect failed (refused, unreachable, name not found)
    │   ├── ClientTimeout           also a TimeoutError
    │   │   ├── ConnectTimeout          TCP did not connect in time
    │   │   ├── HandshakeTimeout        the server did not answer the upgrade in time
    │   │   └── KeepaliveTimeout        the server stopped answering pings
    │   ├── HandshakeRefused        the server answered something other than 101
    │   ├── SubprotocolRefused      the server accepted none of the offered subprotocols
    │   ├── TlsError                certificate not trusted, wrong hostname, TLS failure
    │   ├── SendQueueFull           a reconnecting client's queue is over its bound
    │   ├── ConnectionClosed        the connection closed (blocking client)
    │   └── ClientUnavailable       also an ImportError: the ``client`` extra is missing
    └── PhpWsPacketError        a phpws message is not one JSON packet (ratchetpy.phpws)

``ComponentError`` and ``ConfigurationError`` also derive from the builtin
``TypeError``/``ValueError`` so generic handlers keep working.

Exceptions raised by user components are never wrapped: they reach the
component's ``on_error(conn, exc)`` as they were raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

__all__ = [
    "RatchetError",
    "SessionError",
    "SessionDataError",
    "SessionStoreUnavailable",
    "ClientError",
    "PhpWsPacketError",
    "ConnectFailed",
    "ClientTimeout",
    "ConnectTimeout",
    "HandshakeTimeout",
    "KeepaliveTimeout",
    "HandshakeRefused",
    "SubprotocolRefused",
    "TlsError",
    "SendQueueFull",
    "ConnectionClosed",
    "ClientUnavailable",
    "ComponentError",
    "ConfigurationError",
    "ListenError",
    "MetricsUnavailable",
    "HttpError",
    "BadRequest",
    "RequestTimeout",
    "RequestHeadTooLarge",
    "HttpVersionNotSupported",
    "PushApiError",
    "WampError",
    "JsonError",
    "HubError",
    "SwooleError",
    "RedisError",
    "RedisUnavailable",
    "RedisTimeout",
    "RedisProtocolError",
    "RedisReplyError",
    "RedisClusterError",
]


class RatchetError(Exception):
    """Base class of every exception ratchetpy raises itself."""


class ComponentError(RatchetError, TypeError):
    """A component lacks a method its layer calls, or uses PHP-style names."""


class ConfigurationError(RatchetError, ValueError):
    """An option was given a value that cannot work."""


class ListenError(ConfigurationError):
    """An endpoint could not be listened on (port in use, no permission, ...)."""


class MetricsUnavailable(ConfigurationError, ImportError):
    """
    Metrics were asked for but ``prometheus-client`` is not installed
    (``pip install 'ratchetpy[metrics]'``). Also an ``ImportError``: it is
    raised by importing ``ratchetpy.hub.metrics``.
    """


class HubError(RatchetError, ValueError):
    """A hub call with an argument that cannot work (a bad channel name, ...)."""


class SwooleError(RatchetError, ValueError):
    """
    A call of the Swoole-style API (``ratchetpy.swoole``) that cannot work:
    a response header with a line break, a status out of range, a server
    call made from a ``task()`` thread, ...
    """


class HttpError(RatchetError):
    """
    An HTTP request is refused with ``status``.

    ``reason`` is the status line's phrase and ``headers`` extra response
    headers; ``detail`` is for the log only and never sent to the peer.
    """

    status: int = 400

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        if status is not None:
            self.status = status
        self.detail = detail
        self.reason = reason or HTTPStatus(self.status).phrase
        self.headers = tuple(headers)
        super().__init__(detail or self.reason)


class BadRequest(HttpError):
    """The request head is not valid HTTP/1.x."""

    status = 400


class RequestTimeout(HttpError):
    """The request head did not arrive within the configured time."""

    status = 408


class RequestHeadTooLarge(HttpError):
    """The request head is larger than ``HttpServer(max_request_size=...)``."""

    status = 431


class HttpVersionNotSupported(HttpError):
    """The request is not HTTP/1.1 (WebSocket needs 1.1)."""

    status = 505


class PushApiError(HttpError):
    """
    A publish API request is refused with ``status`` (400 by default).

    Unlike other ``HttpError``s, ``detail`` is sent: it is the ``error``
    of the JSON answer, telling the backend what to fix. It never holds
    the key.
    """

    status = 400


class SessionError(RatchetError):
    """A PHP session could not be read (``ratchetpy.session``)."""


class SessionDataError(SessionError, ValueError):
    """
    Session data (or a PHP-serialized value, or a Laravel cookie) is
    malformed, truncated, tampered with or over the decoder's limits.

    The SessionProvider turns it into an empty session and a log line; it
    never reaches the client.
    """


class SessionStoreUnavailable(SessionError):
    """
    The session store (Redis, memcached, the files) could not be read now:
    down, unreachable or too slow. The SessionProvider gives the connection
    an empty session and logs it once per outage.
    """


class ClientError(RatchetError):
    """A WebSocket client could not connect or lost its server (``ratchetpy.client``)."""


class PhpWsPacketError(RatchetError, ValueError):
    """A phpWebSocketServer-mode message is not one JSON packet (``ratchetpy.phpws``): the client is closed."""


class ConnectFailed(ClientError):
    """The TCP connection could not be made: refused, unreachable, unknown host name."""


class ClientTimeout(ClientError, TimeoutError):
    """A client step did not finish in time; also the builtin ``TimeoutError``."""


class ConnectTimeout(ClientTimeout):
    """TCP did not connect within ``connect_timeout`` (nothing accepts on that port)."""


class HandshakeTimeout(ClientTimeout):
    """TCP connected but the server did not answer the upgrade within ``handshake_timeout``."""


class KeepaliveTimeout(ClientTimeout):
    """A ping went unanswered for ``keepalive_timeout``: the server is gone or stuck."""


class HandshakeRefused(ClientError):
    """
    The server answered the upgrade with something other than ``101``.

    ``status`` and ``reason`` are its status line, ``headers`` its headers
    (names lower-cased) and ``body`` at most the first KiB of its body.
    """

    def __init__(
        self,
        url: str,
        status: int,
        reason: str = "",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        self.url = url
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})
        self.body = body
        text = body.decode("utf-8", "replace").strip().replace("\r", " ").replace("\n", " ")
        super().__init__(
            f"{url} answered {status} {reason}".rstrip()
            + " instead of 101 Switching Protocols"
            + (f": {text[:200]}" if text else "")
        )


class SubprotocolRefused(ClientError):
    """
    The server accepted none of the subprotocols the client offered
    (``offered``); ``server_speaks`` lists what it named, if anything.
    """

    def __init__(self, url: str, offered: Sequence[str], server_speaks: Sequence[str] = ()) -> None:
        self.url = url
        self.offered = tuple(offered)
        self.server_speaks = tuple(server_speaks)
        speaks = f"; it speaks {list(self.server_speaks)}" if self.server_speaks else ""
        super().__init__(
            f"{url} accepted none of the subprotocols {list(self.offered)}{speaks}"
        )


class TlsError(ClientError):
    """The TLS handshake failed: certificate not trusted, wrong host name, no common cipher."""


class SendQueueFull(ClientError):
    """
    A message was sent while a reconnecting client is disconnected and its
    queue already holds ``max_queued`` messages: the message is not queued.
    """


class ConnectionClosed(ClientError):
    """
    The connection is closed (blocking client): ``code`` and ``reason`` are
    the close frame's, ``code`` 1006 when the connection was lost without one.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed with {code}" + (f" ({reason})" if reason else ""))


class ClientUnavailable(ClientError, ImportError):
    """
    The blocking client needs the ``websockets`` library:
    ``pip install 'ratchetpy[client]'``.
    """


class WampError(RatchetError):
    """
    A WAMP v1 message breaks the protocol (Ratchet's ``Ratchet\\Wamp\\Exception``).

    ``WampServer`` closes the connection with 1007 when this is raised while
    a message is handled, whether by the protocol layer (a malformed message)
    or by your ``on_call``/``on_publish``/... handler: raise it to drop a
    client that misbehaves.
    """


class JsonError(WampError, ValueError):
    """A WAMP message is not valid JSON (Ratchet's ``JsonException``)."""


class RedisError(RatchetError):
    """A Redis command did not succeed (``ratchetpy.redis``)."""


class RedisUnavailable(RedisError):
    """
    There is no usable connection to Redis: it is down or unreachable, the
    connection was lost while the command waited, or too many commands are
    already waiting. Raised at once rather than queueing, so a caller never
    waits on an outage.
    """


class RedisTimeout(RedisUnavailable):
    """
    No reply came within the configured timeout. The connection is dropped
    and made again, since a connection that stops answering (a half-open
    socket, a paused server) otherwise looks healthy forever.

    The command may still have run (a paused server that resumes reads
    what it was sent): only idempotent commands are safe to repeat.
    """


class RedisProtocolError(RedisUnavailable):
    """The server sent bytes that are not RESP; the connection is dropped."""


class RedisReplyError(RedisError):
    """
    Redis answered the command with an error reply (``-ERR ...``).

    ``code`` is the reply's first word (``ERR``, ``WRONGTYPE``,
    ``NOSCRIPT``, ``NOPERM``, ...) and ``message`` the whole text as the
    server sent it. Only that command fails; the connection stays up.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        first = message.split(" ", 1)[0]
        self.code = first if first.isupper() else "ERR"


class RedisClusterError(RedisReplyError):
    """
    A Redis Cluster could not run the command: it is down or reconfiguring
    (``CLUSTERDOWN``, ``TRYAGAIN``: the client refreshes its slot map and
    fails at once rather than waiting), a redirection led to another
    redirection, or the command's keys lie in different slots
    (``CROSSSLOT``; the message names the keys and their slots).

    ``code`` is the cluster's reply code (``CLUSTERDOWN``, ``TRYAGAIN``,
    ``CROSSSLOT``, ``MOVED``, ``ASK``).
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code
