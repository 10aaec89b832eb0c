"""
Node subscriptions (``Hub.subscribe_channel`` / ``relay`` /
``deliver_relayed``), their envelope, and ``RedisBackplane``'s side of
them over stand-ins for its Redis connections. Across real processes:
tests/wamp/test_wamp_redis.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, globalLogPublisher

from ratchetpy.exceptions import RedisUnavailable
from ratchetpy.hub import Hub, HubError
from ratchetpy.hub.envelope import Envelope, EnvelopeError
from ratchetpy.hub.redis_backplane import RedisBackplane
from ratchetpy.websocket.broadcast import PreparedMessage
from tests.support.linked_backplane import LinkedNodes


class Recorder:
    """A receiver that records what it is handed and says it delivered ``count``."""

    def __init__(self, count: int = 1) -> None:
        self.got: list[tuple[str | bytes, dict[str, Any]]] = []
        self.count = count

    def __call__(self, prepared: PreparedMessage, meta: Any) -> int:
        self.got.append((prepared.message, dict(meta)))
        return self.count


def test_the_backplane_hears_of_the_first_receiver_and_the_last() -> None:
    linked = LinkedNodes(1)
    hub, backplane = linked.hubs[0], linked.backplanes[0]
    first, second = Recorder(), Recorder()
    hub.subscribe_channel("wamp:t", first)
    hub.subscribe_channel("wamp:t", first)  # the same receiver again: one subscription
    hub.subscribe_channel("wamp:t", second)
    assert backplane.calls == [("sub", "wamp:t")] and hub.node_channels() == ["wamp:t"]
    hub.unsubscribe_channel("wamp:t", first)
    hub.unsubscribe_channel("wamp:t", first)  # not subscribed any more: nothing
    hub.unsubscribe_channel("never", first)
    assert backplane.calls == [("sub", "wamp:t")]
    hub.unsubscribe_channel("wamp:t", second)
    assert backplane.calls == [("sub", "wamp:t"), ("unsub", "wamp:t")]
    assert hub.node_channels() == []


@pytest.mark.parametrize(
    ("channel", "receiver", "error"),
    [
        ("", Recorder(), "must not be empty"),
        ("x" * 256, Recorder(), "at most 255"),
        ("a\nb", Recorder(), "control characters"),
        (5, Recorder(), "must be a string"),
        ("ok", "not callable", "receiver must be callable"),
    ],
)
def test_subscribe_channel_refuses_mistakes_naming_them(channel: Any, receiver: Any, error: str) -> None:
    hub = Hub()
    with pytest.raises(HubError, match=error):
        hub.subscribe_channel(channel, receiver)
    assert hub.node_channels() == []


def test_relay_without_a_backplane_does_nothing_and_with_one_hands_it_over_once() -> None:
    alone = Hub()
    receiver = Recorder()
    alone.subscribe_channel("c", receiver)
    alone.relay("c", "x", {"x": ["s"]})  # in-process: the caller delivered already
    assert receiver.got == []

    linked = LinkedNodes(3)
    a, b, c = linked.hubs
    on_b, on_c = Recorder(), Recorder()
    b.subscribe_channel("c", on_b)
    c.subscribe_channel("other", on_c)
    a.relay("c", "text", {"e": ["s1"]})
    a.relay("c", b"\x00binary")
    assert on_b.got == [("text", {"e": ["s1"]}), (b"\x00binary", {})]
    assert on_c.got == []
    assert [(ch, op) for ch, _, op, _ in linked.backplanes[0].relays] == [("c", 1), ("c", 2)]


def test_deliver_relayed_sums_receivers_and_survives_one_that_raises() -> None:
    hub = Hub()
    good, also_good = Recorder(2), Recorder(3)

    def broken(prepared: PreparedMessage, meta: Any) -> int:
        raise RuntimeError("receiver bug")

    for receiver in (good, broken, also_good):
        hub.subscribe_channel("c", receiver)
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        assert hub.deliver_relayed("c", PreparedMessage("m"), {}) == 5
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert good.got == also_good.got == [("m", {})]
    failures = [e for e in logged if e.get("log_level") == LogLevel.critical]
    assert len(failures) == 1 and failures[0]["channel"] == "c"
    assert hub.deliver_relayed("nobody", PreparedMessage("m"), {}) == 0


def test_a_relay_envelope_round_trips_and_its_meta_must_be_an_object() -> None:
    envelope = Envelope("rel", "n1", {"c": "wamp:t", "o": 1, "m": {"x": ["a"]}}, b"[8]")
    decoded = Envelope.decode(envelope.encode())
    assert (decoded.kind, decoded.node, decoded.header, decoded.payload) == (
        "rel",
        "n1",
        {"c": "wamp:t", "o": 1, "m": {"x": ["a"]}},
        b"[8]",
    )
    with pytest.raises(EnvelopeError, match="'m' is not a JSON object"):
        Envelope.decode(b'{"k":"rel","n":"n1","c":"x","m":[1]}\npayload')


# -- RedisBackplane ------------------------------------------------------------


class FakeSubscriber(Service):
    """Stands in for ``Subscriber``: records (un)subscriptions, never connects."""

    connected = True

    def __init__(self) -> None:
        self.interest: dict[str, list[Any]] = {}
        self.log: list[tuple[str, str]] = []

    def subscribe(self, name: str, callback: Any, *, sharded: bool = False) -> Deferred[bool]:
        self.interest.setdefault(name, []).append(callback)
        self.log.append(("sub", name))
        return succeed(True)

    def unsubscribe(self, name: str, callback: Any, *, sharded: bool = False) -> Deferred[bool]:
        if callback not in self.interest.get(name, []):
            raise ValueError(name)
        self.interest[name].remove(callback)
        if not self.interest[name]:
            del self.interest[name]
        self.log.append(("unsub", name))
        return succeed(True)

    def is_subscribed(self, name: str, *, sharded: bool = False) -> bool:
        return name in self.interest


class FakeClient(Service):
    """Stands in for ``RedisClient``: PUBLISH is recorded; every other command answers None."""

    on_usable: Any = None
    connected = True

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def publish(self, name: str, data: bytes) -> Deferred[int]:
        self.published.append((name, data))
        return succeed(1)

    spublish = publish

    def execute(self, *args: Any, timeout: float | None = None) -> Deferred[Any]:
        return succeed(None)

    def evalsha_or_eval(self, *args: Any) -> Deferred[Any]:
        return succeed(0)


@pytest.fixture
def redis_hub() -> Any:
    hub = Hub()
    subscriber, client = FakeSubscriber(), FakeClient()
    backplane = RedisBackplane(
        hub, "redis://127.0.0.1:1/0?prefix=p:", MemoryReactorClock(), client=client, subscriber=subscriber
    )
    yield hub, backplane, subscriber, client
    if backplane.running:
        backplane.stopService()


def test_redis_backplane_subscribes_relay_channels_only_while_receivers_are_here(redis_hub: Any) -> None:
    hub, backplane, subscriber, _ = redis_hub
    early = Recorder()
    hub.subscribe_channel("wamp:early", early)  # before the backplane started
    backplane.startService()
    assert "p:relay:{wamp:early}" in subscriber.interest
    later = Recorder()
    hub.subscribe_channel("wamp:later", later)
    hub.subscribe_channel("wamp:later", Recorder())  # a second receiver: no second SUBSCRIBE
    assert subscriber.log.count(("sub", "p:relay:{wamp:later}")) == 1
    hub.unsubscribe_channel("wamp:early", early)
    assert "p:relay:{wamp:early}" not in subscriber.interest
    # The hub's channels of members are another namespace.
    assert not any(name.startswith("p:ch:") for name in subscriber.interest)


def test_redis_backplane_relays_once_and_delivers_only_what_other_nodes_relayed(redis_hub: Any) -> None:
    hub, backplane, subscriber, client = redis_hub
    backplane.startService()
    receiver = Recorder(count=2)
    hub.subscribe_channel("wamp:t", receiver)
    hub.relay("wamp:t", '[8,"t",1]', {"x": ["s1"]})
    (name, data), = client.published
    assert name == "p:relay:{wamp:t}"
    sent = Envelope.decode(data)
    assert (sent.kind, sent.node, sent.header, sent.payload) == (
        "rel", hub.node, {"c": "wamp:t", "o": 1, "m": {"x": ["s1"]}}, b'[8,"t",1]'
    )
    (callback,) = subscriber.interest[name]
    callback(name.encode(), data)  # its own relay coming back: already delivered here
    assert receiver.got == []
    other = Envelope("rel", "node-b", {"c": "wamp:t", "o": 1, "m": {"e": ["s2"]}}, b'[8,"t",2]')
    callback(name.encode(), other.encode())
    assert receiver.got == [('[8,"t",2]', {"e": ["s2"]})]
    assert backplane.counters["received"] == 1 and backplane.counters["delivered_remote"] == 2
    # Not a relay, not an envelope, not UTF-8 text: dropped and counted.
    callback(name.encode(), Envelope("pub", "node-b", {"c": "wamp:t"}, b"x").encode())
    callback(name.encode(), b"garbage")
    callback(name.encode(), Envelope("rel", "node-b", {"c": "wamp:t", "o": 1}, b"\xff").encode())
    assert receiver.got == [('[8,"t",2]', {"e": ["s2"]})]
    assert backplane.counters["malformed"] == 2


def test_with_redis_down_a_relay_fails_fast_counted_and_logged_once(redis_hub: Any) -> None:
    """Redis unavailable: relay returns at once, the failure is counted, the outage logged once."""
    hub, backplane, _, client = redis_hub
    backplane.startService()
    client.publish = lambda name, data: fail(RedisUnavailable("Redis at 127.0.0.1:1 is unavailable"))
    logged: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        hub.relay("wamp:t", "one")
        hub.relay("wamp:t", "two")
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert backplane.counters["failures"] == 2
    warnings = [e for e in logged if e.get("log_level") == LogLevel.warn]
    assert len(warnings) == 1 and "relaying to 'wamp:t'" in warnings[0]["what"]
