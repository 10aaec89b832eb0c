# -*- test-case-name: tests.redis.test_url,tests.redis.test_tls -*-
"""
``endpoint_for(config, reactor)``: the Twisted client endpoint a
``RedisConfig`` describes: TCP (an IP address is connected to directly, a
name through the reactor's resolver), TLS on top for ``rediss://``, or a
UNIX socket. Certificate files are read here, once, so a bad file is a
``ConfigurationError`` at start rather than a failure at every attempt.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    UNIXClientEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, IStreamClientEndpoint

from ..exceptions import ConfigurationError
from .url import RedisConfig

__all__ = ["endpoint_for", "tls_creator"]


def endpoint_for(config: RedisConfig, reactor: Any) -> IStreamClientEndpoint:
    """The endpoint to reach the Redis ``config`` describes."""
    timeout = config.connect_timeout
    if config.unix_path is not None:
        return UNIXClientEndpoint(reactor, config.unix_path, timeout=timeout)
    endpoint: IStreamClientEndpoint
    if isIPAddress(config.host):
        endpoint = TCP4ClientEndpoint(reactor, config.host, config.port, timeout=timeout)
    elif isIPv6Address(config.host):
        endpoint = TCP6ClientEndpoint(reactor, config.host, config.port, timeout=timeout)
    else:
        endpoint = HostnameEndpoint(reactor, config.host, config.port, timeout=timeout)
    if config.tls:
        endpoint = wrapClientTLS(tls_creator(config), endpoint)
    return endpoint


def tls_creator(config: RedisConfig) -> IOpenSSLClientConnectionCreator:
    """
    The TLS client settings of a ``rediss://`` config: verify the server's
    certificate against ``tls_ca`` (or the system's CAs) and its name
    against ``tls_server_name`` (or the host), unless ``tls_verify`` is off;
    present ``tls_cert``/``tls_key`` if given.
    """
    from twisted.internet import ssl

    def read(path: str, what: str) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise ConfigurationError(f"Redis {what} {path!r} cannot be read: {exc}") from None

    client = None
    if config.tls_cert is not None and config.tls_key is not None:
        pem = read(config.tls_cert, "ssl_certfile") + b"\n" + read(config.tls_key, "ssl_keyfile")
        try:
            client = ssl.PrivateCertificate.loadPEM(pem)
        except Exception as exc:  # noqa: BLE001 - OpenSSL raises many kinds
            raise ConfigurationError(
                f"Redis ssl_certfile/ssl_keyfile {config.tls_cert!r}/{config.tls_key!r} are not a PEM "
                f"certificate and its key: {exc}"
            ) from None
    if not config.tls_verify:
        options: dict[str, Any] = {}
        if client is not None:
            options = {"privateKey": client.privateKey.original, "certificate": client.original}
        return ssl.CertificateOptions(**options)
    trust: Any = None
    if config.tls_ca is not None:
        try:
            trust = ssl.Certificate.loadPEM(read(config.tls_ca, "ssl_ca_certs"))
        except ConfigurationError:
            raise
        except Exception as exc:  # noqa: BLE001 - OpenSSL raises many kinds
            raise ConfigurationError(
                f"Redis ssl_ca_certs {config.tls_ca!r} is not a PEM certificate: {exc}"
            ) from None
    name = config.tls_server_name or config.host
    return ssl.optionsForClientTLS(name, trustRoot=trust, clientCertificate=client)
