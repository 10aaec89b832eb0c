"""
The hub across real processes through a real Redis: three server
processes (``tests/support/backplane_node.py``), clients from the
``websockets`` library, a backend speaking the publish API with ``urllib``,
and ``redis-cli`` to look at what Redis holds.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.loopback import assert_silent
from tests.support.node_process import NodeProcess
from tests.support.redis import shared_redis, unique
from tests.support.timing import seconds

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "tests" / "support" / "backplane_node.py"
KEY = "k" * 32


class Node(NodeProcess):
    def __init__(
        self, url: str, prefix: str, tmp: Path, name: str, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(NODE, [url, prefix], tmp, name, env)

    def ws(self, stack: ExitStack, path: str) -> tuple[object, str]:
        ws = stack.enter_context(connect(f"ws://127.0.0.1:{self.port}{path}", proxy=None))
        first = ws.recv(timeout=seconds(5))
        return ws, first

    def api(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/push{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {KEY}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=seconds(10)) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")



@pytest.fixture
def cluster(tmp_path):
    redis = shared_redis()
    prefix = unique("hub") + ":"
    nodes: list[Node] = []

    def start(count: int) -> list[Node]:
        for _ in range(count):
            nodes.append(Node(redis.url, prefix, tmp_path, f"node{len(nodes)}"))
        return nodes

    start.prefix = prefix  # type: ignore[attr-defined]
    start.cli = redis.cli  # type: ignore[attr-defined]
    yield start
    for node in nodes:
        node.stop()
    for node in nodes:
        assert "Traceback" not in node.text(), node.text()


def recv_all(ws, count: int) -> list:
    return [ws.recv(timeout=seconds(5)) for _ in range(count)]


def eventually(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + seconds(timeout)
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_push_by_id_reaches_the_process_that_holds_it(cluster):
    a, b, c = cluster(3)
    with ExitStack() as stack:
        on_c, id_c = c.ws(stack, "/tell")
        on_b, id_b = b.ws(stack, "/tell")
        assert a.api("POST", "", {"client": id_c, "data": "from a"}) == (200, {"delivered": 1})
        assert on_c.recv(timeout=seconds(5)) == "from a"
        assert_silent(on_b)
        # the process's own client, and binary
        assert a.api("POST", "", {"client": id_b, "data_base64": "AAE="}) == (200, {"delivered": 1})
        assert on_b.recv(timeout=seconds(5)) == b"\x00\x01"
        # an id in the right form on a node nobody runs: answered at once
        fake = "nobody1." + id_c.split(".", 1)[1]
        started = time.monotonic()
        assert a.api("POST", "", {"client": fake, "data": "x"}) == (404, {"error": "unknown client"})
        assert time.monotonic() - started < seconds(2)


def test_channel_publish_reaches_every_member_once_and_only_interested_nodes_subscribe(cluster):
    a, b, c = cluster(3)
    room = unique("room")
    with ExitStack() as stack:
        opened = [a.ws(stack, f"/tell?room={room}"), b.ws(stack, f"/tell?room={room}")]
        opened.append(b.ws(stack, f"/tell?room={room}"))
        members = [ws for ws, _ in opened]
        outsider, _ = c.ws(stack, "/tell")
        channel = f"{cluster.prefix}ch:{{{room}}}"
        assert eventually(lambda: cluster.cli.numsub(channel) == 2), cluster.cli.numsub(channel)
        for seq in range(20):
            status, answer = c.api("POST", "", {"channel": room, "data": f"m{seq}"})
            assert (status, answer) == (200, {"delivered": 3})
        for ws in members:
            assert recv_all(ws, 20) == [f"m{seq}" for seq in range(20)]
            assert_silent(ws)
        assert_silent(outsider)
        # exclude, across processes: the second member (on b) is left out
        excluded = opened[1][1]
        assert c.api("POST", "", {"channel": room, "data": "x", "exclude": [excluded]}) == (
            200,
            {"delivered": 2},
        )
        assert members[0].recv(timeout=seconds(5)) == "x"
        assert members[2].recv(timeout=seconds(5)) == "x"
        assert_silent(members[1])
        assert b.api("GET", f"/channels/{room}") == (200, {"channel": room, "member_count": 3})


def test_presence_and_users_span_processes_and_converge_on_close(cluster):
    a, b, c = cluster(3)
    room = unique("room")
    with ExitStack() as stack:
        tab1, id1 = a.ws(stack, f"/tell?room={room}&user=ann")
        tab2, id2 = c.ws(stack, "/tell?user=ann")
        other, _ = b.ws(stack, f"/tell?room={room}&user=bob")
        assert eventually(lambda: c.api("GET", f"/channels/{room}")[1]["member_count"] == 2)
        assert b.api("POST", "", {"user": "ann", "data": "hi ann"}) == (200, {"delivered": 2})
        assert tab1.recv(timeout=seconds(5)) == "hi ann"
        assert tab2.recv(timeout=seconds(5)) == "hi ann"
        assert_silent(other)
        assert b.api("POST", "", {"user": "ann", "data": "x", "exclude": [id1]}) == (200, {"delivered": 1})
        assert tab2.recv(timeout=seconds(5)) == "x"
        # Other nodes' stats are as fresh as their last refresh (presence_ttl / 3).
        stats = eventually(lambda: (s := a.api("GET", "/stats")[1])["open"] == 3 and s)
        assert stats and stats["node_count"] == 3
        assert set(stats["nodes"]) >= {id1.split(".")[0], id2.split(".")[0]}
        tab1.close()
        assert eventually(lambda: c.api("GET", f"/channels/{room}")[1]["member_count"] == 1)


def test_the_built_in_chat_spans_processes(cluster):
    a, b = cluster(2)
    with ExitStack() as stack:
        alice, welcome_a = a.ws(stack, "/chat")
        bob, welcome_b = b.ws(stack, "/chat")
        assert json.loads(welcome_a)["room"] == json.loads(welcome_b)["room"] == "chat"
        channel = f"{cluster.prefix}ch:{{chat:chat}}"
        assert eventually(lambda: cluster.cli.numsub(channel) == 2)
        alice.send("hello from a")
        assert bob.recv(timeout=seconds(5)) == "hello from a"
        bob.send(b"\x01binary")
        assert alice.recv(timeout=seconds(5)) == b"\x01binary"
        assert_silent(alice)


def test_a_killed_node_drops_out_and_pushes_to_it_fail_fast(cluster):
    a, b = cluster(2)
    room = unique("room")
    with ExitStack() as stack:
        _, id_a = a.ws(stack, f"/tell?room={room}")
        on_b, id_b = b.ws(stack, f"/tell?room={room}")
        assert eventually(lambda: a.api("GET", f"/channels/{room}")[1]["member_count"] == 2)
        b.process.send_signal(signal.SIGKILL)
        b.process.wait()
        with pytest.raises((ConnectionClosed, OSError)):
            on_b.recv(timeout=seconds(5))
        started = time.monotonic()
        assert a.api("POST", "", {"client": id_b, "data": "x"}) == (404, {"error": "unknown client"})
        assert time.monotonic() - started < seconds(2)
        # presence_ttl is 3 s in these nodes
        assert eventually(lambda: a.api("GET", f"/channels/{room}")[1]["member_count"] == 1, 10)
        assert a.api("POST", "", {"channel": room, "data": "still"}) == (200, {"delivered": 1})
