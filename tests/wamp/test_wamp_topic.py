"""``Topic`` and ``TopicManager``: subscriptions, broadcast rules and cost, topic lifetime."""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import HttpServer, WsServer
from ratchetpy.testing import FakeConnection
from ratchetpy.wamp import (
    ServerProtocol,
    Topic,
    TopicManager,
    WampConnection,
    WampServer,
)
from ratchetpy.wamp import topic as topic_module
from tests.support.memory import WsPeer
from tests.support.wamp import WampRecorder, texts


def connect(manager: TopicManager) -> tuple[ServerProtocol, Any]:
    """A ServerProtocol over ``manager`` and a function opening FakeConnections."""
    protocol = ServerProtocol(manager)

    def open_one() -> tuple[FakeConnection, WampConnection]:
        fake = FakeConnection()
        protocol.on_open(fake)
        conn = protocol.connection(fake)
        assert conn is not None
        return fake, conn

    return protocol, open_one


def events(fake: FakeConnection) -> list[Any]:
    return [json.loads(m) for m in fake.sent[1:]]  # [0] is WELCOME


def test_topic_basics() -> None:
    """A Topic is its URI; it holds, counts and iterates its subscribers."""
    topic = Topic("http://example.com/t")
    a, b = WampConnection(FakeConnection(), "x"), WampConnection(FakeConnection(), "x")
    assert str(topic) == topic.id == topic.get_id() == "http://example.com/t"
    assert topic.add(a).add(b).add(a) is topic
    assert len(topic) == topic.count() == 2 and list(topic) == [a, b]
    assert topic.has(a) and a in topic
    topic.remove(a).remove(a)
    assert list(topic) == [b] and not topic.has(a)
    assert topic  # truthy even when empty, like a PHP object
    assert Topic(5).id == "5"


def test_duplicate_subscribe_is_ignored() -> None:
    """A second SUBSCRIBE to the same topic neither re-adds nor reaches the app."""
    app = WampRecorder()
    protocol, open_one = connect(TopicManager(app))
    fake, conn = open_one()
    protocol.on_message(fake, '[5,"t"]')
    protocol.on_message(fake, '[5,"t"]')
    subscribes = [e for e in app.events if e[0] == "subscribe"]
    assert len(subscribes) == 1 and isinstance(subscribes[0][1], Topic)
    assert len(subscribes[0][1]) == 1 and conn.wamp.subscriptions == {subscribes[0][1]}


def test_unsubscribe_of_unknown_topic_is_ignored() -> None:
    """UNSUBSCRIBE without a subscription does not reach the app."""
    app = WampRecorder()
    protocol, open_one = connect(TopicManager(app))
    fake, _ = open_one()
    protocol.on_message(fake, '[6,"never"]')
    assert [e[0] for e in app.events] == ["open"]


def test_close_removes_from_all_topics_after_app_on_close() -> None:
    """On close the app still sees the connection subscribed, then it leaves every topic."""
    seen: list[int] = []

    class App(WampRecorder):
        def on_close(self, conn: Any) -> None:
            seen.extend(len(t) for t in conn.wamp.subscriptions)
            raise RuntimeError("app bug in on_close")

    manager = TopicManager(App())
    protocol, open_one = connect(manager)
    fake, conn = open_one()
    protocol.on_message(fake, '[5,"a"]')
    protocol.on_message(fake, '[5,"b"]')
    topics = list(conn.wamp.subscriptions)
    assert protocol.on_close(fake) is None  # the app's exception went to its on_error
    assert manager.app.last()[:2] == ("error", conn)
    assert seen == [1, 1]
    assert all(len(t) == 0 for t in topics) and conn.wamp.subscriptions == set()
    assert manager.topics == {}


def test_call_and_publish_get_topic_objects() -> None:
    """Under TopicManager, on_call and on_publish get the Topic for the URI."""
    app = WampRecorder()
    protocol, open_one = connect(TopicManager(app))
    fake, _ = open_one()
    protocol.on_message(fake, '[5,"t"]')
    protocol.on_message(fake, '[2,"c","t"]')
    call_topic = app.last()[2]
    protocol.on_message(fake, '[7,"t","e"]')
    assert app.last()[1] is call_topic is app.events[1][1]


def test_topic_stays_the_same_object_while_the_app_holds_it() -> None:
    """
    The Push tutorial keeps Topics in a dict: after everyone unsubscribed
    and someone subscribes again, the held Topic is the live one (PHP
    Ratchet made a new one, so a broadcast to the held one reached nobody).
    """
    held: dict[str, Topic] = {}

    class Pusher(WampRecorder):
        def on_subscribe(self, conn: Any, topic: Any) -> None:
            held.setdefault(topic.id, topic)

    protocol, open_one = connect(TopicManager(Pusher()))
    fake_a, _ = open_one()
    protocol.on_message(fake_a, '[5,"kittens"]')
    protocol.on_message(fake_a, '[6,"kittens"]')
    fake_b, _ = open_one()
    protocol.on_message(fake_b, '[5,"kittens"]')
    held["kittens"].broadcast({"title": "new"})
    assert events(fake_b) == [[8, "kittens", {"title": "new"}]]
    assert events(fake_a) == []


def test_unused_topics_are_freed() -> None:
    """A topic nobody subscribes to or holds is not kept (PHP keeps every topic ever used)."""
    manager = TopicManager(WampRecorder())
    protocol, open_one = connect(manager)
    fake, _ = open_one()
    protocol.on_message(fake, '[5,"t"]')
    ref = weakref.ref(manager.get("t"))  # type: ignore[arg-type]
    protocol.on_message(fake, '[6,"t"]')
    protocol.on_message(fake, '[7,"other","e"]')
    manager.app.events.clear()
    gc.collect()
    assert ref() is None
    assert manager.get("t") is None and manager.topics == {}


def test_broadcast_exclude_and_eligible() -> None:
    """exclude skips session ids (or connections); a non-empty eligible is an allow-list."""
    protocol, open_one = connect(TopicManager(WampRecorder()))
    opened = [open_one() for _ in range(3)]
    for fake, _ in opened:
        protocol.on_message(fake, '[5,"t"]')
    (fa, a), (fb, b), (fc, c) = opened
    topic = next(iter(a.wamp.subscriptions))
    topic.broadcast("all")
    topic.broadcast("not a", exclude=[a.session_id])
    topic.broadcast("only b", eligible=[b.session_id])
    topic.broadcast("c by conn", exclude=[a], eligible=[b, c.session_id])
    topic.broadcast("nobody", exclude=[b.session_id], eligible=[b.session_id])
    assert [e[2] for e in events(fa)] == ["all"]
    assert [e[2] for e in events(fb)] == ["all", "not a", "only b", "c by conn"]
    assert [e[2] for e in events(fc)] == ["all", "not a", "c by conn"]
    with pytest.raises(TypeError, match="list of session ids"):
        topic.broadcast("x", exclude=a.session_id)


def test_broadcast_encodes_and_frames_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One Topic.broadcast is one JSON encoding and one broadcast() call for all subscribers."""
    encoded: list[Any] = []
    broadcasts: list[tuple[list[Any], str]] = []
    real_encode, real_broadcast = topic_module.encode, topic_module._broadcast
    monkeypatch.setattr(topic_module, "encode", lambda v: encoded.append(v) or real_encode(v))
    monkeypatch.setattr(
        topic_module, "_broadcast",
        lambda conns, msg: broadcasts.append((list(conns), msg)) or real_broadcast(conns, msg))

    reactor = MemoryReactorClock()
    stack = HttpServer(WsServer(WampServer(WampRecorder())))
    peers = [WsPeer(stack=stack, subprotocols=["wamp"], reactor=reactor).open() for _ in range(20)]
    for peer in peers:
        peer.pump()
        peer.send_text('[5,"t"]')
    topic = stack.component.component.topic_manager.get("t")
    topic.broadcast({"n": 1}, exclude=[])
    assert len(encoded) == 1 and len(broadcasts) == 1
    assert len(broadcasts[0][0]) == 20
    for peer in peers:
        assert texts(peer.pump()) == ['[8,"t",{"n":1}]']


def test_broadcast_skips_closing_connections() -> None:
    """A subscriber that is closing gets nothing; the others do."""
    reactor = MemoryReactorClock()
    server = WampServer(WampRecorder())
    stack = HttpServer(WsServer(server))
    a = WsPeer(stack=stack, subprotocols=["wamp"], reactor=reactor).open()
    b = WsPeer(stack=stack, subprotocols=["wamp"], reactor=reactor).open()
    for peer in (a, b):
        peer.pump()
        peer.send_text('[5,"t"]')
    topic = server.topic_manager.get("t")
    first = next(iter(topic))
    first.close(1001)
    assert first.closing and len(topic) == 2
    topic.broadcast("x")
    assert texts(b.pump()) == ['[8,"t","x"]']
    assert [f.opcode for f in a.pump()] == [8]
