"""
WAMP v1 protocol behaviour, in memory: the ``websockets`` sans-I/O client
talks to ``HttpServer(WsServer(WampServer(app)))`` over a StringTransport,
fed one byte at a time; and ``ServerProtocol`` driven with FakeConnections.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher

from ratchetpy import HttpServer, WsServer
from ratchetpy.exceptions import (
    ComponentError,
    ConfigurationError,
    JsonError,
    WampError,
)
from ratchetpy.testing import FakeConnection
from ratchetpy.wamp import (
    DEFAULT_SERVER_IDENT,
    ServerProtocol,
    Topic,
    WampConnection,
    WampServer,
    WampServerInterface,
)
from ratchetpy.wamp._json import decode, encode
from tests.support.memory import WsPeer
from tests.support.wamp import (
    WampEcho,
    WampRecorder,
    close_of,
    open_peer,
    texts,
    wamp_peer,
)

U = "http://example.com/simple/calc#add"


def raw_reply(peer: WsPeer, message: str) -> bytes:
    """The bytes the server writes after ``message`` (bypassing the client's checks)."""
    peer.client.send_text(message.encode())
    for data in peer.client.data_to_send():
        peer.memory.feed(data)
    return peer.memory.take()


def protocol_with(app: Any = None) -> tuple[ServerProtocol, FakeConnection, WampConnection]:
    """A bare ServerProtocol (topics as strings) with one FakeConnection open."""
    app = app or WampRecorder()
    protocol = ServerProtocol(app)
    fake = FakeConnection()
    protocol.on_open(fake)
    conn = protocol.connection(fake)
    assert conn is not None
    return protocol, fake, conn


# -- handshake ---------------------------------------------------------------


def test_subprotocol_wamp_is_selected_from_a_list() -> None:
    """A client offering ``foo, wamp`` gets 101 with ``Sec-WebSocket-Protocol: wamp``."""
    peer = wamp_peer(subprotocols=["foo", "wamp"])
    response = peer.handshake()
    assert response.status_code == 101
    assert response.headers["Sec-WebSocket-Protocol"] == "wamp"


@pytest.mark.parametrize("offered", [[], ["wamp.2.json"]])
def test_client_without_wamp_gets_426(offered: list[str]) -> None:
    """Without ``wamp`` offered the handshake is refused with Ratchet's 426."""
    response = wamp_peer(subprotocols=offered).handshake()
    assert response.status_code == 426
    assert response.reason_phrase == "No Sec-WebSocket-Protocols requested supported"
    assert response.headers["Sec-WebSocket-Protocol"] == "wamp"


def test_app_subprotocols_are_added() -> None:
    """An app's own ``get_sub_protocols()`` are offered after ``wamp``."""

    class WithProtocols(WampEcho):
        def get_sub_protocols(self) -> list[str]:
            return ["my.proto"]

    assert WampServer(WithProtocols()).get_sub_protocols() == ["wamp", "my.proto"]
    assert WampServer(WampEcho()).get_sub_protocols() == ["wamp"]


# -- WELCOME -----------------------------------------------------------------


def test_welcome_is_first_and_before_app_messages() -> None:
    """WELCOME arrives first, even when the app's on_open sends something."""

    class Greeter(WampEcho):
        def on_open(self, conn: Any) -> None:
            conn.event("http://example.com/hello", "hi")

    _, messages = open_peer(Greeter())
    assert messages[0][0] == 0 and messages[0][2] == 1
    assert messages[1] == [8, "http://example.com/hello", "hi"]


def test_welcome_bytes_match_ratchet() -> None:
    """WELCOME is ``[0,"<sid>",1,"Ratchet\\/0.4.4"]`` byte for byte, sid aside."""
    peer = wamp_peer()
    peer.client.send_request(peer.client.connect())
    events = peer.pump()
    welcome = events[1].data.decode()
    assert re.fullmatch(r'\[0,"[0-9a-f]{32}",1,"Ratchet\\/0\.4\.4"\]', welcome), welcome
    assert DEFAULT_SERVER_IDENT == "Ratchet/0.4.4"


def test_server_ident_is_configurable() -> None:
    """``server_ident`` replaces the name in WELCOME."""
    _, messages = open_peer(server_ident="MyServer/2.0")
    assert messages[0][3] == "MyServer/2.0"


def test_session_ids_are_unique_hex() -> None:
    """Session ids are 32 hex digits and differ between connections."""
    ids = {open_peer()[1][0][1] for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch("[0-9a-f]{32}", sid) for sid in ids)


# -- CALL --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, params",
    [
        ([23, 99], [23, 99]),
        ([], []),
        ([5], [5]),
        ([None], [None]),
        ([[1, 2, 3]], [1, 2, 3]),
        ([{"a": 1, "b": [2]}], {"a": 1, "b": [2]}),
        ([[1], [2]], [[1], [2]]),
        ([{}], {}),
    ],
)
def test_call_arguments_are_unwrapped_as_ratchet_does(args: list[Any], params: Any) -> None:
    """A single list/object argument becomes the params; otherwise the args list."""
    protocol, _, conn = protocol_with()
    protocol.on_message(conn.get_connection(), json.dumps([2, "c1", U, *args]))
    assert protocol.app.last() == ("call", "c1", U, params)


@pytest.mark.parametrize("call_id", ["c1", 12345, 1.5])
def test_call_id_keeps_its_json_type(call_id: Any) -> None:
    """The call id is echoed with its JSON type."""
    peer, _ = open_peer()
    reply = texts(peer.send_text(json.dumps([2, call_id, U, 1])))
    assert reply == [json.dumps([3, call_id, [1]], separators=(",", ":"))]


def test_call_in_binary_frame_is_accepted() -> None:
    """A CALL in a binary frame is handled; the reply is a text frame."""
    peer, _ = open_peer()
    assert texts(peer.send_binary(b'[2,"bin1","x",1]')) == ['[3,"bin1",[1]]']


def test_nothing_is_auto_replied() -> None:
    """Without call_result/call_error from the app, a CALL gets no answer."""
    peer, _ = open_peer(WampRecorder())
    assert peer.send_text(json.dumps([2, "c1", U])) == []


def test_call_error_details_only_when_given() -> None:
    """CALLERROR has 4 elements without details, 5 with (even falsy) details."""
    fake = FakeConnection()
    conn = WampConnection(fake, "x")
    topic = Topic("http://example.com/t")
    conn.call_error("e1", topic, "bad").call_error("e2", "u", "bad", 0).call_error("e3", "u")
    assert fake.sent[1:] == [
        '[4,"e1","http:\\/\\/example.com\\/t","bad"]',
        '[4,"e2","u","bad",0]',
        '[4,"e3","u",""]',
    ]


def test_call_result_defaults_to_empty_list() -> None:
    """``call_result(id)`` sends ``[3, id, []]``; ``None`` is sent as null."""
    fake = FakeConnection()
    WampConnection(fake, "x").call_result("a").call_result("b", None)
    assert fake.sent[1:] == ['[3,"a",[]]', '[3,"b",null]']


# -- PREFIX / CURIEs -----------------------------------------------------------


def test_prefix_resolution_inserts_hash_like_ratchet() -> None:
    """``prefix:action`` resolves to ``prefixes[prefix] + "#" + action``."""
    protocol, _, conn = protocol_with()
    ws = conn.get_connection()
    protocol.on_message(ws, '[1,"calc","http://example.com/simple/calc#"]')
    protocol.on_message(ws, '[1,"calc2","http://example.com/simple/calc"]')
    assert conn.get_uri("calc:square") == "http://example.com/simple/calc##square"
    assert conn.get_uri("calc2:square") == "http://example.com/simple/calc#square"
    assert conn.get_uri("unknownprefix:square") == "unknownprefix:square"
    assert conn.get_uri("a:b:error") == "a:b:error"
    assert conn.get_uri("http://example.com/calc:x") == "http://example.com/calc:x"
    assert conn.get_uri("https://example.com/calc:x") == "https://example.com/calc:x"
    # Ratchet would drop ":b" here; ratchetpy keeps the whole action.
    assert conn.get_uri("calc2:a:b") == "http://example.com/simple/calc#a:b"


def test_prefix_subscribe_and_publish_use_resolved_uris() -> None:
    """SUBSCRIBE/UNSUBSCRIBE/PUBLISH topics go through CURIE resolution too."""
    protocol, _, conn = protocol_with()
    ws = conn.get_connection()
    protocol.on_message(ws, '[1,"t","http://example.com/t"]')
    protocol.on_message(ws, '[5,"t:a"]')
    assert protocol.app.last() == ("subscribe", "http://example.com/t#a")
    protocol.on_message(ws, '[6,"t:a"]')
    assert protocol.app.last() == ("unsubscribe", "http://example.com/t#a")
    protocol.on_message(ws, '[7,"t:a",1]')
    assert protocol.app.last()[1] == "http://example.com/t#a"


def test_server_prefix_is_sent_and_stored() -> None:
    """``conn.prefix()`` sends PREFIX and resolves with it afterwards."""
    fake = FakeConnection()
    conn = WampConnection(fake, "x")
    conn.prefix("ev", "http://example.com/ev")
    assert fake.sent[-1] == '[1,"ev","http:\\/\\/example.com\\/ev"]'
    assert conn.get_uri("ev:x") == "http://example.com/ev#x"


def test_numeric_topics_become_strings() -> None:
    """Ratchet accepts numbers as topic URIs; the app sees them as strings."""
    protocol, _, conn = protocol_with()
    protocol.on_message(conn.get_connection(), "[5,123]")
    assert protocol.app.last() == ("subscribe", "123")


# -- PUBLISH -----------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, exclude, eligible",
    [
        ([], [], []),
        ([True], ["<me>"], []),
        ([False], [], []),
        ([1], ["<me>"], []),
        (["0"], [], []),
        ([None], [], []),
        ([["s1", "s2"]], ["s1", "s2"], []),
        ([[], ["s3"]], [], ["s3"]),
        ([True, None], ["<me>"], []),
        ([{"k": "s1"}], ["s1"], []),
    ],
)
def test_publish_exclude_and_eligible(extra: list[Any], exclude: list[Any], eligible: list[Any]) -> None:
    """``exclude`` may be a list or a flag (PHP truthiness: true = exclude me)."""
    protocol, _, conn = protocol_with()
    protocol.on_message(conn.get_connection(), json.dumps([7, "t", {"e": 1}, *extra]))
    me = conn.session_id
    assert protocol.app.last() == (
        "publish", "t", {"e": 1}, [me if x == "<me>" else x for x in exclude], eligible)


# -- malformed input -----------------------------------------------------------

MALFORMED = [
    "not json",
    "null",
    '{"a":1}',
    "[]",
    "[99]",
    '[0,"x",1,"y"]',
    '[3,"x",1]',
    '[4,"x","u","d"]',
    '[8,"t",1]',
    "[5,{}]",
    "[5,true]",
    "[5]",
    '[2,"c1"]',
    '[2,"c1",{}]',
    '[2,[1],"u"]',
    '[1,"p"]',
    '[1,"p",5]',
    '[7,"t"]',
    '[7,"t","e",[],"s"]',
    '["2","c1","u"]',
    '[true,"p","u"]',
    '[2.0,"c1","u"]',
    '"string"',
    "5",
    "[2,\"c\",\"u\",NaN]",
]


@pytest.mark.parametrize("message", MALFORMED, ids=lambda m: m[:20])
def test_malformed_messages_close_1007(message: str) -> None:
    """Malformed input closes the connection with 1007 and no reason."""
    peer, _ = open_peer()
    assert close_of(peer.send_text(message)) == (1007, "")


def test_invalid_utf8_in_binary_frame_closes_1007() -> None:
    """A binary WAMP message must be UTF-8 JSON too."""
    peer, _ = open_peer()
    assert close_of(peer.send_binary(b"[2,\"\xff\",\"u\"]")) == (1007, "")


def test_malformed_message_is_logged_and_other_clients_continue() -> None:
    """The 1007 close is logged with the reason; another connection is unaffected."""
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        reactor = MemoryReactorClock()
        stack = HttpServer(WsServer(WampServer(WampEcho())))
        good = WsPeer(stack=stack, subprotocols=["wamp"], reactor=reactor).open()
        bad = WsPeer(stack=stack, subprotocols=["wamp"], reactor=reactor).open()
        good.pump(), bad.pump()
        assert close_of(bad.send_text("[99]")) == (1007, "")
        assert texts(good.send_text('[2,"c","u",1]')) == ['[3,"c",[1]]']
    finally:
        globalLogPublisher.removeObserver(logged.append)
    lines = [e for e in logged if "1007" in e.get("log_format", "")]
    assert lines and "Invalid WAMP message type 99" in str(lines[0]["error"])


def test_protocol_raises_typed_errors() -> None:
    """ServerProtocol raises JsonError for bad JSON and WampError for the rest."""
    protocol, _, conn = protocol_with()
    with pytest.raises(JsonError, match="malformed JSON"):
        protocol.on_message(conn.get_connection(), "{")
    with pytest.raises(JsonError, match="stack depth"):
        protocol.on_message(conn.get_connection(), "[" * 100_000 + "]" * 100_000)
    with pytest.raises(WampError, match="CALLRESULT is sent by servers"):
        protocol.on_message(conn.get_connection(), '[3,"x",1]')


# -- errors and closing --------------------------------------------------------


def test_handler_exception_goes_to_on_error_with_the_wamp_connection() -> None:
    """An exception from on_call reaches on_error with the WampConnection; the connection stays open."""

    class Failing(WampRecorder):
        def on_call(self, conn: Any, id: Any, topic: Any, params: Any) -> None:
            raise RuntimeError("boom")

    app = Failing()
    peer, _ = open_peer(app)
    assert peer.send_text('[2,"c","u"]') == []
    kind, conn, exc = app.last()
    assert kind == "error" and isinstance(conn, WampConnection) and str(exc) == "boom"
    assert conn is app.events[0][1]
    assert not conn.closing


def test_bare_close_sends_1000_by_default() -> None:
    """The tutorial's on_error ``conn.close()`` sends 1000 (PHP: 0), a clean close."""
    peer, _ = open_peer()
    assert close_of(peer.send_text(json.dumps([2, "t1", "x#throw"]))) == (1000, "")


def test_bare_close_sends_0_when_asked_for_php_compatibility() -> None:
    """With ``default_close_code=0`` the wire carries PHP's ``88 02 00 00``."""
    peer, _ = open_peer(default_close_code=0)
    assert raw_reply(peer, json.dumps([2, "t1", "x#throw"])) == b"\x88\x02\x00\x00"


def test_handler_wamp_error_closes_1007() -> None:
    """A handler raising WampError closes with 1007, as Ratchet\\Wamp\\Exception does."""
    app = WampEcho()
    peer, _ = open_peer(app)
    assert close_of(peer.send_text(json.dumps([2, "t2", "x#wamp-exception"]))) == (1007, "")
    assert app.errors == []


def test_explicit_close_codes() -> None:
    """``close(code)`` passes the code on; invalid codes are refused."""
    fake = FakeConnection()
    conn = WampConnection(fake, "x")
    with pytest.raises(ValueError):
        conn.close(999)
    conn.close(4001)
    assert fake.close_code == 4001


@pytest.mark.parametrize("code", [999, 1005, "1000", True, None])
def test_default_close_code_is_validated(code: Any) -> None:
    with pytest.raises(ConfigurationError, match="default_close_code"):
        WampServer(WampEcho(), default_close_code=code)


def test_on_close_gets_the_same_connection() -> None:
    """on_open and on_close see the same WampConnection object."""
    app = WampRecorder()
    peer, _ = open_peer(app)
    peer.memory.lose()
    assert [e[0] for e in app.events] == ["open", "close"]
    assert app.events[0][1] is app.events[1][1]


def test_error_in_on_close_reaches_on_error_with_the_wamp_connection() -> None:
    """An exception from on_close goes to on_error with the same WampConnection."""

    class FailingClose(WampRecorder):
        def on_close(self, conn: Any) -> None:
            super().on_close(conn)
            raise RuntimeError("bug in on_close")

    app = FailingClose()
    peer, _ = open_peer(app)
    peer.memory.lose()
    assert [e[0] for e in app.events] == ["open", "close", "error"]
    assert app.events[2][1] is app.events[0][1]


def test_user_attributes_are_shared_but_wamp_state_is_not_in_the_bag() -> None:
    """User attributes reach every layer; ``conn.wamp`` is the WampConnection's own, read-only."""
    protocol, fake, conn = protocol_with()
    conn.nickname = "ann"
    assert fake.nickname == "ann"
    assert conn.wamp.session_id == conn.session_id
    assert conn.wamp.prefixes is conn.prefixes == {} and conn.subscriptions == set()
    assert not hasattr(fake, "wamp") and not hasattr(fake, "_wamp_connection")
    with pytest.raises(AttributeError):
        conn.wamp = "x"


def test_names_an_app_sets_on_its_connections_do_not_break_wamp() -> None:
    """
    An app using the names the framework once used (``WAMP``,
    ``_wamp_connection``, ``controller``, on the WAMP view and on the view
    below) still gets calls, events, on_close, and on_error with the
    WampConnection.
    """

    class Clobbering(WampEcho):
        def __init__(self) -> None:
            super().__init__()
            self.opened: list[Any] = []
            self.closed: list[Any] = []
            self.error_conns: list[Any] = []

        def on_open(self, conn: Any) -> None:
            for view in (conn, conn.get_connection()):
                view.WAMP = "x"
                view._wamp_connection = "x"
                view.controller = "x"
            self.opened.append(conn)

        def on_close(self, conn: Any) -> None:
            self.closed.append(conn)
            raise RuntimeError("on_close failed")

        def on_error(self, conn: Any, exc: Exception) -> None:
            self.error_conns.append(conn)

    app = Clobbering()
    reactor = MemoryReactorClock()
    stack = HttpServer(WsServer(WampServer(app)))
    a = WsPeer(stack=stack, subprotocols=["wamp"], reactor=reactor).open()
    b = WsPeer(stack=stack, subprotocols=["wamp"], reactor=reactor).open()
    a.pump(), b.pump()
    conn_a = app.opened[0]
    assert texts(a.send_text('[2,"c","u",1]')) == ['[3,"c",[1]]']
    assert a.send_text('[5,"http://t/"]') == []
    assert texts(b.send_text('[7,"http://t/","hi"]')) == []
    assert texts(a.pump()) == ['[8,"http:\\/\\/t\\/","hi"]']
    a.memory.lose()
    assert app.closed == [conn_a] and app.error_conns == [conn_a]
    assert conn_a.subscriptions == set()


def test_app_checks() -> None:
    """Apps missing WAMP methods, or using PHP names, are refused with a clear message."""

    class NoPublish:
        def on_open(self, c: Any) -> None: ...
        def on_close(self, c: Any) -> None: ...
        def on_error(self, c: Any, e: Any) -> None: ...
        def on_call(self, *a: Any) -> None: ...
        def on_subscribe(self, *a: Any) -> None: ...
        def on_unsubscribe(self, *a: Any) -> None: ...

    with pytest.raises(ComponentError, match="on_publish"):
        WampServer(NoPublish())
    with pytest.raises(ComponentError, match="onPublish\\(\\) -> on_publish"):

        class Php(WampServerInterface):
            def onPublish(self, *a: Any) -> None: ...


# -- JSON ----------------------------------------------------------------------


def test_json_encoding_matches_php_where_it_matters() -> None:
    """Compact, ``\\/`` and ``\\u00fc`` as PHP; ``{}`` and ``1.0`` kept (documented)."""
    assert encode(["x/y", "ü", 1.5, True, None, {"a": [1]}]) == '["x\\/y","\\u00fc",1.5,true,null,{"a":[1]}]'
    assert encode([{}, 1.0]) == "[{},1.0]"
    assert encode(Topic("http://t/x")) == '"http:\\/\\/t\\/x"'
    assert decode(encode(["a\\/b", "\\"])) == ["a\\/b", "\\"]
    with pytest.raises(ValueError):
        encode([float("nan")])
    with pytest.raises(TypeError, match="only carry JSON values"):
        encode([object()])


def test_bare_server_protocol_gives_strings_and_routes_errors_to_on_error() -> None:
    """Under ServerProtocol alone topics are strings and a malformed message is the app's on_error."""
    app = WampRecorder()
    peer = WsPeer(stack=HttpServer(WsServer(ServerProtocol(app))), subprotocols=["wamp"]).open()
    peer.pump()
    peer.send_text('[5,"http://example.com/t"]')
    assert app.last() == ("subscribe", "http://example.com/t")
    assert peer.send_text("[99]") == []
    kind, conn, exc = app.last()
    assert kind == "error" and isinstance(conn, WampConnection) and isinstance(exc, WampError)
