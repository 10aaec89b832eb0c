"""
autobahn_head(): the head Autobahn's server handshake is fed, fed here into a
real Autobahn protocol to check that it reads the request as we parsed it.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock

from ratchetpy.http.request import Request, parse_request_head
from ratchetpy.websocket._engine import WebSocketServerProtocol, build_factory
from ratchetpy.websocket.compression import deflate_acceptor
from ratchetpy.websocket.handshake import autobahn_head, negotiate
from tests.support.memory import Transport
from tests.support.wire import WS_ACCEPT, WS_KEY

ACCEPT = f"Sec-WebSocket-Accept: {WS_ACCEPT}\r\n".encode()
BASE = [
    "Host: chat.example:9000",
    "Upgrade: websocket",
    "Connection: keep-alive, Upgrade",
    f"Sec-WebSocket-Key: {WS_KEY}",
    "Sec-WebSocket-Version: 13",
]


class Probe(WebSocketServerProtocol):
    """Autobahn's server protocol, answering onConnect as WsServerProtocol does."""

    def __init__(self, sub_protocol: str | None) -> None:
        super().__init__()
        self.sub_protocol = sub_protocol
        self.seen: Any = None

    def onConnect(self, request: Any) -> str | None:
        self.seen = request
        return self.sub_protocol


def head(*lines: str, target: str = "/chat?room=1", eol: str = "\r\n") -> bytes:
    return eol.join([f"GET {target} HTTP/1.1", *lines, "", ""]).encode("latin-1")


def accepted(data: bytes, sub_protocols: tuple[str, ...] = ()) -> tuple[Request, str | None]:
    """Parse and negotiate ``data``, which must be accepted."""
    request = parse_request_head(data)
    result = negotiate(request, sub_protocols, strict=False)
    assert result.accepted, result.detail
    return request, result.sub_protocol


def autobahn_answer(
    request: Request, sub_protocol: str | None, compression: bool = False
) -> tuple[bytes, Probe]:
    """Feed autobahn_head() to a real Autobahn protocol, as WsServer would; its response."""
    options: dict[str, Any] = {"webStatus": False}
    if compression:
        options["perMessageCompressionAccept"] = deflate_acceptor()
    protocol = Probe(sub_protocol)
    protocol.factory = build_factory(MemoryReactorClock(), options)
    transport = Transport()
    protocol.makeConnection(transport)
    protocol.dataReceived(autobahn_head(request, sub_protocol, extensions=compression))
    return transport.value(), protocol


def test_minimal_canonical_head():
    """Only what Autobahn reads, canonical values, CRLF, one blank line."""
    request, chosen = accepted(
        head(*BASE, "Origin: example.com", "Cookie: a=b", "X-Forwarded-For: 1.2.3.4",
             "Sec-WebSocket-Protocol: foo, wamp", eol="\n"),
        ("wamp",),
    )
    assert autobahn_head(request, chosen, extensions=True) == (
        b"GET /chat?room=1 HTTP/1.1\r\n"
        b"Host: chat.example:9000\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: wamp\r\n"
        b"\r\n"
    )


def test_autobahn_reads_what_we_parsed():
    """101 with the right accept; Autobahn's path, host and params are ours."""
    request, chosen = accepted(head(*BASE, "Origin: example.com"))
    response, protocol = autobahn_answer(request, chosen)
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert ACCEPT in response
    assert b"Sec-WebSocket-Protocol" not in response
    assert protocol.http_request_path == request.path == "/chat"
    assert protocol.http_request_host == request.host == "chat.example"
    assert protocol.http_request_params == {"room": ["1"]}
    assert protocol.websocket_origin == ""
    assert protocol.seen.protocols == []


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_lf_only_head_is_handed_on_with_crlf(eol):
    """Autobahn waits for CRLFCRLF; a bare-LF client still gets its 101."""
    request, chosen = accepted(head(*BASE, eol=eol))
    assert autobahn_answer(request, chosen)[0].startswith(b"HTTP/1.1 101 ")


def test_0x85_in_a_header_not_forwarded():
    """Autobahn would split at U+0085 and see a second Host; it never sees this header."""
    data = head(*BASE, "User-Agent: x\x85Host: evil.example")
    request, chosen = accepted(data)
    assert request.headers["user-agent"] == "x\x85Host: evil.example"
    response, protocol = autobahn_answer(request, chosen)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert protocol.http_request_host == "chat.example"


def test_0x85_in_host_is_refused_by_negotiate():
    request = parse_request_head(head("Host: chat.example\x85Host: evil", *BASE[1:]))
    result = negotiate(request, [])
    assert result.status == 400
    assert "Host header" in result.detail and "host[:port]" in result.detail


def test_0x85_in_an_offered_subprotocol_does_not_match():
    """'wamp\\x85' is not 'wamp'; the real 'wamp' offered after it is chosen and echoed."""
    request = parse_request_head(head(*BASE, "Sec-WebSocket-Protocol: wamp\x85"))
    assert negotiate(request, ["wamp"]).status == 426
    request, chosen = accepted(
        head(*BASE, "Sec-WebSocket-Protocol: wamp\x85, x\x85Host: y, wamp"), ("wamp",)
    )
    assert chosen == "wamp"
    response, protocol = autobahn_answer(request, chosen)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Protocol: wamp\r\n" in response
    assert protocol.seen.protocols == ["wamp"]


def test_duplicate_and_empty_subprotocol_offers_are_accepted():
    """Autobahn refuses 'wamp, wamp' and 'wamp,,'; Ratchet does not, nor do we."""
    request, chosen = accepted(
        head(*BASE, "Sec-WebSocket-Protocol: wamp, wamp,,", "Sec-WebSocket-Protocol: wamp"),
        ("wamp",),
    )
    response, _ = autobahn_answer(request, chosen)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Protocol: wamp\r\n" in response


def test_repeated_extension_fields_reach_autobahn_as_one():
    """Two Sec-WebSocket-Extensions lines (RFC 6455 §9.1) are one offer list."""
    request, chosen = accepted(
        head(*BASE, "Sec-WebSocket-Extensions: x-unknown",
             "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    )
    assert b"Sec-WebSocket-Extensions: x-unknown, permessage-deflate; client_max_window_bits\r\n" in (
        autobahn_head(request, chosen, extensions=True)
    )
    response, protocol = autobahn_answer(request, chosen, compression=True)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in response
    assert [name for name, _ in protocol.seen.extensions] == ["x-unknown", "permessage-deflate"]


def test_extension_offers_are_withheld_unless_asked():
    """Without compression Autobahn hears no offer: even a malformed one is declined, not 400."""
    request, chosen = accepted(head(*BASE, "Sec-WebSocket-Extensions: permessage-deflate; bogus=1"))
    assert b"Extensions" not in autobahn_head(request, chosen, extensions=False)
    response, protocol = autobahn_answer(request, chosen, compression=False)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Extensions" not in response
    assert protocol.seen.extensions == []


def test_non_ascii_extension_field_is_declined():
    """A field line with a byte outside visible ASCII is left out; the others go."""
    request, chosen = accepted(
        head(*BASE, "Sec-WebSocket-Extensions: permessage-deflate\x85Host: x",
             "Sec-WebSocket-Extensions: x-other")
    )
    assert b"Sec-WebSocket-Extensions: x-other\r\n\r\n" in autobahn_head(request, chosen, extensions=True)
    response, protocol = autobahn_answer(request, chosen, compression=True)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert protocol.seen.extensions == [("x-other", {})]


def test_absolute_form_reaches_autobahn_in_origin_form():
    """Path, query and Host come from an absolute-form target."""
    request, chosen = accepted(
        head("Host: ignored.example", *BASE[1:], target="http://Chat.Example:8080/room?x=1")
    )
    built = autobahn_head(request, chosen, extensions=True)
    assert built.startswith(b"GET /room?x=1 HTTP/1.1\r\nHost: Chat.Example:8080\r\n")
    response, protocol = autobahn_answer(request, chosen)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert (protocol.http_request_path, protocol.http_request_host) == ("/room", "Chat.Example")


@pytest.mark.parametrize(
    "host,autobahn_host",
    [("[::1]:9000", "[::1]"), ("[::1]", "[::1]"), ("h:", "h"), ("127.0.0.1", "127.0.0.1")],
)
def test_hosts_autobahn_reads_like_us(host, autobahn_host):
    request, chosen = accepted(head(f"Host: {host}", *BASE[1:]))
    response, protocol = autobahn_answer(request, chosen)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert protocol.http_request_host == autobahn_host
    assert autobahn_host.strip("[]") == request.host


@pytest.mark.parametrize("target", ["//[", "//evil.example/chat"])
def test_double_slash_path_is_not_read_as_an_authority(target):
    """urlparse would take '//x' for a host (and refuse '//['); Autobahn gets '/'."""
    request, chosen = accepted(head(*BASE, target=target))
    assert request.path == target
    response, protocol = autobahn_answer(request, chosen)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert protocol.http_request_path == "/"


def test_a_sub_protocol_that_is_not_a_token_is_a_bug():
    request, _ = accepted(head(*BASE))
    with pytest.raises(ValueError, match="not an HTTP token"):
        autobahn_head(request, "wamp\x85", extensions=False)
    with pytest.raises(ValueError, match="not an HTTP token"):
        autobahn_head(request, "a b", extensions=False)


@pytest.mark.parametrize(
    "line",
    [
        "Host: chat.example{}",
        "Upgrade: websocket{}",
        "Connection: Upgrade{}",
        f"Sec-WebSocket-Key: {WS_KEY}{{}}",
        "Sec-WebSocket-Version: 13{}",
        "Sec-WebSocket-Protocol: wamp{}",
        "Sec-WebSocket-Protocol: x{}y, wamp",
        "Sec-WebSocket-Extensions: x-unknown{}",
        "Origin: http://chat.example{}",
        "User-Agent: a{}Host: b",
    ],
)
def test_no_byte_makes_autobahn_disagree(line):
    """
    Every byte in every header Autobahn reads: either negotiate() refuses
    the request, or Autobahn accepts what autobahn_head built, with the
    subprotocol and host we negotiated.
    """
    name = line.partition(":")[0]
    other = [kept for kept in BASE if not kept.startswith(name + ":")]
    outcomes = set()
    for byte in range(256):
        data = head(*other, line.format(chr(byte)))
        try:
            request = parse_request_head(data)
        except Exception:  # noqa: BLE001 - the parser's own refusals (control bytes)
            outcomes.add("parser")
            continue
        result = negotiate(request, ["wamp"], strict=False)
        if not result.accepted:
            outcomes.add("negotiate")
            continue
        response, protocol = autobahn_answer(request, result.sub_protocol, compression=True)
        assert response.startswith(b"HTTP/1.1 101 "), (byte, response[:200])
        assert protocol.websocket_protocol_in_use == result.sub_protocol, byte
        assert protocol.http_request_host.strip("[]").lower() == request.host, byte
        outcomes.add("101")
    assert "101" in outcomes
