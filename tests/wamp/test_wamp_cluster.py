"""
WAMP topics across processes, in memory: topic channel names, the hub
node subscriptions a ``TopicManager`` holds, ``Topic.broadcast`` with and
without a backplane, and two or three hubs joined by an in-memory
backplane (``tests/support/linked_backplane.py``) standing in for Redis.
The real thing, with processes and Redis: tests/wamp/test_wamp_redis.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher

from ratchetpy import HttpServer, WsServer
from ratchetpy.app import App
from ratchetpy.exceptions import ConfigurationError
from ratchetpy.hub import Hub
from ratchetpy.hub.names import MAX_NAME_LENGTH
from ratchetpy.wamp import ServerProtocol, Topic, TopicManager, WampServer
from ratchetpy.wamp import topic as topic_module
from ratchetpy.wamp.cluster import (
    DEFAULT_CHANNEL_PREFIX,
    channel_name,
    check_channel_prefix,
    read_meta,
    relay_meta,
)
from tests.support.linked_backplane import LinkedNodes
from tests.support.memory import WsPeer
from tests.support.wamp import WampEcho, WampRecorder, texts

T = "http://example.com/news"


class Node:
    """One in-memory WAMP server on ``hub``: ``WsServer(WampServer(WampEcho()))``."""

    def __init__(self, hub: Hub, reactor: MemoryReactorClock, **options: Any) -> None:
        self.app = WampEcho()
        self.server = WampServer(self.app, **options)
        self.stack = HttpServer(WsServer(self.server, hub=hub))
        self.reactor = reactor

    def client(self) -> Client:
        return Client(self)

    @property
    def manager(self) -> TopicManager:
        return self.server.topic_manager


class Client:
    """A WAMP client of a ``Node`` over the in-memory stack."""

    def __init__(self, node: Node) -> None:
        self.peer = WsPeer(stack=node.stack, subprotocols=["wamp"], reactor=node.reactor)
        self.peer.client.send_request(self.peer.client.connect())
        events = self.peer.pump()
        assert events[0].status_code == 101
        welcome = json.loads(events[1].data)
        self.session_id: str = welcome[1]
        self.inbox: list[str] = []

    def send(self, message: Any) -> None:
        """Send; what arrives meanwhile waits in ``inbox``."""
        self.inbox += texts(self.peer.send_text(json.dumps(message)))

    def received(self) -> list[str]:
        """Every message received since the last call."""
        got, self.inbox = self.inbox + texts(self.peer.pump()), []
        return got

    def events(self) -> list[Any]:
        return [json.loads(m)[2] for m in self.received()]

    def close(self) -> None:
        self.peer.client.send_close(1000)
        self.peer.pump()


@pytest.fixture
def nodes() -> Any:
    reactor = MemoryReactorClock()

    def make(count: int, **options: Any) -> tuple[LinkedNodes, list[Node]]:
        linked = LinkedNodes(count)
        return linked, [Node(hub, reactor, **options) for hub in linked.hubs]

    return make


# -- channel names -----------------------------------------------------------


def test_channel_names_are_the_uri_under_the_prefix_or_a_hash_when_they_cannot_be() -> None:
    """Short printable URIs keep their name; long, unprintable or '#'-led ones hash, deterministically."""
    assert DEFAULT_CHANNEL_PREFIX == "wamp:"
    assert channel_name("wamp:", T) == "wamp:" + T
    assert channel_name("wamp:", "") == "wamp:"
    fits = "u" * (MAX_NAME_LENGTH - len("wamp:"))
    assert channel_name("wamp:", fits) == "wamp:" + fits
    hashed = [fits + "u", "line\nbreak", "#" + "0" * 64, "\ud800 lone surrogate", "nb\u00a0sp"]
    names = [channel_name("wamp:", uri) for uri in hashed]
    for name in names:
        assert name.startswith("wamp:#") and len(name) == len("wamp:#") + 64
        assert name.isprintable() and len(name) <= MAX_NAME_LENGTH
    assert len(set(names)) == len(names)
    assert [channel_name("wamp:", uri) for uri in hashed] == names  # same on every node
    # A literal name never has '#' right after the prefix, so the forms never meet.
    assert channel_name("wamp:", "#" + names[0][len("wamp:#"):]) != names[0]
    assert channel_name("other:", T) != channel_name("wamp:", T)
    assert "ünïcode" in channel_name("wamp:", "ünïcode")


@pytest.mark.parametrize("prefix", ["", "wamp", ":", "a:b:", "wa#mp:", "tab\t:", "x" * 64 + ":", 5, None])
def test_a_bad_channel_prefix_is_refused_naming_the_option(prefix: Any) -> None:
    with pytest.raises(ConfigurationError, match="channel_prefix must be"):
        check_channel_prefix(prefix)
    with pytest.raises(ConfigurationError, match="channel_prefix must be"):
        WampServer(WampEcho(), channel_prefix=prefix)


def test_relay_meta_round_trips_and_malformed_meta_is_refused() -> None:
    assert relay_meta(frozenset(), frozenset()) == {}
    meta = relay_meta(frozenset({"b", "a"}), frozenset({"c"}))
    assert meta == {"x": ["a", "b"], "e": ["c"]}
    assert read_meta(meta) == (frozenset({"a", "b"}), frozenset({"c"}))
    assert read_meta({}) == (frozenset(), frozenset())
    assert read_meta({"x": "a"}) is None
    assert read_meta({"e": [1]}) is None


# -- without a backplane: as before --------------------------------------------


def test_without_a_backplane_broadcast_is_the_in_process_path_and_never_relays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub tracks the topic's channel, but a broadcast only encodes and frames once, locally."""
    calls: list[tuple[int, str]] = []
    real = topic_module._broadcast
    monkeypatch.setattr(
        topic_module, "_broadcast", lambda conns, msg: calls.append((len(list(conns)), msg)) or real(conns, msg)
    )

    def no_relay(*args: Any) -> None:
        raise AssertionError("relayed without a backplane")

    hub = Hub()
    monkeypatch.setattr(hub, "relay", no_relay)
    node = Node(hub, MemoryReactorClock())
    assert node.manager.hub is hub  # told by its WsServer before any connection
    a, b = node.client(), node.client()
    a.send([5, T])
    b.send([5, T])
    assert hub.node_channels() == ["wamp:" + T]
    a.send([7, T, {"n": 1}, True])
    assert calls == [(1, '[8,"http:\\/\\/example.com\\/news",{"n":1}]')]
    assert b.events() == [{"n": 1}] and a.received() == []
    node.manager.get_topic("http://example.com/nobody").broadcast("x")
    assert len(calls) == 1
    a.close()
    b.send([6, T])
    assert hub.node_channels() == []


def test_a_bare_topic_broadcasts_locally_only() -> None:
    """A Topic made by hand has no manager, hence no hub: nothing to relay."""
    topic = Topic(T)
    assert topic.broadcast("x") is topic


# -- across nodes ----------------------------------------------------------------


def test_a_broadcast_reaches_every_node_once_encoded_once(
    nodes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publishing node encodes the EVENT once; each other node with subscribers gets the same text once."""
    encoded: list[Any] = []
    real_encode = topic_module.encode
    monkeypatch.setattr(topic_module, "encode", lambda v: encoded.append(v) or real_encode(v))
    linked, (n1, n2, n3) = nodes(3)
    here, there, also_there = n1.client(), n2.client(), n2.client()
    elsewhere = n3.client()  # not subscribed: node 3 does not listen
    for client in (here, there, also_there):
        client.send([5, T])
    assert [b.subscribed for b in linked.backplanes] == [{"wamp:" + T}, {"wamp:" + T}, set()]
    here.send([7, T, {"headline": "ünïcode/slash"}])
    expected = '[8,"http:\\/\\/example.com\\/news",{"headline":"\\u00fcn\\u00efcode\\/slash"}]'
    for client in (here, there, also_there):
        assert client.received() == [expected]
    assert elsewhere.received() == []
    assert len(encoded) == 1
    (relay,) = linked.backplanes[0].relays
    assert relay == ("wamp:" + T, expected.encode(), 1, {})
    # Nothing comes back to the publishing node, nothing is relayed again.
    assert [len(b.relays) for b in linked.backplanes] == [1, 0, 0]


def test_exclude_and_eligible_travel_as_session_ids_and_apply_on_every_node(nodes: Any) -> None:
    linked, (n1, n2) = nodes(2)
    publisher, local = n1.client(), n1.client()
    remote, remote2 = n2.client(), n2.client()
    everyone = (publisher, local, remote, remote2)
    for client in everyone:
        client.send([5, T])
    publisher.send([7, T, "not me", True])
    publisher.send([7, T, "not remote", [remote.session_id]])
    publisher.send([7, T, "only remote2", [], [remote2.session_id]])
    publisher.send([7, T, "only local", [], [local.session_id]])
    publisher.send([7, T, "none", [remote.session_id], [remote.session_id]])
    assert publisher.events() == ["not remote"]
    assert local.events() == ["not me", "not remote", "only local"]
    assert remote.events() == ["not me"]
    assert remote2.events() == ["not me", "not remote", "only remote2"]
    metas = [meta for _, _, _, meta in linked.backplanes[0].relays]
    assert metas == [
        {"x": [publisher.session_id]},
        {"x": [remote.session_id]},
        {"e": [remote2.session_id]},
        # "only local": every eligible session is on node 1, so no relay
        {"x": [remote.session_id], "e": [remote.session_id]},
    ]


def test_server_code_broadcasts_across_nodes_from_a_node_without_subscribers(nodes: Any) -> None:
    """The Push tutorial's broadcast from server code, on a node where nobody subscribed."""
    linked, (n1, n2) = nodes(2)
    remote = n2.client()
    remote.send([5, T])
    topic = n1.manager.get_topic(T)
    assert len(topic) == 0
    topic.broadcast({"entry": 1}, eligible=[remote.session_id])
    topic.broadcast({"entry": 2}, exclude=[remote.session_id])
    assert remote.events() == [{"entry": 1}]


def test_the_node_subscription_follows_the_first_and_last_local_subscriber(nodes: Any) -> None:
    """Subscribe, unsubscribe and close move the node's interest in the topic's channel."""
    linked, (n1, _) = nodes(2)
    backplane = linked.backplanes[0]
    a, b = n1.client(), n1.client()
    a.send([5, T])
    b.send([5, T])
    a.send([5, T])  # a repeated SUBSCRIBE changes nothing
    a.send([5, "http://example.com/other"])
    assert backplane.calls == [("sub", "wamp:" + T), ("sub", "wamp:http://example.com/other")]
    a.send([6, T])
    assert backplane.subscribed == {"wamp:" + T, "wamp:http://example.com/other"}
    a.close()  # its last topic on this node
    b.send([6, T])
    assert backplane.calls[2:] == [
        ("unsub", "wamp:http://example.com/other"),
        ("unsub", "wamp:" + T),
    ]
    assert backplane.subscribed == set() and linked.hubs[0].node_channels() == []
    b.send([5, T])  # interest again: subscribed again
    assert backplane.calls[-1] == ("sub", "wamp:" + T)


def test_two_wamp_servers_on_one_hub_keep_their_topics_apart_by_prefix(nodes: Any) -> None:
    reactor = MemoryReactorClock()
    linked = LinkedNodes(2)
    first = [Node(hub, reactor) for hub in linked.hubs]
    second = [Node(hub, reactor, channel_prefix="chat:") for hub in linked.hubs]
    one, two = first[1].client(), second[1].client()
    one.send([5, T])
    two.send([5, T])
    first[0].manager.get_topic(T).broadcast("first")
    second[0].manager.get_topic(T).broadcast("second")
    assert one.events() == ["first"] and two.events() == ["second"]


def test_a_long_uri_is_relayed_under_its_hashed_name(nodes: Any) -> None:
    linked, (n1, n2) = nodes(2)
    uri = "http://example.com/" + "x" * 1000
    remote = n2.client()
    remote.send([5, uri])
    assert linked.backplanes[1].subscribed == {channel_name("wamp:", uri)}
    n1.client().send([7, uri, "long"])
    assert remote.events() == ["long"]


def test_a_relay_with_malformed_filters_is_dropped_and_logged(nodes: Any) -> None:
    """A foreign program on the relay channels cannot widen an eligible list by garbling it."""
    linked, (_, n2) = nodes(2)
    remote = n2.client()
    remote.send([5, T])
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        delivered = linked.hubs[1].deliver_relayed(
            "wamp:" + T, topic_module.prepare('[8,"x","y"]'), {"e": "not-a-list"}
        )
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert delivered == 0 and remote.received() == []
    warnings = [e for e in logged if e.get("log_level") == LogLevel.warn]
    assert warnings and "malformed exclude/eligible" in warnings[0]["log_format"]


# -- which hub -------------------------------------------------------------------


def test_use_hub_moves_the_node_subscriptions() -> None:
    old, new = LinkedNodes(1), LinkedNodes(1)
    node = Node(old.hubs[0], MemoryReactorClock())
    node.client().send([5, T])
    node.server.use_hub(new.hubs[0])
    assert old.backplanes[0].calls == [("sub", "wamp:" + T), ("unsub", "wamp:" + T)]
    assert new.backplanes[0].subscribed == {"wamp:" + T}
    assert old.hubs[0].node_channels() == [] and new.hubs[0].node_channels() == ["wamp:" + T]


def test_a_bare_topic_manager_finds_the_hub_of_its_first_connection() -> None:
    """ServerProtocol(TopicManager(app)) under a WsServer: the hub comes with the connections."""
    hub = Hub()
    manager = TopicManager(WampRecorder())
    stack = HttpServer(WsServer(ServerProtocol(manager), hub=hub))
    assert manager.hub is None
    peer = WsPeer(stack=stack, subprotocols=["wamp"], reactor=MemoryReactorClock()).open()
    assert manager.hub is hub
    peer.send_text(json.dumps([5, T]))
    assert hub.node_channels() == ["wamp:" + T]


def test_an_app_route_gives_its_wamp_server_the_apps_hub() -> None:
    """Every WAMP route of an App rides on app.hub: routed apps, WampServers, and WsServers given as is."""
    app = App("*", 0, reactor=MemoryReactorClock())
    routed = app.route("/a", WampEcho(), ["*"])
    own = WsServer(WampServer(WampEcho()))
    app.route("/b", own, ["*"])
    assert routed.component.topic_manager.hub is app.hub
    assert own.hub is app.hub and own.component.topic_manager.hub is app.hub
