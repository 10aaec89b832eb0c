"""
WAMP PubSub across real processes through a real Redis: server processes
(``tests/support/wamp_node.py``: the socketo.me PubSub example and a
Push-style app on one ``App`` with a ``RedisBackplane``), clients of the
repo's own WAMP v1 client (``tests/support/wamp_client.py``, on the
``websockets`` library), and ``redis-cli`` to see who subscribes.

Delivery across processes is asynchronous, so "nothing else arrived" is
checked with a marker: Redis keeps one publisher's messages in order, so
a client that got the publisher's last message has got all its earlier
ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ratchetpy.wamp.cluster import channel_name
from tests.support.node_process import NodeProcess
from tests.support.redis import shared_redis, unique
from tests.support.timing import seconds
from tests.support.wamp_client import WampClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "tests" / "support" / "wamp_node.py"
PUSH_URI = "http://example.com/test#push"
T = "http://example.com/news"


class Node(NodeProcess):
    """One ``wamp_node.py`` process; its log kept for the assertions."""

    def __init__(self, url: str, prefix: str, tmp: Path, name: str) -> None:
        super().__init__(NODE, [url, prefix], tmp, name)

    def client(self, stack: ExitStack, path: str = "/wamp") -> WampClient:
        return stack.enter_context(WampClient(f"ws://127.0.0.1:{self.port}{path}"))



@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    redis = shared_redis()
    prefix = unique("wamp") + ":"
    nodes: list[Node] = []

    def start(count: int) -> list[Node]:
        for _ in range(count):
            nodes.append(Node(redis.url, prefix, tmp_path, f"node{len(nodes)}"))
        return nodes

    def numsub(uri: str, channel_prefix: str = "wamp:") -> int:
        """Nodes subscribed in Redis to the topic ``uri``'s relay channel."""
        return int(redis.cli.numsub(f"{prefix}relay:{{{channel_name(channel_prefix, uri)}}}"))

    start.numsub = numsub  # type: ignore[attr-defined]
    yield start
    for node in nodes:
        node.stop()
    for node in nodes:
        assert "Traceback" not in node.text(), node.text()


def eventually(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds(timeout)
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def subscribe(client: WampClient, uri: str = T) -> None:
    """Subscribe; the server has the subscription once the barrier returns."""
    assert client.exchange([5, uri]) == []


def events_until(client: WampClient, marker: Any, uri: str = T, count: int = 1) -> list[Any]:
    """The events of ``uri`` received up to and including ``count`` events equal to ``marker``."""
    got: list[Any] = []
    seen = 0
    while seen < count:
        message = json.loads(client.recv())
        assert message[0] == 8 and message[1] == uri, message
        got.append(message[2])
        seen += message[2] == marker
    return got


def test_a_topic_spans_processes_every_event_exactly_once_in_publisher_order(cluster: Any) -> None:
    """
    Four subscribers on three processes; publishers on each process: every
    subscriber gets every event once, each publisher's in order, and the
    EVENT text is the same bytes as from one process (PHP's JSON escaping).
    """
    a, b, c = cluster(3)
    with ExitStack() as stack:
        subscribers = [a.client(stack), a.client(stack), b.client(stack), c.client(stack)]
        for client in subscribers:
            subscribe(client)
        outsider = c.client(stack)  # same process and route, not subscribed
        subscribe(outsider, "http://example.com/elsewhere")
        assert eventually(lambda: cluster.numsub(T) == 3), cluster.numsub(T)

        publishers = {"a": a.client(stack), "b": b.client(stack), "c": c.client(stack)}
        for seq in range(15):
            for name, publisher in publishers.items():
                publisher.send([7, T, {"from": name, "seq": seq}])
        for name, publisher in publishers.items():
            publisher.send([7, T, {"from": name, "end": True}])

        for client in subscribers:
            got = _until_ends(client, 3)
            for name in publishers:
                mine = [event["seq"] for event in got if event["from"] == name and "seq" in event]
                assert mine == list(range(15)), (name, mine)
            assert len(got) == 3 * 16
        for publisher in publishers.values():  # not subscribed: nothing
            assert publisher.barrier() == []
        assert outsider.barrier() == []

        # The wire format, received on another process than the publisher's.
        publishers["a"].send([7, T, {"headline": "ünïcode/slash"}])
        expected = '[8,"http:\\/\\/example.com\\/news",{"headline":"\\u00fcn\\u00efcode\\/slash"}]'
        for client in subscribers:
            assert client.recv() == expected


def _until_ends(client: WampClient, publishers: int) -> list[Any]:
    got: list[Any] = []
    ends = 0
    while ends < publishers:
        message = json.loads(client.recv())
        assert message[0] == 8 and message[1] == T, message
        got.append(message[2])
        ends += bool(message[2].get("end"))
    return got


def test_exclude_and_eligible_apply_on_every_process(cluster: Any) -> None:
    """excludeMe, exclude lists and eligible lists name sessions of any process."""
    a, b, c = cluster(3)
    with ExitStack() as stack:
        publisher, on_a = a.client(stack), a.client(stack)
        on_b, on_c = b.client(stack), c.client(stack)
        everyone = [publisher, on_a, on_b, on_c]
        for client in everyone:
            subscribe(client)
        assert eventually(lambda: cluster.numsub(T) == 3)

        publisher.send([7, T, "not me", True])
        publisher.send([7, T, "not b", [on_b.session_id]])
        publisher.send([7, T, "not a, not c", [on_a.session_id, on_c.session_id]])
        publisher.send([7, T, "only c", [], [on_c.session_id]])
        publisher.send([7, T, "only b and me", [], [on_b.session_id, publisher.session_id]])
        publisher.send([7, T, "only a", [], [on_a.session_id]])  # all here: not relayed
        publisher.send([7, T, "c but not c", [on_c.session_id], [on_c.session_id]])
        publisher.send([7, T, "end"])

        assert events_until(publisher, "end") == ["not b", "not a, not c", "only b and me", "end"]
        assert events_until(on_a, "end") == ["not me", "not b", "only a", "end"]
        assert events_until(on_b, "end") == ["not me", "not a, not c", "only b and me", "end"]
        assert events_until(on_c, "end") == ["not me", "not b", "only c", "end"]


def test_only_nodes_with_subscribers_listen_and_a_server_side_broadcast_reaches_them(
    cluster: Any,
) -> None:
    """
    A node subscribes to a topic's relay channel with its first subscriber
    and leaves it with its last (unsubscribe or close). A broadcast from
    server code on a node with no subscriber (the Push tutorial) reaches the
    others; a URI too long for a hub channel name works the same way, and a
    WampServer with another channel_prefix has topics of its own.
    """
    a, b = cluster(2)
    long_uri = "http://example.com/" + "x" * 400
    with ExitStack() as stack:
        on_a, on_b = a.client(stack), b.client(stack)
        subscribe(on_a)
        assert eventually(lambda: cluster.numsub(T) == 1)
        subscribe(on_b)
        second_on_b = b.client(stack)
        subscribe(second_on_b)
        assert eventually(lambda: cluster.numsub(T) == 2)

        # Push from server code on a: a has a subscriber, b two.
        pusher = a.client(stack)
        assert pusher.call("p1", PUSH_URI, [T, {"n": 1}]) == [3, "p1", 1]
        assert events_until(on_a, {"n": 1}) == [{"n": 1}]
        assert events_until(on_b, {"n": 1}) == [{"n": 1}]
        assert events_until(second_on_b, {"n": 1}) == [{"n": 1}]

        # a's last subscriber leaves: a stops listening; a push from a
        # (no subscriber there now) still reaches b.
        assert on_a.exchange([6, T]) == []
        assert eventually(lambda: cluster.numsub(T) == 1)
        assert pusher.call("p2", PUSH_URI, [T, "from a"]) == [3, "p2", 0]
        assert events_until(on_b, "from a") == ["from a"]
        assert events_until(second_on_b, "from a") == ["from a"]
        assert on_a.barrier() == []

        # One of b's two subscribers closes: b still listens; then the other.
        second_on_b.close()
        assert pusher.call("p3", PUSH_URI, [T, "still b"]) == [3, "p3", 0]
        assert events_until(on_b, "still b") == ["still b"]
        assert cluster.numsub(T) == 1
        on_b.close()
        assert eventually(lambda: cluster.numsub(T) == 0)

        # A long URI: hashed into a channel name, delivered all the same.
        long_b, long_other = b.client(stack), b.client(stack, "/other")
        subscribe(long_b, long_uri)
        subscribe(long_other, long_uri)
        assert eventually(lambda: cluster.numsub(long_uri) == 1)
        assert eventually(lambda: cluster.numsub(long_uri, "other:") == 1)
        publisher = a.client(stack)
        publisher.send([7, long_uri, "long"])
        assert events_until(long_b, "long", long_uri) == ["long"]
        # /other shares the hub but not the prefix: its subscriber hears
        # only its own route's publishes.
        other_publisher = a.client(stack, "/other")
        other_publisher.send([7, long_uri, "other route"])
        assert events_until(long_other, "other route", long_uri) == ["other route"]
        publisher.send([7, long_uri, "end"])
        assert events_until(long_b, "end", long_uri) == ["end"]


def test_the_socketo_me_pubsub_example_spans_processes_unchanged(cluster: Any) -> None:
    """examples/pubsub.py's BasicPubSub, routed on two processes: AutobahnJS's publish(..., true)."""
    a, b = cluster(2)
    with ExitStack() as stack:
        alice, bob = a.client(stack, "/pubsub"), b.client(stack, "/pubsub")
        for client in (alice, bob):
            client.send([5, "kittensCategory"])
            assert client.barrier() == []  # a CALLERROR is a barrier too
        assert eventually(lambda: cluster.numsub("kittensCategory") == 2)
        alice.send([7, "kittensCategory", {"title": "Hello"}, True])
        assert bob.recv() == '[8,"kittensCategory",{"title":"Hello"}]'
        bob.send([7, "kittensCategory", "back", True])
        assert alice.recv() == '[8,"kittensCategory","back"]'
        assert alice.barrier() == [] and bob.barrier() == []
