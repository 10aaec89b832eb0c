# -*- test-case-name: tests.client.test_tls -*-
"""
TLS for ``wss://``: whom the client trusts, and what a TLS failure means.

By default the server's certificate must chain to the system's trusted
CAs and name the URL's host (checked by ``service-identity``, for DNS names
and IP addresses alike). ``ca_file`` trusts the CAs in a PEM file instead
(a private CA, a self-signed server), ``trust_root`` takes any Twisted
``IOpenSSLTrustRoot``, ``tls`` a whole ``IOpenSSLClientConnectionCreator``
(client certificates, pinned ciphers). ``insecure=True`` checks nothing: for
trying things out only.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

from ..exceptions import ConfigurationError, TlsError
from .options import ClientOptions, Target

__all__ = ["connection_creator", "tls_error"]

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def _trust_from_file(path: str) -> Any:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"ca_file {path!r} cannot be read: {exc.strerror}") from None
    blocks = _PEM.findall(data)
    if not blocks:
        raise ConfigurationError(f"ca_file {path!r} holds no PEM certificate")
    try:
        certificates = [ssl.Certificate.loadPEM(block) for block in blocks]
    except Exception as exc:  # noqa: BLE001 - pyOpenSSL raises its own Error types
        raise ConfigurationError(f"ca_file {path!r} holds a bad certificate: {exc}") from None
    return ssl.trustRootFromCertificates(certificates)


@implementer(IOpenSSLClientConnectionCreator)
class _Unverified:
    """TLS without any certificate or host name check (``insecure=True``)."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname.encode("idna") if ":" not in hostname else b""
        self._options = ssl.CertificateOptions()

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        from OpenSSL import SSL

        connection = SSL.Connection(self._options.getContext(), None)
        connection.set_app_data(tlsProtocol)
        if self._hostname and not re.fullmatch(rb"[0-9.]+", self._hostname):
            connection.set_tlsext_host_name(self._hostname)
        return connection


def connection_creator(target: Target, options: ClientOptions) -> Any:
    """
    The ``IOpenSSLClientConnectionCreator`` for a ``wss://`` target.

    Raises:
        ConfigurationError: ``ca_file`` is unreadable or holds no certificate.
    """
    if options.tls is not None:
        return options.tls
    if options.insecure:
        return _Unverified(target.host)
    trust = options.trust_root
    if options.ca_file is not None:
        trust = _trust_from_file(options.ca_file)
    return ssl.optionsForClientTLS(target.host, trustRoot=trust)


def tls_error(target: Target, exc: BaseException) -> TlsError | None:
    """
    A ``TlsError`` explaining ``exc`` if it is a TLS failure, else ``None``.

    pyOpenSSL reports an untrusted certificate as an ``SSL.Error`` whose
    text holds "certificate verify failed"; ``service-identity`` reports a
    certificate for another name as a ``VerificationError``.
    """
    from OpenSSL import SSL
    from service_identity.exceptions import VerificationError

    where = f"{target.host}:{target.port}"
    if isinstance(exc, VerificationError):
        return TlsError(
            f"TLS to {where}: the server's certificate is not valid for {target.host!r} "
            f"({exc}); connect with the name the certificate holds"
        )
    if isinstance(exc, SSL.Error):
        text = str(exc)
        if "certificate verify failed" in text:
            return TlsError(
                f"TLS to {where}: the server's certificate is not trusted ({text}); "
                "pass ca_file= with the CA that signed it"
            )
        return TlsError(f"TLS to {where} failed: {text}")
    return None
