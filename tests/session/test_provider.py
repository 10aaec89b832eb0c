"""
``SessionProvider`` in memory: the layer between HttpServer and WsServer,
driven by a handler whose answers the test controls and a Clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import HttpServer, WsServer
from ratchetpy.exceptions import ConfigurationError, SessionDataError, SessionStoreUnavailable
from ratchetpy.session import FilesHandler, Session, SessionHandler, SessionProvider, SessionRecord
from ratchetpy.testing import RecordingComponent
from tests.support.memory import MemoryConnection, WsPeer
from tests.support.wire import handshake_request, parse_server_bytes, text_frame_bytes

SID = "abcdefghijklmnopqrstuvwxyz0123"
NOW = 1_800_000_000.0


class ControlledHandler(SessionHandler):
    """Answers each read with a Deferred the test fires (``answers``), recording the ids."""

    description = "the test's store"

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.answers: list[defer.Deferred[SessionRecord | None]] = []
        self.started: list[Any] = []
        self.stopped = 0

    def read_record(self, session_id: str) -> defer.Deferred[SessionRecord | None]:
        self.reads.append(session_id)
        answer: defer.Deferred[SessionRecord | None] = defer.Deferred()
        self.answers.append(answer)
        return answer

    def start(self, reactor: Any) -> None:
        self.started.append(reactor)

    def stop(self) -> defer.Deferred[None]:
        self.stopped += 1
        return defer.succeed(None)


class Recorder(RecordingComponent):
    """Records the session each connection had when on_open ran."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[Session] = []

    def on_open(self, conn: Any) -> None:
        self.sessions.append(conn.session)
        super().on_open(conn)


def stack(handler: SessionHandler, reactor: MemoryReactorClock, **kwargs: Any) -> tuple[Recorder, SessionProvider, Any]:
    app = Recorder()
    provider = SessionProvider(WsServer(app, log_connections=False), handler, now=lambda: NOW, **kwargs)
    return app, provider, HttpServer(provider)


def connect(top: Any, reactor: MemoryReactorClock, cookie: str | None, then: bytes = b"") -> MemoryConnection:
    memory = MemoryConnection(top, reactor)
    extra = f"Cookie: theme=dark; {cookie}\r\n" if cookie is not None else ""
    memory.feed(handshake_request("/", extra=extra) + then, one_byte_at_a_time=False)
    return memory


def test_no_cookie_opens_at_once_with_an_empty_session():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    memory = connect(top, reactor, None)
    assert memory.take().startswith(b"HTTP/1.1 101 ")
    assert handler.reads == []
    [session] = app.sessions
    assert session.status == "no-cookie" and session.get_id() == "" and session.is_empty()
    assert session.get_name() == "PHPSESSID"


def test_the_session_loads_before_on_open_and_early_frames_wait():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    memory = connect(top, reactor, f"PHPSESSID={SID}", then=text_frame_bytes("early"))
    assert handler.reads == [SID]
    assert memory.take() == b"" and app.events == []  # held: no 101, no on_open yet
    handler.answers[0].callback(SessionRecord(b'name|s:5:"alice";'))
    head, frames = parse_server_bytes(memory.take())
    assert head.startswith(b"HTTP/1.1 101 ")
    assert app.kinds() == ["open", "message"] and app.messages() == ["early"]
    [session] = app.sessions
    assert (session.get("name"), session.status, session.get_id()) == ("alice", "found", SID)
    assert memory.conn.session is session


def test_a_slow_store_gives_an_empty_session_after_load_timeout(logged):
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor, load_timeout=2)
    memory = connect(top, reactor, f"PHPSESSID={SID}")
    reactor.advance(1.9)
    assert app.events == []
    reactor.advance(0.2)
    assert memory.take().startswith(b"HTTP/1.1 101 ")
    assert app.sessions[0].status == "unavailable" and app.sessions[0].is_empty()
    text = " ".join(str(e.get("log_format", "")) for e in logged)
    assert "unavailable" in text and "load_timeout" in str([e.get("why") for e in logged])


def test_an_outage_is_logged_once_and_its_end_once(logged):
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    for _ in range(3):
        connect(top, reactor, f"PHPSESSID={SID}")
        handler.answers[-1].errback(SessionStoreUnavailable("Redis at redis://x is unavailable"))
    connect(top, reactor, f"PHPSESSID={SID}")
    handler.answers[-1].callback(None)
    formats = [str(e.get("log_format", "")) for e in logged if e.get("log_namespace") == "ratchetpy.session"]
    assert sum("unavailable:" in f for f in formats) == 1
    assert sum(f == "Session store {store} answers again" for f in formats) == 1
    assert [s.status for s in app.sessions] == ["unavailable"] * 3 + ["missing"]


@pytest.mark.parametrize(
    ("record", "status"),
    [
        (None, "missing"),
        (SessionRecord(b"garbage that is no session"), "invalid"),
        (SessionRecord(b'name|s:5:"alice";', modified=NOW - 1441), "expired"),
        (SessionRecord(b'name|s:5:"alice";', modified=NOW - 1439), "found"),
        (SessionRecord(b'_sf2_meta|a:2:{s:1:"u";i:%d;s:1:"l";i:60;}name|s:1:"a";' % int(NOW - 61)), "expired"),
        (SessionRecord(b'_sf2_meta|a:2:{s:1:"u";i:%d;s:1:"l";i:0;}name|s:1:"a";' % int(NOW - 1441)), "expired"),
        (SessionRecord(b'_sf2_meta|a:2:{s:1:"u";i:%d;s:1:"l";i:0;}name|s:1:"a";' % int(NOW - 100)), "found"),
    ],
)
def test_statuses(record, status):
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    connect(top, reactor, f"PHPSESSID={SID}")
    handler.answers[0].callback(record)
    [session] = app.sessions
    assert session.status == status
    assert session.is_empty() == (status != "found")


def test_a_serializer_mismatch_is_logged_with_the_fix(logged):
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor, serializer="php_binary")
    connect(top, reactor, f"PHPSESSID={SID}")
    handler.answers[0].callback(SessionRecord(b'a:1:{s:4:"name";s:5:"alice";}'))
    assert app.sessions[0].status == "invalid"
    [line] = [e for e in logged if "cannot be decoded" in str(e.get("log_format", ""))]
    assert line["serializer"] == "php_binary" and "serialize_handler" in line["log_format"]


@pytest.mark.parametrize("cookie", ["../../../etc/passwd", "a" * 300, "short", "abc%0d%0aSET"])
def test_hostile_cookies_never_reach_the_handler(cookie):
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    memory = connect(top, reactor, f"PHPSESSID={cookie}")
    assert memory.take().startswith(b"HTTP/1.1 101 ")
    assert handler.reads == [] and app.sessions[0].status == "invalid"


def test_session_name_option_and_the_other_cookies_ignored():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor, options={"session.name": "MYSESS", "cookie_domain": ".example.com"})
    connect(top, reactor, f"PHPSESSID=x; MYSESS={SID}")
    assert handler.reads == [SID]
    handler.answers[0].callback(SessionRecord(b"a|i:1;"))
    assert app.sessions[0].get_name() == "MYSESS" and app.sessions[0].get("a") == 1


def test_a_client_gone_while_loading_never_reaches_the_component():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    memory = connect(top, reactor, f"PHPSESSID={SID}")
    memory.lose()
    handler.answers[0].callback(SessionRecord(b"a|i:1;"))
    assert app.events == []


def test_reload_reads_the_store_again():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    connect(top, reactor, f"PHPSESSID={SID}")
    handler.answers[0].callback(SessionRecord(b'name|s:3:"old";'))
    session = app.sessions[0]
    fired: list[Session] = []
    session.reload().addCallback(fired.append)
    assert handler.reads == [SID, SID] and fired == []
    handler.answers[1].callback(SessionRecord(b'name|s:3:"new";'))
    assert fired == [session] and session.get("name") == "new"


def test_component_errors_in_on_open_reach_on_error():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()

    class Failing(RecordingComponent):
        def on_open(self, conn: Any) -> None:
            raise RuntimeError("boom")

    app = Failing()
    top = HttpServer(SessionProvider(WsServer(app, log_connections=False), handler))
    connect(top, reactor, f"PHPSESSID={SID}")
    handler.answers[0].callback(SessionRecord(b"a|i:1;"))
    assert app.kinds() == ["error"] and str(app.events[0][2]) == "boom"


def test_a_message_component_gets_a_ws_server_and_a_spec_a_handler(tmp_path):
    provider = SessionProvider(Recorder(), f"files:{tmp_path}")
    assert isinstance(provider.component, WsServer)
    assert isinstance(provider.handler, FilesHandler) and provider.handler.directory == str(tmp_path)


def test_the_handler_starts_once_and_stops():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    _, provider, top = stack(handler, reactor)
    connect(top, reactor, f"PHPSESSID={SID}")
    connect(top, reactor, f"PHPSESSID={SID}")
    assert handler.started == [reactor]
    provider.stop()
    assert handler.stopped == 1


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"serializer": "igbinary"}, "php, php_binary, php_serialize"),
        ({"options": {"session.nmae": "x"}}, "unknown session option"),
        ({"options": {"name": "a b"}}, "cannot be a cookie name"),
        ({"options": {"gc_maxlifetime": "soon"}}, "gc_maxlifetime"),
        ({"load_timeout": 0}, "load_timeout"),
    ],
)
def test_bad_settings(kwargs, says):
    with pytest.raises(ConfigurationError, match=says):
        SessionProvider(WsServer(Recorder()), ControlledHandler(), **kwargs)


def test_a_handler_that_is_no_handler():
    with pytest.raises(ConfigurationError, match="SessionHandler"):
        SessionProvider(WsServer(Recorder()), object())  # type: ignore[arg-type]


def test_the_serializer_from_the_ini_name():
    provider = SessionProvider(WsServer(Recorder()), ControlledHandler(), {"serialize_handler": "php_serialize"})
    assert provider.serializer == "php_serialize"


def test_data_errors_from_the_handler_are_invalid_sessions():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    connect(top, reactor, f"PHPSESSID={SID}")
    handler.answers[0].errback(SessionDataError("the session key holds a list"))
    assert app.sessions[0].status == "invalid"


def test_with_ws_peer_the_handshake_completes_after_loading():
    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    peer = WsPeer(stack=top, reactor=reactor)
    request = peer.client.connect()
    request.headers["Cookie"] = f"PHPSESSID={SID}"
    peer.client.send_request(request)
    assert peer.pump() == []
    handler.answers[0].callback(SessionRecord(b'name|s:2:"zo";'))
    events = peer.pump()
    assert events[0].status_code == 101
    assert app.sessions[0].get("name") == "zo"


def test_app_route_session_forms_and_stop(tmp_path):
    from ratchetpy import App
    from ratchetpy.http.origin import OriginCheck

    reactor = MemoryReactorClock()
    app = App("localhost", 0, reactor=reactor)
    handler = ControlledHandler()
    routed = app.route("/a", Recorder(), session=handler)
    assert isinstance(routed, OriginCheck) and isinstance(routed.component, SessionProvider)
    assert isinstance(routed.component.component, WsServer)
    assert routed.component.component in app.ws_servers  # counted in the App's hub
    open_any = app.route("/b", Recorder(), ["*"], session={"handler": f"files:{tmp_path}", "serializer": "php"})
    assert isinstance(open_any, SessionProvider) and open_any.serializer == "php"
    assert open_any.handler.directory == str(tmp_path)
    with pytest.raises(ConfigurationError, match="needs a 'handler'"):
        app.route("/c", Recorder(), session={"serializer": "php"})
    app.stopService()
    assert handler.stopped == 1


def test_a_client_flooding_while_its_session_loads_is_paused_then_resumed():
    from ratchetpy.session.provider import HELD_BYTES

    reactor = MemoryReactorClock()
    handler = ControlledHandler()
    app, _, top = stack(handler, reactor)
    memory = connect(top, reactor, f"PHPSESSID={SID}", then=text_frame_bytes("early"))
    assert memory.transport.producerState == "producing"
    flood = text_frame_bytes("x" * 1000)
    for _ in range(HELD_BYTES // len(flood) + 2):
        memory.feed(flood, one_byte_at_a_time=False)
    assert memory.transport.producerState == "paused"  # the server stopped reading
    handler.answers[0].callback(SessionRecord(b'name|s:5:"alice";'))
    assert memory.transport.producerState == "producing"
    _, frames = parse_server_bytes(memory.take())
    assert app.kinds()[:2] == ["open", "message"] and app.messages()[0] == "early"
    assert len(app.messages()) == HELD_BYTES // len(flood) + 3  # nothing lost
