# -*- test-case-name: tests.test_app,tests.integration.test_app_loopback -*-
"""
``App``'s listening side: the endpoint built from ``port``/``address``/``tls``
(with ratchetpy's listen backlog), the TLS context from Ratchet's ``tls``
dict, and how an endpoint and a failure to listen on it are described.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.python.failure import Failure

from .exceptions import ConfigurationError, ListenError
from .server.backlog import DEFAULT_BACKLOG

__all__ = ["app_endpoint", "tls_context", "describe", "listen_error"]


def app_endpoint(reactor: Any, port: int, address: str, tls: Any) -> IStreamServerEndpoint:
    """
    The endpoint of ``App(port=..., address=..., tls=...)``: TCP over IPv4
    or IPv6 (by the address), or TLS with ``tls`` (see ``tls_context``).

    Raises:
        ConfigurationError: a bad port or ``tls``.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigurationError(f"port must be an int from 0 to 65535, not {port!r}")
    # Twisted's backlog of 50 drops SYNs in reconnect bursts (see server.backlog).
    if tls is None:
        kind = TCP6ServerEndpoint if ":" in address else TCP4ServerEndpoint
        return kind(reactor, port, backlog=DEFAULT_BACKLOG, interface=address)
    return SSL4ServerEndpoint(
        reactor, port, tls_context(tls), backlog=DEFAULT_BACKLOG, interface=address
    )


def tls_context(tls: Any) -> Any:
    """
    The TLS context factory for ``App(tls=...)``: Ratchet's
    ``{"local_cert": ..., "local_pk": ...}`` (also ``cert``/``key``, or
    nested under ``"tls"``), or a Twisted TLS context factory as given.

    Raises:
        ConfigurationError: no certificate, or neither of these.
    """
    if isinstance(tls, dict):
        inner = tls.get("tls", tls)  # Ratchet's ['tls' => [...]] shape too
        cert = inner.get("local_cert") or inner.get("cert")
        key = inner.get("local_pk") or inner.get("key")
        if not cert:
            raise ConfigurationError(
                "tls needs a certificate: App(..., tls={'local_cert': 'cert.pem', 'local_pk': 'key.pem'})"
            )
        from .server.tls import tls_options

        return tls_options(cert, key)
    if hasattr(tls, "getContext") or hasattr(tls, "serverConnectionForTLS"):
        return tls
    raise ConfigurationError(
        f"tls must be a dict with local_cert/local_pk or a Twisted TLS context factory, not {tls!r}"
    )


def describe(endpoint: Any) -> str:
    """``endpoint`` as a ``--listen`` description (``tcp:8080:interface=...``) where it can tell."""
    port = getattr(endpoint, "_port", None)
    interface = getattr(endpoint, "_interface", "")
    if port is not None:
        scheme = "ssl" if isinstance(endpoint, SSL4ServerEndpoint) else "tcp"
        return f"{scheme}:{port}" + (f":interface={interface}" if interface else "")
    return repr(endpoint)


def listen_error(endpoint: Any, failure: Failure, metrics: bool) -> ListenError:
    """
    The one-line ``ListenError`` for failing to listen on ``endpoint``,
    naming the fix (``metrics``: the endpoint is a metrics listener).
    """
    reason = getattr(failure.value, "socketError", None) or failure.value
    reason = getattr(reason, "strerror", None) or str(reason)
    if metrics:
        what, fix = " (metrics)", "--metrics-listen / App.metrics_listen(...)"
    else:
        what, fix = "", "--listen / App(port=...)"
    return ListenError(
        f"cannot listen on {describe(endpoint)}{what}: "
        f"{reason} (choose a free port with {fix}, "
        "or stop the process using it)"
    )
