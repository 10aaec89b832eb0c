"""RedisClient on a Clock with in-memory connections: setup, fail-fast, bounds, timeouts, outages, scripts."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, formatEvent

from ratchetpy.exceptions import RedisReplyError, RedisTimeout, RedisUnavailable
from ratchetpy.redis import Backoff, RedisClient, RedisConfig, Script
from tests.support.redis_memory import MemoryEndpoint

SECRET = "pa55-w0rd"


def make(
    url: str = "redis://127.0.0.1/0?health_interval=0", **kwargs: Any
) -> tuple[RedisClient, MemoryEndpoint, MemoryReactorClock]:
    reactor = MemoryReactorClock()
    endpoint = MemoryEndpoint()
    # random() = 1.0: every wait is its ceiling, so the test knows when attempts happen
    client = RedisClient(
        RedisConfig.from_url(url),
        reactor,
        endpoint=endpoint,
        backoff=Backoff(1.0, 8.0, 2.0, random=lambda: 1.0),
        **kwargs,
    )
    return client, endpoint, reactor


def usable(
    url: str = "redis://127.0.0.1/0?health_interval=0&client_name=",
) -> tuple[RedisClient, MemoryEndpoint, MemoryReactorClock]:
    client, endpoint, reactor = make(url)
    client.startService()
    assert endpoint.last.commands() == [[b"PING"]]
    endpoint.last.reply("PONG")
    assert client.connected
    return client, endpoint, reactor


def outcome(d: Any) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    return out[0]


def error_of(d: Any) -> Any:
    result = outcome(d)
    assert hasattr(result, "value"), f"expected a failure, got {result!r}"
    return result.value


def texts(logged: list[dict[str, Any]]) -> list[str]:
    return [
        formatEvent(e)
        for e in logged
        if e.get("log_namespace", "").startswith("ratchetpy.redis")
        and e.get("log_level") != LogLevel.debug
    ]


def test_setup_authenticates_selects_and_names_before_the_connection_is_usable(logged) -> None:
    client, endpoint, _ = make(
        f"redis://app:{SECRET}@127.0.0.1/2?client_name=node-1&health_interval=0"
    )
    client.startService()
    assert endpoint.last.commands() == [
        [b"AUTH", b"app", SECRET.encode()],
        [b"SELECT", b"2"],
        [b"CLIENT", b"SETNAME", b"node-1"],
    ]
    early = client.execute("GET", "k")
    assert isinstance(error_of(early), RedisUnavailable)
    assert not client.connected and client.stats.connected == 0
    endpoint.last.reply("OK", "OK", "OK")
    assert client.connected and client.stats.connected == 1
    assert any("is up" in t for t in texts(logged))
    d = client.execute("GET", "k")
    assert endpoint.last.commands() == [[b"GET", b"k"]]
    endpoint.last.reply(b"v")
    assert outcome(d) == b"v"
    assert client.stats.commands == 1


def test_password_only_auth() -> None:
    client, endpoint, _ = make(f"redis://:{SECRET}@127.0.0.1/0?health_interval=0")
    client.startService()
    assert endpoint.last.commands()[0] == [b"AUTH", SECRET.encode()]


def test_a_refused_client_name_is_no_reason_to_give_up(logged) -> None:
    client, endpoint, _ = make("redis://127.0.0.1/0?health_interval=0")
    client.startService()
    endpoint.last.reply(
        RuntimeError("NOPERM this user has no permissions to run the 'client|setname' command")
    )
    assert client.connected
    assert sum("CLIENT SETNAME refused" in t for t in texts(logged)) == 1


def test_wrong_password_is_logged_once_without_the_password_and_retried_with_growing_waits(
    logged,
) -> None:
    client, endpoint, reactor = make(
        f"redis://app:{SECRET}@127.0.0.1/0?health_interval=0&client_name="
    )
    client.startService()
    for _ in range(3):
        endpoint.last.reply(
            RuntimeError("WRONGPASS invalid username-password pair or user is disabled.")
        )
        assert endpoint.last.transport.aborted
        reactor.advance(0.01)
    assert endpoint.attempts == 1
    reactor.advance(1.0)  # first wait: 1 s
    assert endpoint.attempts == 2
    endpoint.last.reply(
        RuntimeError("WRONGPASS invalid username-password pair or user is disabled.")
    )
    reactor.advance(1.5)
    assert endpoint.attempts == 2  # second wait: 2 s
    reactor.advance(0.5)
    assert endpoint.attempts == 3
    lines = texts(logged)
    assert all(SECRET not in line for line in lines)
    warned = [t for t in lines if "WRONGPASS" in t]
    assert len(warned) == 1 and "unavailable" in warned[0] and "check the URL" in warned[0]
    assert client.stats.outages == 1
    endpoint.last.reply("OK")
    assert client.connected
    back = [t for t in texts(logged) if "is back after" in t]
    assert back == [
        "Redis commands connection to redis://app:***@127.0.0.1:6379/0 is back after 3.0 s"
    ]
    assert client.backoff.failures == 0


def test_commands_fail_fast_while_redis_is_unreachable(logged) -> None:
    client, endpoint, reactor = make()
    endpoint.refuse = True
    client.startService()
    failures = [client.execute("SET", "k", i) for i in range(5)]
    for d in failures:
        error = error_of(d)
        assert isinstance(error, RedisUnavailable) and "unavailable" in str(error)
    assert client.stats.failures == 5 and client.stats.commands == 0
    reactor.advance(1.0)
    reactor.advance(2.0)
    reactor.advance(4.0)
    assert endpoint.attempts == 4
    assert "for 7.0 s" in str(error_of(client.execute("GET", "k")))
    lines = [t for t in texts(logged) if "unavailable" in t]
    assert len(lines) == 1 and "cannot connect" in lines[0] and "refused (test)" in lines[0]
    assert client.stats.outages == 1
    endpoint.refuse = False
    reactor.advance(8.0)
    endpoint.last.reply("OK")
    assert client.connected
    assert any("is back after 15.0 s" in t for t in texts(logged))


def test_pending_commands_are_bounded() -> None:
    client, endpoint, _ = usable("redis://127.0.0.1/0?health_interval=0&client_name=&max_pending=2")
    first, second = client.execute("A"), client.execute("B")
    third = client.execute("C")
    error = error_of(third)
    assert (
        isinstance(error, RedisUnavailable)
        and "too many pending" in str(error)
        and "max_pending=2" in str(error)
    )
    assert client.pending == 2
    endpoint.last.reply(1)
    assert outcome(first) == 1
    fourth = client.execute("D")
    endpoint.last.commands()
    endpoint.last.reply(2, 4)
    assert outcome(second) == 2 and outcome(fourth) == 4


def test_a_timeout_drops_the_connection_and_it_comes_back(logged) -> None:
    client, endpoint, reactor = usable(
        "redis://127.0.0.1/0?health_interval=0&client_name=&timeout=2"
    )
    d = client.execute("GET", "k")
    reactor.advance(2.0)
    assert isinstance(error_of(d), RedisTimeout)
    assert endpoint.connections[0].transport.aborted
    assert not client.connected
    assert client.stats.timeouts == 1 and client.stats.failures == 1 and client.stats.outages == 1
    assert isinstance(error_of(client.execute("GET", "k")), RedisUnavailable)
    reactor.advance(1.0)
    assert len(endpoint.connections) == 2
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    assert client.connected
    lost = [t for t in texts(logged) if "unavailable" in t]
    assert len(lost) == 1 and "no reply in time" in lost[0]
    assert any("is back after 1.0 s" in t for t in texts(logged))


def test_idle_connections_are_pinged_and_an_unanswered_ping_drops_them() -> None:
    client, endpoint, reactor = make(
        "redis://127.0.0.1/0?health_interval=1&timeout=0.5&client_name="
    )
    client.startService()
    endpoint.last.commands()
    endpoint.last.reply("PONG")
    reactor.advance(1.0)
    assert endpoint.last.commands() == [[b"PING"]]
    endpoint.last.reply("PONG")
    busy = client.execute("BLPOP", "q", 0, timeout=10)
    endpoint.last.commands()
    reactor.advance(1.0)
    assert endpoint.last.commands() == []  # a connection with a command waiting needs no PING
    endpoint.last.reply(None)
    assert outcome(busy) is None
    reactor.advance(1.0)
    assert endpoint.last.commands() == [[b"PING"]]
    reactor.advance(0.5)
    assert not client.connected and endpoint.connections[0].transport.aborted
    assert client.stats.timeouts == 1


def test_evalsha_falls_back_to_eval_on_noscript() -> None:
    client, endpoint, _ = usable()
    script = Script("return {KEYS[1], ARGV[1]}")
    d = client.evalsha_or_eval(script, ["k"], ["a"])
    assert endpoint.last.commands() == [[b"EVALSHA", script.sha1.encode(), b"1", b"k", b"a"]]
    endpoint.last.reply(RuntimeError("NOSCRIPT No matching script. Please use EVAL."))
    assert endpoint.last.commands() == [[b"EVAL", script.source, b"1", b"k", b"a"]]
    endpoint.last.reply([b"k", b"a"])
    assert outcome(d) == [b"k", b"a"]
    assert client.stats.errors == 0 and client.stats.commands == 2
    again = client.evalsha_or_eval("return 1")
    assert endpoint.last.commands() == [[b"EVALSHA", Script("return 1").sha1.encode(), b"0"]]
    endpoint.last.reply(1)
    assert outcome(again) == 1


def test_other_script_errors_are_not_retried() -> None:
    client, endpoint, _ = usable()
    d = client.evalsha_or_eval("return redis.call('INCR', KEYS[1])", ["k"])
    endpoint.last.commands()
    endpoint.last.reply(
        RuntimeError("WRONGTYPE Operation against a key holding the wrong kind of value")
    )
    assert endpoint.last.commands() == []
    error = error_of(d)
    assert isinstance(error, RedisReplyError) and error.code == "WRONGTYPE"
    assert client.stats.errors == 1


def test_key_prefix_publish_and_spublish() -> None:
    client, endpoint, _ = usable("redis://127.0.0.1/0?health_interval=0&client_name=&prefix=app:")
    assert client.key("user:1") == "app:user:1"
    assert client.key(b"user:1") == b"app:user:1"
    p, s = client.publish("news", "hi"), client.spublish(b"shard", b"\x00")
    assert endpoint.last.commands() == [
        [b"PUBLISH", b"news", b"hi"],
        [b"SPUBLISH", b"shard", b"\x00"],
    ]
    endpoint.last.reply(2, 0)
    assert (outcome(p), outcome(s)) == (2, 0)


def test_stopping_fails_waiting_commands_and_stops_reconnecting() -> None:
    client, endpoint, reactor = usable()
    d = client.execute("GET", "k")
    stopped = client.stopService()
    assert isinstance(error_of(d), RedisUnavailable)
    assert outcome(stopped) is None
    reactor.advance(60)
    assert len(endpoint.connections) == 1
    assert client.stats.outages == 0  # a stop is not an outage


@pytest.mark.parametrize("reply", [b"$-1\r\n", b"garbage\r\n"])
def test_bad_setup_replies_do_not_make_the_connection_usable(reply: bytes) -> None:
    client, endpoint, _ = make("redis://127.0.0.1/0?health_interval=0&client_name=&db=1")
    client.startService()
    endpoint.last.commands()
    endpoint.last.send_raw(b"-ERR DB index is out of range\r\n" if reply == b"$-1\r\n" else reply)
    assert not client.connected and endpoint.last.transport.aborted
