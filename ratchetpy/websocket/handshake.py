# -*- test-case-name: tests.websocket.test_handshake -*-
"""
The checks of a WebSocket opening handshake, in Ratchet's order and with
Ratchet's statuses (RFC 6455 §4.2.1; ``ratchet/rfc6455`` 0.3.1's
``ServerNegotiator``). Pure functions: no I/O.

Autobahn then performs the handshake itself; running these checks first
makes refusals byte-compatible with PHP Ratchet, which clients and proxies
configured for Ratchet may rely on. Autobahn is not given the bytes the
client sent but :func:`autobahn_head`, a canonical head rebuilt from the
parsed request: two parsers reading one head can disagree (Autobahn splits
lines at U+0085, needs CRLF, refuses a repeated Sec-WebSocket-Extensions),
one parser and a head built to be unambiguous cannot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..http.request import Request, normalize_authority

__all__ = ["HandshakeResult", "autobahn_head", "negotiate", "split_header_list"]

# 16 bytes in base64 (RFC 6455 §4.1): 22 characters and "==", nothing else.
_KEY = re.compile(r"[A-Za-z0-9+/]{22}==")
# What autobahn_head forwards must read the same under any line splitting
# or decoding: visible ASCII, space and tab.
_PLAIN = re.compile(r"[\x20-\x7e\t]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


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


def autobahn_head(request: Request, sub_protocol: str | None, *, extensions: bool) -> bytes:
    """
    Build the request head Autobahn's server handshake is fed.

    Rather than the bytes the client sent, Autobahn gets a canonical head
    with only what its handshake reads, each value the one ratchetpy parsed
    and checked, so both read the same request: the request line with the
    path and query (origin-form, even if the client sent absolute-form),
    ``Host`` (the request's :attr:`~Request.authority`), ``Upgrade``,
    ``Connection``, ``Sec-WebSocket-Key``, ``Sec-WebSocket-Version: 13``,
    ``Sec-WebSocket-Protocol`` (only ``sub_protocol``, the one
    :func:`negotiate` chose, which Autobahn then echoes) and, if asked, the
    client's ``Sec-WebSocket-Extensions`` offers on one line (a field line
    with bytes outside visible ASCII is left out: its offers are declined).
    Lines end in CRLF whatever the client used. Everything else is left
    out: ``Origin`` (OriginCheck's business, with Ratchet's rules),
    cookies, and any ``X-Forwarded-For``.

    Args:
        request: a request :func:`negotiate` accepted.
        sub_protocol: ``negotiate(...).sub_protocol``.
        extensions: forward the extension offers; only worth it when the
            server may accept one (``WsServer(compression="deflate")``):
            without offers Autobahn declines every extension, as Ratchet
            does, instead of refusing a malformed deflate offer with 400.

    Raises:
        ValueError: a value is unsafe to forward, which ``negotiate``
            rules out for client values: a bug, or a server subprotocol
            name that is not an HTTP token.
    """
    # Autobahn reads the target with urlparse, which takes a leading "//"
    # for an authority (and refuses "//[" outright); it only logs the path.
    resource = request.origin_form
    if resource.startswith("//"):
        resource = "/"
    authority = normalize_authority(request.authority)
    if authority is None:
        raise ValueError(f"Host {request.authority[:100]!r} is not a valid host[:port]")
    lines = [
        f"GET {resource} HTTP/1.1",
        f"Host: {authority}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {request.headers['sec-websocket-key']}",
        "Sec-WebSocket-Version: 13",
    ]
    if sub_protocol is not None:
        if not _TOKEN.fullmatch(sub_protocol):
            raise ValueError(
                f"subprotocol {sub_protocol!r} is not an HTTP token (RFC 6455 §4.1); "
                "rename it in get_sub_protocols()"
            )
        lines.append(f"Sec-WebSocket-Protocol: {sub_protocol}")
    offers = [
        value
        for value in request.headers.get_all("sec-websocket-extensions")
        if extensions and value and _PLAIN.fullmatch(value)
    ]
    if offers:
        # Autobahn refuses a repeated field (RFC 6455 §9.1 allows it): one line.
        lines.append(f"Sec-WebSocket-Extensions: {', '.join(offers)}")
    for line in lines:
        if not _PLAIN.fullmatch(line):
            raise ValueError(f"unsafe byte in {line[:100]!r} (negotiate() should have refused it)")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
