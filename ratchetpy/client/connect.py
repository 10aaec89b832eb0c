# -*- test-case-name: tests.client.test_connect -*-
"""
``connect()``: open one WebSocket connection from Twisted code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import error as neterror
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ..exceptions import ClientError, ConnectFailed, ConnectTimeout
from ..interfaces import check_component
from .connection import ClientConnection
from .options import DEFAULT_MAX_MESSAGE_SIZE, ClientOptions, Target, parse_url
from .protocol import ClientFactory, ClientProtocol, Inbox
from .tls import connection_creator

__all__ = ["connect", "client_endpoint", "connect_error", "build_factory", "target_and_reactor"]

COMPONENT_METHODS = ("on_open", "on_message", "on_close", "on_error")


def client_endpoint(reactor: Any, target: Target, options: ClientOptions) -> Any:
    """
    The Twisted endpoint for ``target``: TCP (IPv4, IPv6, or a host name
    tried on all its addresses), wrapped in TLS for ``wss://``.

    Raises:
        ConfigurationError: the TLS options cannot work (``ca_file``).
    """
    from twisted.internet.endpoints import (
        HostnameEndpoint,
        TCP4ClientEndpoint,
        TCP6ClientEndpoint,
        wrapClientTLS,
    )

    timeout = options.connect_timeout
    endpoint: Any
    if isIPAddress(target.host):
        endpoint = TCP4ClientEndpoint(reactor, target.host, target.port, timeout=timeout)
    elif isIPv6Address(target.host):
        endpoint = TCP6ClientEndpoint(reactor, target.host, target.port, timeout=timeout)
    else:
        endpoint = HostnameEndpoint(reactor, target.host, target.port, timeout=timeout)
    if target.secure:
        endpoint = wrapClientTLS(connection_creator(target, options), endpoint)
    return endpoint


def connect_error(target: Target, options: ClientOptions, exc: BaseException) -> ClientError:
    """The ``ClientError`` for a TCP connection attempt that failed with ``exc``."""
    where = f"{target.host}:{target.port}"
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, neterror.TimeoutError):
        return ConnectTimeout(
            f"no TCP connection to {where} within {options.connect_timeout:g} s "
            "(nothing accepts there, or a firewall drops the packets)"
        )
    if isinstance(exc, neterror.ConnectionRefusedError):
        return ConnectFailed(f"could not connect to {where}: connection refused (is the server running?)")
    if isinstance(exc, neterror.DNSLookupError):
        return ConnectFailed(f"could not connect to {where}: host name not found")
    return ConnectFailed(f"could not connect to {where}: {exc}")


def target_and_reactor(url: str, reactor: Any) -> tuple[Target, Any]:
    """
    Parse ``url`` and pick the reactor: ``reactor``, or the global one when it is None.

    Raises:
        ConfigurationError: a bad URL (see ``parse_url``).
    """
    target = parse_url(url)
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    return target, reactor


def build_factory(
    target: Target, options: ClientOptions, component: Any, reactor: Any
) -> ClientFactory:
    """The Autobahn factory for ``target``; checks the component's methods."""
    if component is None:
        component = Inbox()
    else:
        check_component(component, COMPONENT_METHODS, "a WebSocket client")
    return ClientFactory(target, options, component, reactor)


def connect(
    url: str,
    component: Any = None,
    *,
    subprotocols: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    reactor: Any = None,
    connect_timeout: float = 10.0,
    handshake_timeout: float = 10.0,
    close_timeout: float = 5.0,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    keepalive_interval: float | None = 20.0,
    keepalive_timeout: float = 20.0,
    ca_file: str | None = None,
    trust_root: Any = None,
    tls: Any = None,
    insecure: bool = False,
    user_agent: str | None = None,
    endpoint: Any = None,
) -> Deferred[ClientConnection]:
    """
    Open a WebSocket connection to ``url`` (Pawl's ``connect($url)``).

    Args:
        url: ``ws://host[:port]/path`` or ``wss://...``.
        component: an object with ``on_open(conn)``, ``on_message(conn,
            msg)``, ``on_close(conn)`` and ``on_error(conn, exc)``, called as
            on the server (async handlers too). Without one, read messages
            with ``conn.receive()``.
        subprotocols: offered in the handshake; the server must pick one of
            them, or the connection fails with ``SubprotocolRefused``.
        headers: extra request headers (``Authorization``, ``Cookie``, ...).
        origin: the ``Origin`` header, for servers that check it.
        reactor: the reactor to use (default: the global one).
        connect_timeout: seconds for TCP to connect (``ConnectTimeout``).
        handshake_timeout: seconds from TCP connect to the server's 101,
            TLS included (``HandshakeTimeout``).
        close_timeout: seconds to wait for the server's close answer.
        max_message_size: larger incoming messages close the connection
            with 1009; ``None`` for no limit.
        keepalive_interval: seconds between pings; ``None`` for none.
        keepalive_timeout: seconds a ping may go unanswered (any incoming
            data counts as an answer) before the connection is dropped
            (``conn.close_error`` is a ``KeepaliveTimeout``).
        ca_file: ``wss://``: trust the CAs in this PEM file instead of the
            system's. The host name is checked against the certificate.
        trust_root: ``wss://``: a Twisted ``IOpenSSLTrustRoot`` to trust.
        tls: ``wss://``: a whole ``IOpenSSLClientConnectionCreator``.
        insecure: ``wss://``: check neither certificate nor host name.
        user_agent: the ``User-Agent`` header (default ``ratchetpy/<version>``).
        endpoint: a Twisted client endpoint to use instead of one made from
            the URL (a UNIX socket, a test transport); the URL then only
            names the host and resource for the handshake.

    Returns:
        A Deferred firing with the open ``ClientConnection`` (after
        ``on_open``), or failing with a ``ClientError``: ``ConnectFailed``,
        ``ConnectTimeout``, ``HandshakeTimeout``, ``HandshakeRefused``
        (status, headers and the start of the body), ``SubprotocolRefused``
        or ``TlsError``.

    Raises:
        ConfigurationError: a bad URL or option (raised at once).
        ComponentError: ``component`` lacks a handler.
    """
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
        trust_root=trust_root,
        tls=tls,
        insecure=insecure,
    )
    target, reactor = target_and_reactor(url, reactor)
    factory = build_factory(target, options, component, reactor)
    if endpoint is None:
        endpoint = client_endpoint(reactor, target, options)
    d: Deferred[Any] = endpoint.connect(factory)

    def connected(protocol: ClientProtocol) -> Deferred[ClientConnection]:
        return protocol.opened

    def failed(failure: Failure) -> Failure:
        return Failure(connect_error(target, options, failure.value))  # type: ignore[arg-type]

    d.addErrback(failed)
    return d.addCallback(connected)
