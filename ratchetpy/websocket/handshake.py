# -*- test-case-name: tests.test_handshake -*-
"""
The checks of a WebSocket opening handshake, in Ratchet's order and with
Ratchet's statuses (RFC 6455 §4.2.1; ``ratchet/rfc6455`` 0.3.1's
``ServerNegotiator``). Pure functions: no I/O.

Autobahn then performs the handshake itself; running these checks first
makes refusals byte-compatible with PHP Ratchet, which clients and proxies
configured for Ratchet may rely on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..http.request import Request, normalize_authority

__all__ = ["HandshakeResult", "negotiate", "split_header_list"]

# 16 bytes in base64 (RFC 6455 §4.1): 22 characters and "==", nothing else.
_KEY = re.compile(r"[A-Za-z0-9+/]{22}==")


@dataclass(frozen=True)
class HandshakeResult:
    """
    The outcome of :func:`negotiate`.

    ``status`` is 101 when the handshake may proceed, with ``sub_protocol``
    the one chosen (or ``None``); otherwise it is the refusal's status with
    its ``reason`` phrase, response ``headers`` and a ``detail`` for logs.
    """

    status: int
    sub_protocol: str | None = None
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 101


def split_header_list(values: Sequence[str]) -> list[str]:
    """
    Split comma-separated header values into non-empty elements, each
    trimmed of spaces and tabs (HTTP's only whitespace: ``"wamp\\x85"`` is
    not ``"wamp"``).
    """
    return [t.strip(" \t") for v in values for t in v.split(",") if t.strip(" \t")]


def _upgrade_required(
    reason: str, detail: str, sub_protocols: Sequence[str]
) -> HandshakeResult:
    headers = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
    ]
    if sub_protocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(sub_protocols)))
    return HandshakeResult(426, reason=reason, headers=tuple(headers), detail=detail)


def _key_is_valid(values: list[str]) -> bool:
    return len(values) == 1 and _KEY.fullmatch(values[0]) is not None


def negotiate(
    request: Request, sub_protocols: Sequence[str], strict: bool = True
) -> HandshakeResult:
    """
    Check ``request`` as a WebSocket opening handshake.

    Args:
        request: the parsed request head.
        sub_protocols: the server's subprotocols, in preference order.
        strict: refuse with 426 when a subprotocol was offered or is
            required and none matches (Ratchet's default); when false,
            such a client is accepted without a subprotocol.
    """
    headers = request.headers
    if request.method != "GET":
        return HandshakeResult(
            405, headers=(("Allow", "GET"),), detail=f"method {request.method} is not GET"
        )
    if request.version != "HTTP/1.1":
        return HandshakeResult(
            505,
            reason="HTTP Version not supported",
            detail=f"{request.version} request; WebSocket needs HTTP/1.1",
        )
    if not request.path.startswith("/") or "#" in request.target:
        return HandshakeResult(400, detail=f"bad request-target {request.target[:100]!r}")
    hosts = headers.get_all("host")
    if len(hosts) != 1:
        return HandshakeResult(400, detail="exactly one Host header is required")
    if normalize_authority(hosts[0]) is None:
        # RFC 9112 §3.2: 400 for an invalid Host, even one a target overrides.
        return HandshakeResult(
            400,
            detail=f"Host header {hosts[0][:100]!r} is not a valid host[:port] "
            "(an IDN must be sent punycoded; IPv6 in brackets)",
        )
    upgrade = [t.lower() for t in split_header_list(headers.get_all("upgrade"))]
    if "websocket" not in upgrade:
        return _upgrade_required(
            "Upgrade header MUST be provided",
            "not a WebSocket request (no 'Upgrade: websocket')",
            sub_protocols,
        )
    connection = [t.lower() for t in split_header_list(headers.get_all("connection"))]
    if "upgrade" not in connection:
        return HandshakeResult(
            400,
            reason="Connection Upgrade MUST be requested",
            detail="the Connection header lacks the 'Upgrade' token",
        )
    if not _key_is_valid(headers.get_all("sec-websocket-key")):
        return HandshakeResult(
            400,
            reason="Invalid Sec-WebSocket-Key",
            detail="Sec-WebSocket-Key must be one base64-encoded 16-byte value",
        )
    if headers.get_all("sec-websocket-version") != ["13"]:
        return _upgrade_required(
            "Upgrade Required",
            f"unsupported Sec-WebSocket-Version {headers.get('sec-websocket-version')!r}",
            (),
        )
    offered = split_header_list(headers.get_all("sec-websocket-protocol"))
    chosen = None
    if offered or (sub_protocols and strict):
        chosen = next((p for p in offered if p in sub_protocols), None)
        if chosen is None and strict:
            return _upgrade_required(
                "No Sec-WebSocket-Protocols requested supported",
                f"client offered subprotocols {offered} but the server speaks "
                f"{list(sub_protocols)} (implement get_sub_protocols() or turn "
                "the strict check off)",
                sub_protocols,
            )
    return HandshakeResult(101, sub_protocol=chosen)
