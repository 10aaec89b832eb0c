"""
The opening handshake, compared with what PHP Ratchet 0.4.4 sent for the same
request bytes (shared/ratchet-wire/http.txt, the chat and wamp stacks, which
have no router). X-Powered-By's value is ratchetpy's own.
"""

import pytest

from ratchetpy import EchoServer, HttpServer, WsServer, WsServerInterface
from ratchetpy.http.request import parse_request_head
from ratchetpy.testing import RecordingComponent
from ratchetpy.websocket.handshake import negotiate
from tests.support.memory import MemoryConnection
from tests.support.wire import WS_ACCEPT, WS_KEY, handshake_request

# The request head of the PHP transcript, without its blank line (tests add header lines).
GOOD = handshake_request(host="127.0.0.1:9101", end=False).decode()


class WampLike(RecordingComponent, WsServerInterface):
    def get_sub_protocols(self):
        return ["wamp"]


def respond(request: str, component=None, **ws_options):
    memory = MemoryConnection(HttpServer(WsServer(component or EchoServer(), **ws_options)))
    memory.feed(request.encode("latin-1"), one_byte_at_a_time=False)
    raw = memory.take()
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    return lines[0], headers, rest, memory.transport.connected


REFUSALS = [
    (
        "plain GET",
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:9101\r\n\r\n",
        "HTTP/1.1 426 Upgrade header MUST be provided",
        ["Connection", "Upgrade", "Sec-WebSocket-Version", "X-Powered-By"],
    ),
    (
        "POST",
        GOOD.replace("GET", "POST") + "\r\n",
        "HTTP/1.1 405 Method Not Allowed",
        ["Allow", "X-Powered-By"],
    ),
    (
        "HTTP/1.0",
        GOOD.replace("HTTP/1.1", "HTTP/1.0") + "\r\n",
        "HTTP/1.1 505 HTTP Version not supported",
        ["X-Powered-By"],
    ),
    (
        "version 8",
        GOOD.replace("Version: 13", "Version: 8") + "\r\n",
        "HTTP/1.1 426 Upgrade Required",
        ["Connection", "Upgrade", "Sec-WebSocket-Version", "X-Powered-By"],
    ),
    (
        "bad key",
        GOOD.replace(WS_KEY, "short") + "\r\n",
        "HTTP/1.1 400 Invalid Sec-WebSocket-Key",
        ["X-Powered-By"],
    ),
    (
        "keep-alive only",
        GOOD.replace("Connection: Upgrade", "Connection: keep-alive") + "\r\n",
        "HTTP/1.1 400 Connection Upgrade MUST be requested",
        ["X-Powered-By"],
    ),
    (
        "subprotocol offered to a server with none",
        GOOD + "Sec-WebSocket-Protocol: chat\r\n\r\n",
        "HTTP/1.1 426 No Sec-WebSocket-Protocols requested supported",
        ["Connection", "Upgrade", "Sec-WebSocket-Version", "X-Powered-By"],
    ),
    (
        "no Host",
        GOOD.replace("Host: 127.0.0.1:9101\r\n", "") + "\r\n",
        "HTTP/1.1 400 Bad Request",
        ["X-Powered-By"],
    ),
    (
        "two Hosts",
        GOOD + "Host: other\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
        ["X-Powered-By"],
    ),
]


@pytest.mark.parametrize("name,request_,status,names", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_match_ratchet(name, request_, status, names):
    """Each refusal has Ratchet's status line and header order, then closes."""
    status_line, headers, rest, connected = respond(request_)
    assert status_line == status
    assert [h[0] for h in headers] == names
    assert dict(headers)["X-Powered-By"].startswith("ratchetpy/")
    assert rest == b"" and not connected


def test_upgrade_required_headers():
    """The 426 for a plain GET tells the client how to upgrade."""
    _, headers, _, _ = respond("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert headers[:3] == [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
    ]


def test_accept():
    """A valid handshake gets 101 with the RFC 6455 accept value; TCP stays open."""
    status_line, headers, _, connected = respond(GOOD + "\r\n")
    assert status_line == "HTTP/1.1 101 Switching Protocols"
    assert ("Sec-WebSocket-Accept", WS_ACCEPT) in headers
    assert dict(headers)["X-Powered-By"].startswith("ratchetpy/")
    assert connected


def test_firefox_connection_header_and_any_path():
    """'Connection: keep-alive, Upgrade', any path and query are accepted."""
    request_ = GOOD.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade")
    request_ = request_.replace("GET / ", "GET /whatever?x=1 ") + "\r\n"
    assert respond(request_)[0] == "HTTP/1.1 101 Switching Protocols"


def test_deflate_offer_ignored_by_default():
    """permessage-deflate is not negotiated unless enabled (as Ratchet)."""
    request_ = GOOD + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    status_line, headers, _, _ = respond(request_)
    assert status_line.endswith("101 Switching Protocols")
    assert "Sec-WebSocket-Extensions" not in dict(headers)


@pytest.mark.parametrize("offer", ["wamp", "foo, wamp"])
def test_subprotocol_chosen(offer):
    """The first offered protocol the component speaks is chosen and echoed."""
    status_line, headers, _, _ = respond(GOOD + f"Sec-WebSocket-Protocol: {offer}\r\n\r\n", WampLike())
    assert status_line.endswith("101 Switching Protocols")
    assert dict(headers)["Sec-WebSocket-Protocol"] == "wamp"


@pytest.mark.parametrize("offer", [None, "wamp.2.json"])
def test_subprotocol_required(offer):
    """A server with protocols refuses clients offering none of them (426)."""
    extra = f"Sec-WebSocket-Protocol: {offer}\r\n" if offer else ""
    status_line, headers, _, connected = respond(GOOD + extra + "\r\n", WampLike())
    assert status_line == "HTTP/1.1 426 No Sec-WebSocket-Protocols requested supported"
    assert [h[0] for h in headers] == [
        "Connection",
        "Upgrade",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Protocol",
        "X-Powered-By",
    ]
    assert dict(headers)["Sec-WebSocket-Protocol"] == "wamp"
    assert not connected


def test_strict_check_can_be_turned_off():
    """With the strict check off, an unmatched offer is accepted without a protocol."""
    status_line, headers, _, _ = respond(
        GOOD + "Sec-WebSocket-Protocol: arduino\r\n\r\n", strict_sub_protocols=False
    )
    assert status_line.endswith("101 Switching Protocols")
    assert "Sec-WebSocket-Protocol" not in dict(headers)
    ws = WsServer(EchoServer()).set_strict_sub_protocol_check(False)
    assert ws.strict_sub_protocols is False


def test_negotiate_is_pure():
    """negotiate() decides from the request alone."""
    request = parse_request_head((GOOD + "\r\n").encode())
    assert negotiate(request, []).accepted
    assert negotiate(request, ["wamp"]).status == 426
    assert negotiate(request, ["wamp"], strict=False).sub_protocol is None


@pytest.mark.parametrize("origin", ["example.com", "http://a.example", "null", "not a url at all"])
def test_origin_is_left_to_origin_check(origin):
    """WsServer itself accepts any Origin (even a bare host, as Ratchet); OriginCheck decides."""
    component = RecordingComponent()
    status_line, _, _, _ = respond(GOOD + f"Origin: {origin}\r\n\r\n", component)
    assert status_line == "HTTP/1.1 101 Switching Protocols"
    assert component.events[0][1].http_request.headers["origin"] == origin


@pytest.mark.parametrize(
    "host", ["a b", "h:x", "h:123456", "[nothex]", "", "user@h", "ex\x85ample.com"]
)
def test_invalid_host_is_refused(host):
    """An invalid Host gets 400 (RFC 9112 §3.2) before Autobahn can misread it."""
    request = parse_request_head((GOOD.replace("127.0.0.1:9101", host) + "\r\n").encode("latin-1"))
    result = negotiate(request, [])
    assert result.status == 400 and "host[:port]" in result.detail
    assert respond(GOOD.replace("127.0.0.1:9101", host) + "\r\n")[0] == "HTTP/1.1 400 Bad Request"


@pytest.mark.parametrize("key", ["dGhlIHNhbXBsZSBub25jZQ==\xa0", "dGhlIHNhbXBsZSBub25jZQ===", "dGhlIHNhbXBsZSBub25jZQ"])
def test_key_must_be_exactly_24_base64_characters(key):
    """No trailing non-HTTP whitespace, excess or missing padding: Ratchet's 400."""
    status_line = respond(GOOD.replace(WS_KEY, key) + "\r\n")[0]
    assert status_line == "HTTP/1.1 400 Invalid Sec-WebSocket-Key"


def test_only_spaces_and_tabs_are_trimmed_from_list_elements():
    """'wamp\\x85' and 'websocket\\xa0' are not 'wamp' and 'websocket' (HTTP's OWS is SP/HTAB)."""
    offer = parse_request_head((GOOD + "Sec-WebSocket-Protocol: \twamp\x85 \r\n\r\n").encode("latin-1"))
    assert negotiate(offer, ["wamp"]).status == 426
    upgrade = parse_request_head((GOOD.replace("websocket", "websocket\xa0") + "\r\n").encode("latin-1"))
    assert negotiate(upgrade, []).status == 426
    spaced = parse_request_head((GOOD + "Sec-WebSocket-Protocol: foo ,\twamp \r\n\r\n").encode())
    assert negotiate(spaced, ["wamp"]).sub_protocol == "wamp"


def test_absolute_form_target_is_accepted():
    """GET http://host/path (RFC 9112 §3.2.2) is served like GET /path."""
    component = RecordingComponent()
    request_ = GOOD.replace("GET / ", "GET http://chat.example:9101/chat?room=1 ") + "\r\n"
    status_line, _, _, connected = respond(request_, component)
    assert status_line == "HTTP/1.1 101 Switching Protocols" and connected
    request = component.events[0][1].http_request
    assert (request.path, request.query, request.host) == ("/chat", {"room": "1"}, "chat.example")


@pytest.mark.parametrize("target", ["*", "127.0.0.1:9101", "ftp://h/"])
def test_other_target_forms_get_400(target):
    status_line, _, _, connected = respond(GOOD.replace("GET / ", f"GET {target} ") + "\r\n")
    assert status_line == "HTTP/1.1 400 Bad Request" and not connected


def test_lf_only_handshake_is_answered_at_once():
    """A hand-typed (nc) bare-LF handshake gets its 101 at once, not a timeout."""
    status_line, _, _, connected = respond(GOOD.replace("\r\n", "\n") + "\n")
    assert status_line == "HTTP/1.1 101 Switching Protocols" and connected


def test_0x85_in_a_header_value_does_not_split_it():
    """Autobahn split at U+0085 and saw two Hosts; it no longer sees that header."""
    status_line = respond(GOOD + "User-Agent: x\x85Host: evil\r\n\r\n")[0]
    assert status_line == "HTTP/1.1 101 Switching Protocols"


@pytest.mark.parametrize(
    "extensions",
    [
        "Sec-WebSocket-Extensions: permessage-deflate; bogus=1\r\n",
        "Sec-WebSocket-Extensions: a\r\nSec-WebSocket-Extensions: b\r\n",
    ],
)
def test_extension_offers_are_declined_without_compression(extensions):
    """Without compression every offer is declined (as Ratchet), none refused with 400."""
    status_line, headers, _, _ = respond(GOOD + extensions + "\r\n")
    assert status_line == "HTTP/1.1 101 Switching Protocols"
    assert "Sec-WebSocket-Extensions" not in dict(headers)
