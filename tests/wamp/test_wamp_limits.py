"""
Per-connection bounds on WAMP state (``max_uri_length``, ``max_prefixes``,
``max_subscriptions``): validation, close 1008 with a log line naming the
option, and state freed by reference counting when a connection closes.
"""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any

import pytest
from twisted.logger import LogLevel

from ratchetpy import HttpServer, WsServer
from ratchetpy.exceptions import ConfigurationError
from ratchetpy.testing import FakeConnection
from ratchetpy.wamp import ServerProtocol, WampServer
from ratchetpy.wamp.limits import (
    DEFAULT_MAX_PREFIXES,
    DEFAULT_MAX_SUBSCRIPTIONS,
    DEFAULT_MAX_URI_LENGTH,
)
from tests.support.memory import WsPeer
from tests.support.wamp import WampEcho, WampRecorder, close_of, open_peer, texts

OPTIONS = ["max_uri_length", "max_prefixes", "max_subscriptions"]


def limit_lines(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if "option" in e and e.get("log_namespace") == "ratchetpy.wamp"]


def server_on_fake(**options: Any) -> tuple[WampServer, WampRecorder, FakeConnection]:
    app = WampRecorder()
    server = WampServer(app, **options)
    fake = FakeConnection()
    server.on_open(fake)
    return server, app, fake


# -- options -------------------------------------------------------------------


def test_defaults() -> None:
    """The documented defaults are the ones in force."""
    server = WampServer(WampEcho())
    assert (DEFAULT_MAX_URI_LENGTH, DEFAULT_MAX_PREFIXES, DEFAULT_MAX_SUBSCRIPTIONS) == (2048, 64, 1000)
    assert server.wamp_protocol.max_uri_length == 2048
    assert server.wamp_protocol.max_prefixes == 64
    assert server.topic_manager.max_subscriptions == 1000


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("value", [0, -1, True, "10", 1.5])
def test_bad_limits_are_refused(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=option):
        WampServer(WampEcho(), **{option: value})


@pytest.mark.parametrize("option", OPTIONS)
def test_none_lifts_a_limit(option: str) -> None:
    server = WampServer(WampEcho(), **{option: None})
    owner = server.topic_manager if option == "max_subscriptions" else server.wamp_protocol
    assert getattr(owner, option) is None


# -- URI length ------------------------------------------------------------------

LONG = "x" * 21  # over max_uri_length=20 below
OK = "x" * 20


@pytest.mark.parametrize(
    "message",
    [
        [2, "c1", LONG],
        [7, LONG, "event"],
        [5, LONG],
        [6, LONG],
        [1, LONG, "http://a/"],
        [1, "p", "http://a/" + LONG[9:]],
        [2, "c1", 10**20],  # a numeric topic's decimal form counts too
    ],
    ids=["call", "publish", "subscribe", "unsubscribe", "prefix-name", "prefix-uri", "number"],
)
def test_over_long_uris_close_1008(message: list[Any], logged: list[dict[str, Any]]) -> None:
    """Any URI, CURIE or prefix over max_uri_length closes 1008 before the app sees it."""
    app = WampRecorder()
    peer, _ = open_peer(app, max_uri_length=20)
    assert close_of(peer.send_text(json.dumps(message))) == (1008, "")
    assert [e[0] for e in app.events] == ["open"]
    [line] = limit_lines(logged)
    assert line["log_level"] == LogLevel.warn
    assert (line["option"], line["limit"], line["size"], line["code"]) == ("max_uri_length", 20, 21, 1008)
    assert "WampServer({option}=...)" in line["log_format"]


def test_uri_at_the_limit_is_accepted() -> None:
    server, app, fake = server_on_fake(max_uri_length=20)
    server.on_message(fake, json.dumps([2, "c1", OK]))
    server.on_message(fake, json.dumps([1, "p" * 20, OK]))
    assert app.last()[0] == "call" and fake.close_code is None


def test_a_curie_resolving_over_the_limit_closes_1008() -> None:
    """``p:action`` is checked after resolution too: the topic kept is the resolved URI."""
    server, app, fake = server_on_fake(max_uri_length=20)
    server.on_message(fake, json.dumps([1, "p", "http://ex.com/"]))  # 14 characters
    server.on_message(fake, json.dumps([5, "p:abcde"]))  # resolves to 20
    assert app.last()[1].id == "http://ex.com/#abcde"
    server.on_message(fake, json.dumps([5, "p:abcdef"]))  # resolves to 21
    assert fake.close_code == 1008
    assert app.last()[1].id == "http://ex.com/#abcde"


# -- prefix and subscription counts -------------------------------------------------


def test_prefix_count_is_capped(logged: list[dict[str, Any]]) -> None:
    """Redefining a prefix is free; one more than max_prefixes closes 1008."""
    server, app, fake = server_on_fake(max_prefixes=3)
    conn = server.connection(fake)
    assert conn is not None
    for name in ("a", "b", "c", "a"):
        server.on_message(fake, json.dumps([1, name, f"http://{name}/"]))
    assert fake.close_code is None and len(conn.prefixes) == 3
    server.on_message(fake, json.dumps([1, "d", "http://d/"]))
    assert fake.close_code == 1008
    assert sorted(conn.prefixes) == ["a", "b", "c"]
    [line] = limit_lines(logged)
    assert (line["option"], line["limit"], line["size"]) == ("max_prefixes", 3, 4)


def test_subscription_count_is_capped(logged: list[dict[str, Any]]) -> None:
    """Repeats do not count, unsubscribing frees a slot; one more than the cap closes 1008."""
    server, app, fake = server_on_fake(max_subscriptions=2)
    conn = server.connection(fake)
    assert conn is not None
    for message in ([5, "t1"], [5, "t2"], [5, "t2"], [6, "t1"], [5, "t3"]):
        server.on_message(fake, json.dumps(message))
    assert fake.close_code is None
    assert sorted(t.id for t in conn.subscriptions) == ["t2", "t3"]
    server.on_message(fake, json.dumps([5, "t4"]))
    assert fake.close_code == 1008
    assert sorted(t.id for t in conn.subscriptions) == ["t2", "t3"]
    assert server.topic_manager.get("t4") is None
    assert [e[1].id for e in app.events if e[0] == "subscribe"] == ["t1", "t2", "t3"]
    [line] = limit_lines(logged)
    assert (line["option"], line["limit"]) == ("max_subscriptions", 2)


def test_messages_after_a_limit_close_are_ignored(logged: list[dict[str, Any]]) -> None:
    """A client flooding past a limit costs one close and one log line, not one per message."""
    server, app, fake = server_on_fake(max_subscriptions=10)
    for i in range(1000):
        server.on_message(fake, json.dumps([5, f"t{i}"]))
    conn = server.connection(fake)
    assert conn is not None and len(conn.subscriptions) == 10
    assert len([e for e in app.events if e[0] == "subscribe"]) == 10
    assert len(limit_lines(logged)) == 1


def test_bare_server_protocol_enforces_its_limits() -> None:
    """ServerProtocol alone bounds URIs and prefixes (subscriptions are the app's there)."""
    app = WampRecorder()
    protocol = ServerProtocol(app, max_uri_length=10, max_prefixes=1)
    a, b = FakeConnection(), FakeConnection()
    protocol.on_open(a)
    protocol.on_open(b)
    protocol.on_message(a, json.dumps([5, "x" * 11]))
    protocol.on_message(b, json.dumps([1, "p", "http://p/"]))
    protocol.on_message(b, json.dumps([1, "q", "http://q/"]))
    assert (a.close_code, b.close_code) == (1008, 1008)
    assert [e[0] for e in app.events] == ["open", "open"]


def test_over_the_limit_over_the_wire_and_others_unaffected() -> None:
    """Over the full stack: the offender gets 1008; another client keeps working."""
    app = WampEcho()
    bad, _ = open_peer(app, max_subscriptions=1)
    good, _ = open_peer(app, max_subscriptions=1)
    bad.send_text('[5,"a"]')
    assert close_of(bad.send_text('[5,"b"]')) == (1008, "")
    assert texts(good.send_text('[2,"c","u",1]')) == ['[3,"c",[1]]']


# -- state freed on close ---------------------------------------------------------------


class WeakApp(WampEcho):
    """Keeps nothing but weak references to what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.conn_ref: weakref.ref[Any] | None = None
        self.topic_refs: list[weakref.ref[Any]] = []

    def on_open(self, conn: Any) -> None:
        self.conn_ref = weakref.ref(conn)

    def on_close(self, conn: Any) -> None:
        pass

    def on_subscribe(self, conn: Any, topic: Any) -> None:
        self.topic_refs.append(weakref.ref(topic))


def test_closed_connection_is_freed_without_the_cyclic_gc() -> None:
    """With gc disabled, a closed WAMP connection, its state and its topics are freed by refcounting."""
    app = WeakApp()
    server = WampServer(app)
    peer = WsPeer(stack=HttpServer(WsServer(server)), subprotocols=["wamp"]).open()
    peer.pump()
    peer.send_text('[1,"p","http://example.com/"]')
    peer.send_text('[5,"p:a"]')
    peer.send_text('[5,"http://example.com/b"]')
    assert texts(peer.send_text('[2,"c","p:x",1]')) == ['[3,"c",[1]]']
    assert app.conn_ref is not None and app.conn_ref() is not None
    assert len(app.topic_refs) == 2 and all(ref() is not None for ref in app.topic_refs)
    gc.collect()
    gc.disable()
    try:
        peer.memory.lose()
        assert app.conn_ref() is None
        assert [ref() for ref in app.topic_refs] == [None, None]
        assert server.topic_manager.topics == {}
        # The layer below never carried the WAMP state.
        assert not hasattr(peer.memory.conn, "wamp")
        assert not hasattr(peer.memory.conn, "_wamp_connection")
    finally:
        gc.enable()
