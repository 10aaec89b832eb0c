# -*- test-case-name: tests.client.test_sync -*-
"""
A blocking WebSocket client for scripts, threads and other frameworks'
request handlers: no reactor, no callbacks.

    from ratchetpy.client.sync import connect

    with connect("ws://127.0.0.1:8080/chat") as ws:
        ws.send("hello")
        print(ws.recv(timeout=5))

Built on the ``websockets`` library's sync client (the ``ratchetpy[client]``
extra), not on Autobahn in a reactor thread: it is well kept and complete
(RFC 6455, compression, keepalive pings), and it runs in the caller's
thread with no reactor shared with the caller's code, so it also works in a
process that runs a Twisted reactor of its own, or in a WSGI worker. This
module only opens the socket itself (to tell a TCP failure from a handshake
failure) and turns every failure into the ``ClientError`` subclasses the
Twisted client raises, with the same messages.

Proxy variables from the environment are not used.
"""

from __future__ import annotations

import inspect
import socket
import ssl as ssl_module
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from ..exceptions import (
    ClientError,
    ClientUnavailable,
    ConfigurationError,
    ConnectFailed,
    ConnectionClosed,
    ConnectTimeout,
    HandshakeRefused,
    HandshakeTimeout,
    SubprotocolRefused,
    TlsError,
)
from ..version import __version__
from .options import DEFAULT_MAX_MESSAGE_SIZE, ClientOptions, Target, parse_url

__all__ = ["connect", "SyncConnection"]


def _websockets() -> Any:
    try:
        from websockets import exceptions
        from websockets.sync import client
    except ImportError as exc:
        raise ClientUnavailable(
            "ratchetpy.client.sync needs the websockets library: "
            "pip install 'ratchetpy[client]'"
        ) from exc
    return client, exceptions


def _ssl_context(options: ClientOptions, context: ssl_module.SSLContext | None) -> Any:
    if context is not None:
        return context
    if options.insecure:
        insecure = ssl_module.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl_module.CERT_NONE
        return insecure
    try:
        return ssl_module.create_default_context(cafile=options.ca_file)
    except (OSError, ssl_module.SSLError) as exc:
        raise ConfigurationError(
            f"ca_file {options.ca_file!r} cannot be used: {getattr(exc, 'strerror', None) or exc}"
        ) from None


def _tls_error(target: Target, exc: ssl_module.SSLError) -> TlsError:
    where = f"{target.host}:{target.port}"
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        message = str(exc.verify_message or exc)
        if "mismatch" in message.lower():
            return TlsError(
                f"TLS to {where}: the server's certificate is not valid for {target.host!r} "
                f"({message}); connect with the name the certificate holds"
            )
        return TlsError(
            f"TLS to {where}: the server's certificate is not trusted ({message}); "
            "pass ca_file= with the CA that signed it"
        )
    return TlsError(f"TLS to {where} failed: {exc}")


class SyncConnection:
    """
    An open connection of the blocking client (from ``connect()``).

    Use it as a context manager (closed with 1000 on exit) or call
    ``close()``. ``send`` may be called from another thread while one
    thread waits in ``recv``.

    Attributes:
        url: the URL it was opened with.
        sub_protocol: the subprotocol the server chose, or ``None``.
        response_headers: the server's 101 headers, names lower-cased.
        remote_address: the server's address.
    """

    def __init__(self, ws: Any, target: Target, exceptions: Any) -> None:
        self._ws = ws
        self._exceptions = exceptions
        self.url = target.url
        self.sub_protocol: str | None = ws.subprotocol
        self.response_headers = {k.lower(): v for k, v in ws.response.headers.raw_items()}
        self.remote_address = str(ws.remote_address[0]) if ws.remote_address else ""

    @property
    def close_code(self) -> int | None:
        """The close code once closed (1006 if lost without a close frame), else ``None``."""
        return self._ws.close_code  # type: ignore[no-any-return]

    @property
    def close_reason(self) -> str:
        """The close frame's reason, once closed."""
        return self._ws.close_reason or ""

    def _closed(self, exc: Any) -> ConnectionClosed:
        frame = exc.rcvd or exc.sent
        if frame is None:
            return ConnectionClosed(1006, "connection lost without a close frame")
        return ConnectionClosed(frame.code, frame.reason)

    def send(self, data: str | bytes) -> None:
        """
        Send one message: text for ``str``, binary for ``bytes``.

        Raises:
            ConnectionClosed: the connection is closed.
            TypeError: ``data`` is neither ``str`` nor ``bytes``.
        """
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        try:
            self._ws.send(data)
        except self._exceptions.ConnectionClosed as exc:
            raise self._closed(exc) from None

    def recv(self, timeout: float | None = None) -> str | bytes:
        """
        The next message: ``str`` for text, ``bytes`` for binary.

        Args:
            timeout: seconds to wait; ``None`` waits until a message comes
                or the connection closes.

        Raises:
            TimeoutError: nothing came within ``timeout`` (the connection
                stays open).
            ConnectionClosed: the connection is closed (``code``, ``reason``).
        """
        try:
            return self._ws.recv(timeout=timeout)  # type: ignore[no-any-return]
        except self._exceptions.ConnectionClosed as exc:
            raise self._closed(exc) from None

    def __iter__(self) -> Iterator[str | bytes]:
        """
        Messages until the connection closes: the loop ends quietly on a
        normal close (1000, 1001) and raises ``ConnectionClosed`` otherwise.
        """
        while True:
            try:
                yield self.recv()
            except ConnectionClosed as closed:
                if closed.code in (1000, 1001):
                    return
                raise

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason``, waiting for the server's answer (bounded)."""
        self._ws.close(code, reason)

    def __enter__(self) -> SyncConnection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _open_socket(target: Target, options: ClientOptions) -> socket.socket:
    where = f"{target.host}:{target.port}"
    try:
        return socket.create_connection((target.host, target.port), timeout=options.connect_timeout)
    except TimeoutError:
        raise ConnectTimeout(
            f"no TCP connection to {where} within {options.connect_timeout:g} s "
            "(nothing accepts there, or a firewall drops the packets)"
        ) from None
    except ConnectionRefusedError:
        raise ConnectFailed(
            f"could not connect to {where}: connection refused (is the server running?)"
        ) from None
    except socket.gaierror:
        raise ConnectFailed(f"could not connect to {where}: host name not found") from None
    except OSError as exc:
        raise ConnectFailed(f"could not connect to {where}: {exc.strerror or exc}") from None


def connect(
    url: str,
    *,
    subprotocols: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    connect_timeout: float = 10.0,
    handshake_timeout: float = 10.0,
    close_timeout: float = 5.0,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    keepalive_interval: float | None = 20.0,
    keepalive_timeout: float = 20.0,
    ca_file: str | None = None,
    ssl_context: ssl_module.SSLContext | None = None,
    insecure: bool = False,
    user_agent: str | None = None,
) -> SyncConnection:
    """
    Open a connection and return it once the handshake succeeded.

    The options mean what they mean for ``ratchetpy.client.connect()``;
    ``ssl_context`` (a stdlib ``ssl.SSLContext``) replaces ``ca_file`` and
    ``insecure`` for ``wss://``. A keepalive timeout closes the
    connection with 1011.

    Raises:
        ConnectFailed, ConnectTimeout, HandshakeTimeout, HandshakeRefused,
        SubprotocolRefused, TlsError: as the Twisted client.
        ClientUnavailable: the ``websockets`` library is not installed.
        ConfigurationError: a bad URL or option.
    """
    client, exceptions = _websockets()
    options = ClientOptions(
        subprotocols=subprotocols,
        headers=dict(headers or {}),
        origin=origin,
        user_agent=user_agent,
        connect_timeout=connect_timeout,
        handshake_timeout=handshake_timeout,
        close_timeout=close_timeout,
        max_message_size=max_message_size,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        ca_file=ca_file,
        insecure=insecure,
    )
    target = parse_url(url)
    context = _ssl_context(options, ssl_context) if target.secure else None
    sock = _open_socket(target, options)
    offered = list(options.subprotocols)
    try:
        ws = client.connect(
            url,
            sock=sock,
            ssl=context,
            origin=origin,
            subprotocols=offered or None,
            additional_headers=options.headers,
            user_agent_header=options.user_agent or f"ratchetpy/{__version__}",
            open_timeout=options.handshake_timeout,
            ping_interval=options.keepalive_interval,
            ping_timeout=options.keepalive_timeout,
            close_timeout=options.close_timeout,
            max_size=options.max_message_size,
            **_direct(client.connect),
        )
    except ssl_module.SSLError as exc:
        sock.close()
        raise _tls_error(target, exc) from None
    except TimeoutError:
        sock.close()
        raise HandshakeTimeout(
            f"{url}: no answer to the WebSocket handshake within {options.handshake_timeout:g} s"
        ) from None
    except exceptions.InvalidStatus as exc:
        sock.close()
        raise _refusal(target, offered, exc.response) from None
    except exceptions.NegotiationError as exc:
        sock.close()
        if "subprotocol" in str(exc):
            raise SubprotocolRefused(url, offered) from None
        raise ClientError(f"{url}: bad handshake answer: {exc}") from None
    except exceptions.InvalidHandshake as exc:
        sock.close()
        if isinstance(exc.__cause__, EOFError) or "EOF" in str(exc):
            raise ClientError(
                f"{url}: the server closed the connection before the handshake finished"
            ) from None
        raise ClientError(f"{url}: bad handshake answer: {exc}") from None
    except OSError as exc:
        sock.close()
        raise ClientError(f"{url}: connection lost during the handshake: {exc}") from None
    if offered and ws.subprotocol is None:
        ws.close(1002, "no subprotocol")
        raise SubprotocolRefused(url, offered)
    return SyncConnection(ws, target, exceptions)


def _direct(connect: Any) -> dict[str, Any]:
    # websockets 17 warns when connect() is not used in a with block unless
    # legacy=True asks for the connection itself; older versions have no flag.
    return {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


def _refusal(target: Target, offered: list[str], response: Any) -> ClientError:
    headers = {k.lower(): v for k, v in response.headers.raw_items()}
    versions = [v.strip() for v in headers.get("sec-websocket-version", "13").split(",")]
    if response.status_code == 426 and offered and "13" in versions:
        speaks = headers.get("sec-websocket-protocol", "")
        return SubprotocolRefused(
            target.url, offered, [p.strip() for p in speaks.split(",") if p.strip()]
        )
    return HandshakeRefused(
        target.url,
        response.status_code,
        response.reason_phrase,
        headers,
        bytes(response.body or b"")[:1024],
    )
