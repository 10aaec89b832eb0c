"""
The Redis backplane when Redis or a node misbehaves, with real processes
(``tests/support/backplane_node.py``) on a private ``redis-server`` each
test breaks: Redis paused (SIGSTOP) while two nodes have clients, Redis
killed and restarted empty, and a node paused while another publishes
more than Redis will buffer for it (``client-output-buffer-limit
pubsub``). Clients: the ``websockets`` library, ``urllib`` for the publish
API, ``redis-cli``.

The nodes talk to Redis with short timeouts (``?timeout=1`` ...), so an
outage is found in about a second rather than the default five.
"""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.hub.test_redis_backplane import Node, assert_silent, eventually
from tests.support.redis import RedisServer, unique
from tests.support.timing import seconds

pytestmark = pytest.mark.slow

FAST = "timeout=1&connect_timeout=1&health_check_interval=0.5"


def start_nodes(server: RedisServer, tmp: Path, count: int, nodes: list[Node]) -> str:
    prefix = unique("chaos") + ":"
    for _ in range(count):
        nodes.append(Node(f"{server.url}?{FAST}", prefix, tmp, f"node{len(nodes)}"))
    return prefix


@pytest.fixture
def nodes(tmp_path: Path):
    started: list[Node] = []
    yield started
    for node in started:
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGCONT)  # a test that failed while it was paused
        node.stop()
    for node in started:
        assert "Traceback" not in node.text(), node.text()


def down_lines(node: Node, role: str) -> int:
    return sum(
        1
        for line in node.text().splitlines()
        if f"Redis {role} connection to" in line and "unavailable:" in line
    )


def back_lines(node: Node, role: str) -> int:
    return sum(
        1
        for line in node.text().splitlines()
        if f"Redis {role} connection to" in line and "is back after" in line
    )


def reconnected(node: Node) -> bool:
    """Every connection of the node that went down is back."""
    return all(back_lines(node, role) == down_lines(node, role) for role in ("commands", "pubsub"))


def test_redis_paused_local_delivery_goes_on_cross_node_fails_fast_then_recovers(tmp_path, nodes):
    server = RedisServer(tmp_path).start()
    try:
        prefix = start_nodes(server, tmp_path, 2, nodes)
        a, b = nodes
        room = unique("room")
        channel = f"{prefix}ch:{{{room}}}"
        with ExitStack() as stack:
            on_a, id_a = a.ws(stack, f"/tell?room={room}&user=ann")
            on_b, id_b = b.ws(stack, f"/tell?room={room}&user=bob")
            assert eventually(lambda: server.cli.numsub(channel) == 2)
            assert eventually(lambda: a.api("GET", f"/channels/{room}")[1]["member_count"] == 2)
            server.pause()
            paused_at = time.monotonic()
            # A publish reaches this node's member; the cross-node part fails
            # within the command timeout (1 s here), it does not hang.
            started = time.monotonic()
            assert a.api("POST", "", {"channel": room, "data": "during"}) == (200, {"delivered": 1})
            assert time.monotonic() - started < seconds(5)
            assert on_a.recv(timeout=seconds(5)) == "during"
            # More publishes and pushes while it lasts: each answers, none waits on Redis.
            for seq in range(5):
                started = time.monotonic()
                assert a.api("POST", "", {"channel": room, "data": f"d{seq}"}) == (
                    200,
                    {"delivered": 1},
                )
                assert b.api("POST", "", {"client": id_a, "data": "x"}) == (
                    404,
                    {"error": "unknown client"},
                )
                assert b.api("POST", "", {"client": id_b, "data": f"own{seq}"}) == (
                    200,
                    {"delivered": 1},
                )
                assert time.monotonic() - started < seconds(5)
            assert [on_a.recv(timeout=seconds(5)) for _ in range(5)] == [
                f"d{seq}" for seq in range(5)
            ]
            assert [on_b.recv(timeout=seconds(5)) for _ in range(5)] == [
                f"own{seq}" for seq in range(5)
            ]
            # presence answers with the node's own view rather than hanging
            status, _ = a.api("GET", f"/channels/{room}")
            assert status == 200
            time.sleep(max(0.0, 3.0 - (time.monotonic() - paused_at)))
            server.resume()
            # Both nodes resubscribe; then cross-node delivery works again.
            # (both connections of both nodes: a publish needs the commands one)
            assert eventually(lambda: all(reconnected(node) for node in (a, b)), 15)
            assert eventually(lambda: server.cli.numsub(channel) == 2, 15)
            assert a.api("POST", "", {"channel": room, "data": "after"}) == (200, {"delivered": 2})
            assert on_a.recv(timeout=seconds(5)) == "after"
            assert on_b.recv(timeout=seconds(5)) == "after"  # nothing from the outage before it
            assert a.api("POST", "", {"client": id_b, "data": "pushed"}) == (200, {"delivered": 1})
            assert on_b.recv(timeout=seconds(5)) == "pushed"
            assert b.api("POST", "", {"user": "ann", "data": "to ann"}) == (200, {"delivered": 1})
            assert on_a.recv(timeout=seconds(5)) == "to ann"
            assert eventually(lambda: b.api("GET", f"/channels/{room}")[1]["member_count"] == 2)
            assert_silent(on_a)
            assert_silent(on_b)
        # One line per connection for the outage, and one for the backplane, not one per message.
        for node in (a, b):
            assert down_lines(node, "commands") <= 1, node.text()
            assert down_lines(node, "pubsub") == 1, node.text()
            assert node.text().count("cross-node delivery and presence are degraded") <= 1, (
                node.text()
            )
        assert a.text().count("cross-node delivery and presence are degraded") == 1, a.text()
        assert down_lines(a, "commands") == 1, a.text()
    finally:
        server.kill()


def test_redis_restarted_empty_gets_presence_and_subscriptions_back_from_the_nodes(tmp_path, nodes):
    server = RedisServer(tmp_path).start()
    try:
        prefix = start_nodes(server, tmp_path, 2, nodes)
        a, b = nodes
        room = unique("room")
        channel = f"{prefix}ch:{{{room}}}"
        presence = f"{prefix}presence:{{{room}}}"
        with ExitStack() as stack:
            on_a, id_a = a.ws(stack, f"/tell?room={room}&user=ann")
            on_b, id_b = b.ws(stack, f"/tell?room={room}&user=bob")
            assert eventually(lambda: server.cli.numsub(channel) == 2)
            assert eventually(lambda: server.cli("HLEN", presence) == "2")
            server.kill()
            # Down (connections refused): local delivery only, answered at once.
            started = time.monotonic()
            assert a.api("POST", "", {"channel": room, "data": "down"}) == (200, {"delivered": 1})
            assert a.api("POST", "", {"client": id_b, "data": "x"}) == (
                404,
                {"error": "unknown client"},
            )
            assert time.monotonic() - started < seconds(5)
            assert on_a.recv(timeout=seconds(5)) == "down"
            server.start()  # the same port, nothing in it
            # No client does anything: the nodes write their presence and
            # subscriptions back themselves.
            assert eventually(lambda: server.cli("HLEN", presence) == "2", 15), server.cli(
                "KEYS", "*"
            )
            assert eventually(lambda: server.cli("HLEN", f"{prefix}upresence:{{ann}}") == "1", 15)
            assert eventually(lambda: server.cli.numsub(channel) == 2, 15)
            assert eventually(lambda: server.cli.numsub(f"{prefix}user:{{bob}}") == 1, 15)
            assert a.api("POST", "", {"channel": room, "data": "back"}) == (200, {"delivered": 2})
            assert on_a.recv(timeout=seconds(5)) == "back"
            assert on_b.recv(timeout=seconds(5)) == "back"
            assert a.api("POST", "", {"user": "bob", "data": "to bob"}) == (200, {"delivered": 1})
            assert on_b.recv(timeout=seconds(5)) == "to bob"
            assert b.api("POST", "", {"client": id_a, "data": "to a"}) == (200, {"delivered": 1})
            assert on_a.recv(timeout=seconds(5)) == "to a"
            assert b.api("GET", f"/channels/{room}") == (200, {"channel": room, "member_count": 2})
            assert eventually(lambda: a.api("GET", "/stats")[1].get("node_count") == 2, 15)
            assert_silent(on_a)
            assert_silent(on_b)
        for node in (a, b):
            assert down_lines(node, "commands") == 1, node.text()
            assert down_lines(node, "pubsub") == 1, node.text()
            assert back_lines(node, "pubsub") == 1, node.text()
    finally:
        server.kill()


def test_a_paused_node_is_cut_off_by_redis_then_resubscribes_and_the_publisher_stays_bounded(
    tmp_path, nodes
):
    # Redis drops a subscriber whose unread output passes 256 kB.
    server = RedisServer(tmp_path, "--client-output-buffer-limit", "pubsub 256kb 128kb 1").start()
    try:
        prefix = unique("chaos") + ":"
        peak_file = tmp_path / "peak.json"
        url = f"{server.url}?{FAST}&max_pending=200"
        a = Node(url, prefix, tmp_path, "node0", env={"RATCHETPY_TEST_PEAK_FILE": str(peak_file)})
        nodes.append(a)
        b = Node(url, prefix, tmp_path, "node1")
        nodes.append(b)
        room = unique("room")
        channel = f"{prefix}ch:{{{room}}}"
        filler = "x" * 30_000
        with ExitStack() as stack:
            on_b, _ = b.ws(stack, f"/tell?room={room}")
            assert eventually(lambda: server.cli.numsub(channel) == 1)
            b.process.send_signal(signal.SIGSTOP)
            cut_off = "overcoming of output buffer limits"
            statuses: list[int] = []
            # At most 4 rounds of 12 concurrent requests of 30 messages (~10 MB a
            # round, more than the kernel's socket buffers hold): bounded.
            with ThreadPoolExecutor(12) as pool:
                for round_ in range(4):
                    batches = [
                        [{"channel": room, "data": f"{round_}.{i}.{j} {filler}"} for j in range(30)]
                        for i in range(12)
                    ]
                    statuses += [
                        status
                        for status, _ in pool.map(lambda batch: a.api("POST", "", batch), batches)
                    ]
                    if cut_off in server.log_text():
                        break
            assert cut_off in server.log_text(), server.log_text()
            assert statuses and set(statuses) == {200}
            assert server.cli.numsub(channel) == 0  # b's subscription went with its connection
            b.process.send_signal(signal.SIGCONT)
            # b reads what it had, finds its connection closed, reconnects and
            # subscribes again; its WebSocket client stays connected throughout.
            deadline = time.monotonic() + seconds(15)
            published = False
            received = 0
            while True:
                assert time.monotonic() < deadline, b.text()
                # b answers the count on its commands connection, which a
                # health PING overdue at SIGCONT may have dropped too
                if not published and server.cli.numsub(channel) == 1 and reconnected(b):
                    assert a.api("POST", "", {"channel": room, "data": "after"}) == (
                        200,
                        {"delivered": 1},
                    )
                    published = True
                try:
                    message = on_b.recv(timeout=0.2)
                except TimeoutError:
                    continue
                if message == "after":
                    break
                received += 1
            assert published
            assert_silent(on_b)
            assert b.text().count("Redis pubsub connection to") >= 2  # down, back
            assert back_lines(b, "pubsub") == 1, b.text()
            # The publisher never had more than max_pending commands waiting
            # (12 x 30 publishes at once: the rest failed fast, logged once),
            # and no answers are left awaited from the paused node.
            assert eventually(lambda: json.loads(peak_file.read_text())["requests"] == 0)
            peak = json.loads(peak_file.read_text())
            assert 0 < peak["peak_pending"] <= peak["max_pending"] == 200, peak
            assert peak["pending"] == 0, peak
            assert a.text().count("cross-node delivery and presence are degraded") <= 1, a.text()
    finally:
        server.kill()
