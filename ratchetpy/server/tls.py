# -*- test-case-name: tests.test_app -*-
"""
TLS (wss://) for servers: certificate loading with errors that say what to fix.

``tls_options(cert, key)`` reads PEM files, a certificate chain
(``fullchain.pem`` from Let's Encrypt) included, and returns Twisted
``CertificateOptions`` for ``SSL4ServerEndpoint``. ``tls_listen_spec``
turns a ``tcp:`` endpoint description into the matching ``ssl:`` one.

``tls_handshake_pending(conn)`` tells whether a connection is on TLS whose
handshake has not finished: Twisted's TLS layer connects the application
protocol (``on_open`` runs, ``request_timeout`` starts) when the TCP
connection is accepted, before any handshake. Until the handshake completes
nothing written can reach the peer and ``loseConnection()`` waits for it,
possibly forever; such a connection must be aborted instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.interfaces import ISSLTransport

from ..exceptions import ConfigurationError
from ..interfaces import ConnectionInterface

if TYPE_CHECKING:
    from twisted.internet.ssl import CertificateOptions

__all__ = [
    "tls_options",
    "tls_listen_spec",
    "read_tls_files",
    "tls_handshake_pending",
]


def tls_handshake_pending(conn: ConnectionInterface) -> bool:
    """
    True while ``conn`` runs over TLS and its handshake has not completed.

    Plain TCP and UNIX connections are never pending. A TLS transport that
    does not report completion through ``IHandshakeListener`` (Twisted's
    always does) stays pending, so its refusals are aborted, not answered.
    """
    from .io import io_side

    io = io_side(conn)
    if io is None:
        return False
    transport = io.transport
    if transport is None or not ISSLTransport.providedBy(transport):
        return False
    # IoServer's protocol records the completion (IHandshakeListener).
    return not io.tls_handshake_done


def read_tls_files(cert: str, key: str | None = None) -> tuple[bytes, bytes]:
    """
    Read the certificate (chain) and private key PEM files.

    ``key`` may be omitted when the key is in the certificate file.

    Raises:
        ConfigurationError: a file is missing, unreadable or not PEM.
    """
    def read(path: str, what: str) -> bytes:
        if not os.path.isfile(path):
            raise ConfigurationError(f"TLS {what} file {path!r} does not exist")
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise ConfigurationError(f"cannot read TLS {what} file {path!r}: {exc.strerror}") from exc

    cert_pem = read(cert, "certificate")
    key_pem = read(key, "key") if key else cert_pem
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise ConfigurationError(f"{cert!r} holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")
    if b"PRIVATE KEY-----" not in key_pem:
        raise ConfigurationError(
            f"{key or cert!r} holds no PEM private key; give the key file too (--tls-key)"
        )
    return cert_pem, key_pem


def tls_options(cert: str, key: str | None = None) -> CertificateOptions:
    """
    Build ``twisted.internet.ssl.CertificateOptions`` from PEM files.

    Raises:
        ConfigurationError: a file is missing or does not hold what it should,
            or the key does not match the certificate.
    """
    try:
        from OpenSSL import crypto
        from twisted.internet import ssl
    except ImportError as exc:  # pragma: no cover - pyOpenSSL is a dependency
        raise ConfigurationError("TLS needs pyOpenSSL: pip install pyOpenSSL service-identity") from exc

    cert_pem, key_pem = read_tls_files(cert, key)
    blocks = [
        b"-----BEGIN CERTIFICATE-----" + part.split(b"-----END CERTIFICATE-----")[0]
        + b"-----END CERTIFICATE-----\n"
        for part in cert_pem.split(b"-----BEGIN CERTIFICATE-----")[1:]
    ]
    try:
        leaf = crypto.load_certificate(crypto.FILETYPE_PEM, blocks[0])
        chain = [crypto.load_certificate(crypto.FILETYPE_PEM, b) for b in blocks[1:]]
        private_key = crypto.load_privatekey(crypto.FILETYPE_PEM, key_pem)
    except crypto.Error as exc:
        raise ConfigurationError(f"cannot load TLS certificate/key ({cert}, {key}): {exc}") from exc
    try:
        return ssl.CertificateOptions(
            privateKey=private_key, certificate=leaf, extraCertChain=chain or None
        )
    except Exception as exc:
        raise ConfigurationError(
            f"TLS key {key or cert!r} does not match certificate {cert!r}: {exc}"
        ) from exc


def tls_listen_spec(spec: str, cert: str, key: str | None = None) -> str:
    """
    Turn ``tcp:PORT[:opts]`` into ``ssl:PORT[:opts]:certKey=..:privateKey=..``.

    Other descriptions (``ssl:``, ``unix:``, ...) are returned unchanged.
    """
    from twisted.internet.endpoints import quoteStringArgument

    quote: Callable[[str], str] = quoteStringArgument  # unannotated in Twisted
    kind, sep, rest = spec.partition(":")
    if kind != "tcp" or not sep:
        return spec
    args = f"certKey={quote(os.path.abspath(cert))}"
    args += f":privateKey={quote(os.path.abspath(key or cert))}"
    return f"ssl:{rest}:{args}"
