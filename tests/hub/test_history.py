"""Channel history in one process: policies, the in-memory store's semantics, and the hub's history API."""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from ratchetpy.hub import Hub, HubError
from ratchetpy.hub.history import (
    HistoryPolicies,
    HistoryPolicy,
    MemoryHistory,
    Publication,
    StreamPosition,
    position_of,
)
from ratchetpy.hub.recovery import JsonPositions
from ratchetpy.testing import FakeConnection
from ratchetpy.websocket.broadcast import prepare


def store(clock: Clock | None = None) -> tuple[MemoryHistory, Clock]:
    clock = clock or Clock()
    return MemoryHistory(clock.seconds), clock


def append(history: MemoryHistory, channel: str, text: str, policy: HistoryPolicy) -> Publication:
    return history.append(channel, prepare(text), frozenset(), policy)


def messages(result) -> list:
    return [p.message for p in result.publications]


POLICY = HistoryPolicy(size=3, ttl=60, meta_ttl=600)


# -- the store ----------------------------------------------------------------


def test_offsets_count_up_in_one_epoch_per_channel():
    history, _ = store()
    first = append(history, "a", "one", POLICY)
    second = append(history, "a", "two", POLICY)
    other = append(history, "b", "x", POLICY)
    assert (first.offset, second.offset, other.offset) == (1, 2, 1)
    assert first.epoch == second.epoch != other.epoch
    assert second.position == StreamPosition(first.epoch, 2)


def test_reading_since_a_position_gives_what_came_after_it_in_order():
    history, _ = store()
    pubs = [append(history, "a", f"m{i}", POLICY) for i in range(1, 4)]
    epoch = pubs[0].epoch
    result = history.read("a", StreamPosition(epoch, 1), None, POLICY)
    assert messages(result) == ["m2", "m3"]
    assert (result.epoch, result.offset, result.reset) == (epoch, 3, False)
    assert messages(history.read("a", StreamPosition(epoch, 1), 1, POLICY)) == ["m2"]
    up_to_date = history.read("a", StreamPosition(epoch, 3), None, POLICY)
    assert up_to_date.publications == () and not up_to_date.reset


def test_reading_without_a_position_gives_the_newest():
    history, _ = store()
    for i in range(1, 4):
        append(history, "a", f"m{i}", POLICY)
    assert messages(history.read("a", None, None, POLICY)) == ["m1", "m2", "m3"]
    assert messages(history.read("a", None, 2, POLICY)) == ["m2", "m3"]
    only_position = history.read("a", None, 0, POLICY)
    assert only_position.publications == () and only_position.offset == 3


def test_a_trimmed_gap_another_epoch_or_a_future_offset_is_a_reset():
    history, _ = store()
    pubs = [append(history, "a", f"m{i}", POLICY) for i in range(1, 6)]  # keeps m3..m5
    epoch = pubs[0].epoch
    assert messages(history.read("a", StreamPosition(epoch, 2), None, POLICY)) == ["m3", "m4", "m5"]
    for since in [StreamPosition(epoch, 1), StreamPosition("other", 4), StreamPosition(epoch, 9)]:
        result = history.read("a", since, None, POLICY)
        assert result.reset and result.publications == ()
        assert (result.epoch, result.offset) == (epoch, 5)


def test_publications_expire_after_ttl_and_the_epoch_after_meta_ttl():
    history, clock = store()
    first = append(history, "a", "m1", POLICY)
    clock.advance(59)
    append(history, "a", "m2", POLICY)  # the ttl counts from the latest publication
    clock.advance(59)
    assert messages(history.read("a", None, None, POLICY)) == ["m1", "m2"]
    clock.advance(1)
    gone = history.read("a", StreamPosition(first.epoch, 1), None, POLICY)
    assert gone.reset and gone.offset == 2 and gone.epoch == first.epoch
    assert history.read("a", StreamPosition(first.epoch, 2), None, POLICY).reset is False
    clock.advance(600)
    append(history, "b", "x", POLICY)  # any later operation drops expired streams
    assert len(history) == 1
    fresh = history.read("a", StreamPosition(first.epoch, 2), None, POLICY)
    assert fresh.reset and fresh.epoch != first.epoch and fresh.offset == 0


def test_reading_an_empty_channel_fixes_its_epoch_for_the_first_publication():
    history, _ = store()
    before = history.read("a", None, 0, POLICY)
    assert before.offset == 0
    append(history, "a", "m1", POLICY)
    after = history.read("a", before.position, None, POLICY)
    assert not after.reset and messages(after) == ["m1"]


def test_memory_stays_bounded_by_size_per_channel_and_by_meta_ttl_over_channels():
    history, clock = store()
    for i in range(1000):
        append(history, f"c{i % 10}", "x" * 10, POLICY)
        clock.advance(1)
    assert len(history) == 10
    assert all(len(history.read(f"c{i}", None, None, POLICY).publications) <= 3 for i in range(10))
    clock.advance(601)
    append(history, "last", "x", POLICY)
    assert len(history) == 1


# -- policies -------------------------------------------------------------------


def test_exact_names_win_over_prefixes_and_longer_prefixes_over_shorter():
    policies = HistoryPolicies()
    small, big, exact = HistoryPolicy(size=1), HistoryPolicy(size=50), HistoryPolicy(size=7)
    policies.set("chat:*", small)
    policies.set("chat:vip:*", big)
    policies.set("chat:vip:ceo", exact)
    assert policies.get("chat:lobby") is small
    assert policies.get("chat:vip:x") is big
    assert policies.get("chat:vip:ceo") is exact
    assert policies.get("news") is None
    policies.set("chat:vip:*", None)
    assert policies.get("chat:vip:x") is small


@pytest.mark.parametrize(
    ("size", "ttl", "meta_ttl", "words"),
    [
        (0, 10, None, "size"),
        (True, 10, None, "size"),
        ("5", 10, None, "size"),
        (5, 0, None, "ttl"),
        (5, float("nan"), None, "ttl"),
        (5, 100, 50, "at least"),
    ],
)
def test_bad_policies_are_refused_naming_the_value(size, ttl, meta_ttl, words):
    with pytest.raises(HubError, match=words):
        Hub().enable_history("c", size=size, ttl=ttl, meta_ttl=meta_ttl)


@pytest.mark.parametrize(
    "since", [("", 1), ("e", -1), ("e", 1.5), ("e", True), "e:1", ("e",), (1, 1), ("e\x00", 1)]
)
def test_bad_positions_are_refused(since):
    with pytest.raises(HubError, match="position"):
        position_of(since)


# -- the hub --------------------------------------------------------------------


def member(hub: Hub, channel: str) -> FakeConnection:
    conn = FakeConnection()
    hub.join(conn, channel)
    return conn


def test_publish_on_a_channel_with_history_stores_and_delivers_raw():
    hub = Hub()
    hub.enable_history("room:*", size=10)
    a, b = member(hub, "room:1"), member(hub, "room:1")
    assert hub.publish("room:1", "hi", exclude=[a.id]).result == 1
    assert (a.sent, b.sent) == ([], ["hi"])
    position = hub.publish_with_position("room:1", b"\x01").result
    assert position.offset == 2 and b.sent == ["hi", b"\x01"]
    result = hub.history("room:1", since=(position.epoch, 0)).result
    assert messages(result) == ["hi", b"\x01"]
    assert result.publications[0].exclude == {a.id}
    assert hub.publish_with_position("other", "x").result is None  # no history there


def test_history_of_a_channel_without_history_says_how_to_turn_it_on():
    hub = Hub()
    with pytest.raises(HubError, match=r"enable_history\('news'\)"):
        hub.history("news")
    hub.enable_history("news")
    hub.disable_history("news")
    with pytest.raises(HubError, match="keeps no history"):
        hub.history("news")
    hub.enable_history("x")
    with pytest.raises(HubError, match="limit"):
        hub.history("x", limit=-1)


def positioned(hub: Hub, channel: str, since=None, previous=()):
    conn = FakeConnection()
    d = hub.join_positioned(conn, channel, JsonPositions(), since=since, previous_ids=previous)
    return conn, d


def decoded(conn: FakeConnection) -> list[dict]:
    return [json.loads(m) for m in conn.sent]


def test_a_positioned_member_recovers_what_it_missed_then_follows_live():
    hub = Hub()
    hub.enable_history("room:*", size=10)
    first, _ = positioned(hub, "room:1")
    start = decoded(first)[-1]
    assert start["type"] == "recovered" and start["offset"] == 0 and start["missed"] == 0
    raw = member(hub, "room:1")
    hub.publish("room:1", "m1")
    hub.publish("room:1", b"\x00\xff")
    assert raw.sent == ["m1", b"\x00\xff"]
    got = decoded(first)[1:]
    assert got == [
        {"type": "message", "epoch": start["epoch"], "offset": 1, "data": "m1"},
        {"type": "message", "epoch": start["epoch"], "offset": 2, "base64": "AP8="},
    ]
    # the client comes back on a new connection with the last position it had
    hub.publish("room:1", "m3")
    again, d = positioned(hub, "room:1", since=(start["epoch"], 1))
    assert [m.get("offset") for m in decoded(again)] == [2, 3, 3]
    assert decoded(again)[-1] == {"type": "recovered", "epoch": start["epoch"], "offset": 3, "missed": 2}
    assert d.result.offset == 3
    hub.publish("room:1", "m4")
    assert decoded(again)[-1]["data"] == "m4"
    assert raw.sent[-1] == "m4"


def test_a_lost_gap_is_a_reset_and_own_messages_are_not_sent_again():
    hub = Hub()
    hub.enable_history("r", size=2)
    sender = member(hub, "r")
    epoch = hub.history("r", limit=0).result.epoch
    for i in range(1, 4):
        hub.publish("r", f"m{i}")
    late, d = positioned(hub, "r", since=(epoch, 0))
    assert decoded(late) == [{"type": "reset", "epoch": epoch, "offset": 3}]
    assert d.result.reset
    hub.publish("r", "mine", exclude=[sender.id])
    hub.publish("r", "yours")
    back, _ = positioned(hub, "r", since=(epoch, 3), previous=[sender.id])
    assert [m.get("data") for m in decoded(back)] == ["yours", None]


def test_leaving_and_closing_end_positioned_delivery():
    hub = Hub()
    hub.enable_history("r")
    conn, _ = positioned(hub, "r")
    hub.leave(conn, "r")
    hub.publish("r", "after leave")
    assert all(m.get("data") != "after leave" for m in decoded(conn))
    assert hub.positioned.members_of("r") is None
    conn2, _ = positioned(hub, "r")
    hub.unregister(conn2)
    assert hub.positioned.members_of("r") is None


def test_join_positioned_needs_history_and_a_valid_position():
    hub = Hub()
    with pytest.raises(HubError, match="keeps no history"):
        positioned(hub, "r")
    hub.enable_history("r")
    with pytest.raises(HubError, match="position"):
        positioned(hub, "r", since=("e", -5))


def test_reset_listeners_hear_resets_and_positioned_members_are_told():
    hub = Hub()
    hub.enable_history("r")
    conn, _ = positioned(hub, "r")
    heard = []
    hub.on_history_reset(lambda channel, position: heard.append((channel, position)))
    hub.on_history_reset(lambda channel, position: 1 / 0)  # a broken listener harms no one
    hub.history_reset("r", StreamPosition("new", 4))
    assert heard == [("r", StreamPosition("new", 4))]
    assert decoded(conn)[-1] == {"type": "reset", "epoch": "new", "offset": 4}
