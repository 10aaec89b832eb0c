"""
History and recovery across real processes (``tests/support/backplane_node.py``)
on a private ``redis-server`` each test may break: ``CLIENT KILL TYPE
pubsub`` while another node publishes (the gap is filled from history, in
order, exactly once), Redis restarted empty (a reset reaches the chat
page), and a chat page that reconnects to another node and recovers.
Clients: the ``websockets`` library, ``urllib`` for the publish API,
``redis-cli``.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.hub.test_redis_backplane import Node, assert_silent, eventually
from tests.support.redis import RedisServer, unique
from tests.support.timing import seconds

pytestmark = pytest.mark.slow


@pytest.fixture
def private_cluster(tmp_path: Path):
    server = RedisServer(tmp_path).start()
    prefix = unique("hist") + ":"
    nodes: list[Node] = []

    def start(count: int) -> list[Node]:
        for _ in range(count):
            nodes.append(Node(server.url, prefix, tmp_path, f"node{len(nodes)}"))
        return nodes

    start.server = server  # type: ignore[attr-defined]
    start.prefix = prefix  # type: ignore[attr-defined]
    yield start
    for node in nodes:
        node.stop()
    server.kill()
    for node in nodes:
        assert "Traceback" not in node.text(), node.text()


def recv_json(ws) -> dict:
    return json.loads(ws.recv(timeout=seconds(10)))


def test_a_killed_pubsub_connection_is_refilled_in_order_exactly_once(private_cluster):
    a, b = private_cluster(2)
    cli = private_cluster.server.cli
    room = "hist:" + unique("room")
    with ExitStack() as stack:
        on_b, _ = b.ws(stack, f"/tell?room={room}")
        on_a, _ = a.ws(stack, f"/tell?room={room}")
        channel = f"{private_cluster.prefix}ch:{{{room}}}"
        assert eventually(lambda: cli.numsub(channel) == 2)
        assert a.api("POST", "", {"channel": room, "data": "m0"})[0] == 200
        assert on_b.recv(timeout=seconds(5)) == "m0"
        assert on_a.recv(timeout=seconds(5)) == "m0"
        sent = 1
        cli("CLIENT", "KILL", "TYPE", "pubsub")
        # Publish from a, in batches, until b says it read a gap back from history.
        deadline = time.monotonic() + seconds(15)
        while "missed back from history" not in b.text():
            assert time.monotonic() < deadline, b.text()
            batch = [{"channel": room, "data": f"m{sent + i}"} for i in range(5)]
            assert a.api("POST", "", batch)[0] == 200
            sent += 5
            time.sleep(0.02)
        batch = [{"channel": room, "data": f"m{sent + i}"} for i in range(5)]
        assert a.api("POST", "", batch)[0] == 200
        sent += 5
        expected = [f"m{i}" for i in range(1, sent)]
        for ws in (on_b, on_a):
            assert [ws.recv(timeout=seconds(10)) for _ in expected] == expected
            assert_silent(ws)


def test_redis_restarted_empty_signals_a_reset_to_the_chat_page(private_cluster):
    a, b = private_cluster(2)
    with ExitStack() as stack:
        page, welcome = b.ws(stack, "/hchat?positions=1")
        assert json.loads(welcome)["positions"] is True
        page.send(json.dumps({"type": "recover"}))
        start = recv_json(page)
        assert start["type"] == "recovered"
        plain, _ = a.ws(stack, "/hchat")
        assert eventually(lambda: a.api("GET", "/channels/hchat:hchat")[1]["member_count"] == 2)
        plain.send("before")
        assert recv_json(page) == {
            "type": "message", "epoch": start["epoch"], "offset": start["offset"] + 1, "data": "before",
        }  # fmt: skip
        private_cluster.server.restart()
        reset = recv_json(page)
        assert reset["type"] == "reset" and reset["epoch"] != start["epoch"], reset
        assert "was reset" in b.text()
        # both nodes are back (their stats are in the empty Redis again)
        assert eventually(lambda: a.api("GET", "/stats")[1].get("node_count") == 2, 20)
        assert eventually(lambda: b.api("GET", "/stats")[1].get("node_count") == 2, 20)
        plain.send("after")
        after = recv_json(page)
        assert (after["data"], after["epoch"]) == ("after", reset["epoch"])
        assert after["offset"] == reset["offset"] + 1
        assert_silent(plain)


def test_a_chat_page_recovers_on_another_node(private_cluster):
    a, b = private_cluster(2)
    with ExitStack() as stack:
        plain, _ = a.ws(stack, "/hchat")
        with ExitStack() as first_visit:
            page, welcome = b.ws(first_visit, "/hchat?positions=1")
            page_id = json.loads(welcome)["id"]
            page.send(json.dumps({"type": "recover"}))
            start = recv_json(page)
            assert eventually(lambda: a.api("GET", "/channels/hchat:hchat")[1]["member_count"] == 2)
            plain.send("seen")
            seen = recv_json(page)
            page.send("my own")
            assert plain.recv(timeout=seconds(5)) == "my own"
        assert eventually(lambda: a.api("GET", "/channels/hchat:hchat")[1]["member_count"] == 1)
        for text in ("missed 1", "missed 2"):
            plain.send(text)
        back, _ = a.ws(stack, "/hchat?positions=1")
        back.send(json.dumps({"type": "recover", "epoch": seen["epoch"], "offset": seen["offset"], "id": page_id}))
        got = [recv_json(back) for _ in range(3)]
        assert [m.get("data") for m in got] == ["missed 1", "missed 2", None]
        assert got[-1] == {
            "type": "recovered", "epoch": start["epoch"], "offset": seen["offset"] + 3, "missed": 2,
        }  # fmt: skip
        plain.send("live")
        assert recv_json(back)["data"] == "live"
