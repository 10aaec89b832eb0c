"""
``App.use_redis``: arguments and errors (in memory), and two App processes
sharing one hub through a real Redis (``tests/support/redis_app_node.py``),
driven by ``websockets`` clients, with ``redis-cli`` looking at Redis.
"""

from __future__ import annotations

import json
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ratchetpy.app import App
from ratchetpy.exceptions import ConfigurationError
from ratchetpy.hub.redis_backplane import DEFAULT_ACK_TIMEOUT, DEFAULT_PRESENCE_TTL, RedisBackplane
from ratchetpy.redis.url import RedisConfig
from tests.support.node_process import NodeProcess
from tests.support.redis import shared_redis, unique
from tests.support.timing import seconds

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "tests" / "support" / "redis_app_node.py"


def memory_app() -> App:
    return App("*", reactor=MemoryReactorClock(), listen=["tcp:0:interface=127.0.0.1"])


def test_use_redis_attaches_a_backplane_to_the_hub():
    app = memory_app()
    assert app.backplane is None
    backplane = app.use_redis("redis://:hunter22@127.0.0.1:6390/2?prefix=chat:", presence_ttl=9, ack_timeout=0.5)
    assert isinstance(backplane, RedisBackplane)
    assert app.backplane is backplane and app.hub.backplane is backplane
    assert backplane.config.db == 2 and backplane.names.prefix == "chat:"
    assert (backplane.presence_ttl, backplane.ack_timeout, backplane.sharded) == (9, 0.5, False)
    defaults = memory_app().use_redis(RedisConfig(port=6390), sharded=True)
    assert (defaults.presence_ttl, defaults.ack_timeout) == (DEFAULT_PRESENCE_TTL, DEFAULT_ACK_TIMEOUT)
    assert defaults.sharded is True


@pytest.mark.parametrize(
    "args, kwargs, expected",
    [
        (("http://u:hunter22@host",), {}, "must start with redis://, rediss:// (TLS), unix:// or redis+cluster:// (a Redis Cluster); e.g. redis://127.0.0.1:6379/0"),
        (("redis://:hunter22@host:0",), {}, "port must be 1-65535"),
        ((6379,), {}, "use_redis takes a Redis URL (e.g. redis://127.0.0.1:6379/0) or a RedisConfig, not int"),
        (("redis://h",), {"presence_ttl": 0}, "use_redis(presence_ttl=...) must be a positive number of seconds"),
        (("redis://h",), {"ack_timeout": float("inf")}, "use_redis(ack_timeout=...) must be a positive number"),
    ],
)
def test_bad_arguments_name_the_fix(args, kwargs, expected):
    app = memory_app()
    with pytest.raises(ConfigurationError) as caught:
        app.use_redis(*args, **kwargs)
    assert expected in str(caught.value)
    assert "hunter22" not in str(caught.value)
    assert app.backplane is None and app.hub.backplane is None


def test_use_redis_once():
    app = memory_app()
    app.use_redis("redis://127.0.0.1:6390/0")
    with pytest.raises(ConfigurationError, match="call use_redis once"):
        app.use_redis("redis://127.0.0.1:6390/0")
    other = memory_app()
    RedisBackplane(other.hub, "redis://127.0.0.1:6390/0", other.reactor)
    with pytest.raises(ConfigurationError, match="already spans processes"):
        other.use_redis("redis://127.0.0.1:6390/0")


class _Recorder:
    """Stands in for the backplane's service methods, recording their order."""

    def __init__(self, app: App, events: list[str]) -> None:
        self.events = events
        backplane = app.backplane
        assert backplane is not None
        backplane.startService = self.start  # type: ignore[method-assign]
        backplane.stopService = self.stop  # type: ignore[method-assign]
        self.stopped: Deferred[None] = Deferred()
        self.backplane = backplane

    def start(self) -> None:
        self.events.append("backplane started")
        self.backplane.running = 1

    def stop(self) -> Deferred[None]:
        self.events.append("backplane stopping")
        self.backplane.running = 0
        return self.stopped


def test_the_backplane_starts_before_listening_and_stops_after_the_connections():
    app = memory_app()
    app.use_redis("redis://127.0.0.1:6390/0")
    events: list[str] = []
    recorder = _Recorder(app, events)
    server = app.servers[0]
    server_stopped: Deferred[None] = Deferred()
    server.listen = lambda: (events.append("listening"), succeed(None))[1]  # type: ignore[method-assign]
    server.stopService = lambda: (events.append("closing connections"), server_stopped)[1]  # type: ignore[method-assign]
    app.startService()
    assert events == ["backplane started", "listening"]
    done: list[object] = []
    app.stopService().addCallback(done.append)
    assert events[-1] == "closing connections"
    server_stopped.callback(None)  # every connection closed
    assert events[-1] == "backplane stopping" and done == []
    recorder.stopped.callback(None)
    assert len(done) == 1


def test_use_redis_on_a_running_app_starts_at_once():
    app = memory_app()
    app.startService()
    try:
        backplane = app.use_redis("redis://127.0.0.1:6390/0")
        assert backplane.running
    finally:
        app.stopService()
    assert not backplane.running


# -- two processes, one Redis --------------------------------------------------


class Node(NodeProcess):
    def __init__(self, url: str, tmp: Path, name: str) -> None:
        super().__init__(NODE, [url], tmp, name)

    def stop(self, timeout: float = 15.0) -> int | None:
        return super().stop(timeout)


@pytest.fixture
def nodes(tmp_path):
    redis = shared_redis()
    prefix = unique("app") + ":"
    separator = "&" if "?" in redis.url else "?"
    url = f"{redis.url}{separator}prefix={prefix}"
    started: list[Node] = []

    def start(count: int) -> list[Node]:
        for _ in range(count):
            started.append(Node(url, tmp_path, f"node{len(started)}"))
        return started

    start.prefix = prefix  # type: ignore[attr-defined]
    start.cli = redis.cli  # type: ignore[attr-defined]
    yield start
    for node in started:
        node.stop()
    for node in started:
        assert "Traceback" not in node.text(), node.text()


def eventually(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + seconds(timeout)
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.mark.slow
def test_two_apps_in_two_processes_share_a_chat(nodes):
    """The built-in chat of two App processes with use_redis is one chat."""
    one, two = nodes(2)
    with ExitStack() as stack:
        a = stack.enter_context(connect(f"ws://127.0.0.1:{one.port}/chat", proxy=None))
        b = stack.enter_context(connect(f"ws://127.0.0.1:{two.port}/chat", proxy=None))
        welcome_a = json.loads(a.recv(timeout=seconds(5)))
        welcome_b = json.loads(b.recv(timeout=seconds(5)))
        assert welcome_a["id"].split(".")[0] != welcome_b["id"].split(".")[0]  # two nodes
        channel = f"{nodes.prefix}ch:{{chat:chat}}"
        assert eventually(lambda: nodes.cli.numsub(channel) == 2), "both nodes subscribe to the room"
        a.send("from one")
        assert b.recv(timeout=seconds(5)) == "from one"
        b.send(b"\x00from two")
        assert a.recv(timeout=seconds(5)) == b"\x00from two"


@pytest.mark.slow
def test_what_a_stopping_app_publishes_still_crosses(nodes):
    """SIGTERM: clients get 1001, their on_close publishes reach the other process, presence is cleaned."""
    one, two = nodes(2)
    with ExitStack() as stack:
        a = stack.enter_context(connect(f"ws://127.0.0.1:{one.port}/room", proxy=None))
        b = stack.enter_context(connect(f"ws://127.0.0.1:{two.port}/room", proxy=None))
        id_a, id_b = a.recv(timeout=seconds(5)), b.recv(timeout=seconds(5))
        channel = f"{nodes.prefix}ch:{{room}}"
        assert eventually(lambda: nodes.cli.numsub(channel) == 2)
        presence = f"{nodes.prefix}presence:{{room}}"
        assert eventually(lambda: nodes.cli("HLEN", presence) == "2")
        node_a = id_a.split(".")[0]
        assert eventually(lambda: nodes.cli("ZSCORE", f"{nodes.prefix}{{nodes}}", node_a) != "")
        one.process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            a.recv(timeout=seconds(10))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert b.recv(timeout=seconds(10)) == f"bye {id_a}"
        assert one.process.wait(timeout=seconds(15)) is not None
        # The stopped node took its presence out of Redis on the way.
        assert nodes.cli("HKEYS", presence) == id_b
        assert nodes.cli("ZSCORE", f"{nodes.prefix}{{nodes}}", node_a) == ""
        assert nodes.cli.numsub(channel) == 1
    assert "Hub spans processes through Redis at redis://127.0.0.1:" in one.text()
