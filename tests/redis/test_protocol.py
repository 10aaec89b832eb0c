"""RedisProtocol in memory: replies of every type, FIFO, errors, garbage, timeouts, pub/sub routing."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock

from ratchetpy.exceptions import (
    RedisProtocolError,
    RedisReplyError,
    RedisTimeout,
    RedisUnavailable,
)
from ratchetpy.redis.protocol import RedisProtocol
from tests.support.memory import Transport
from tests.support.redis_memory import Connection, read_commands, resp


def connect(
    clock: Clock | None = None, timeout: float = 5.0, **kwargs: Any
) -> tuple[RedisProtocol, Connection]:
    protocol = RedisProtocol(
        clock or MemoryReactorClock(), timeout, "redis://127.0.0.1:6379/0", **kwargs
    )
    transport = Transport()
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, Connection(protocol, transport)


def result_of(d: Any) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    return out[0]


def failure_of(d: Any) -> Any:
    result = result_of(d)
    assert hasattr(result, "value"), f"expected a failure, got {result!r}"
    return result.value


def test_commands_are_packed_as_resp_arrays() -> None:
    protocol, conn = connect()
    protocol.command("SET", "k", b"\x00\r\nbinary", 12, 2.5)
    assert conn.commands() == [[b"SET", b"k", b"\x00\r\nbinary", b"12", b"2.5"]]


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ("OK", b"OK"),  # status
        (b"bulk \r\n with CRLF \x00", b"bulk \r\n with CRLF \x00"),
        (b"", b""),
        (None, None),
        (42, 42),
        (-7, -7),
        ([], []),
        ([b"a", 1, None, [b"nested", [2]]], [b"a", 1, None, [b"nested", [2]]]),
        (b"x" * 70000, b"x" * 70000),
    ],
)
def test_each_reply_type_fires_its_command(wire: Any, value: Any) -> None:
    protocol, conn = connect()
    d = protocol.command("ANY")
    conn.reply(wire)
    assert result_of(d) == value


def test_replies_fire_commands_in_order() -> None:
    protocol, conn = connect()
    first, second, third = protocol.command("A"), protocol.command("B"), protocol.command("C")
    assert protocol.pending == 3
    conn.reply(1, 2)
    assert result_of(first) == 1 and result_of(second) == 2
    assert protocol.pending == 1
    conn.reply(3)
    assert result_of(third) == 3 and protocol.pending == 0


def test_an_error_reply_fails_that_command_only() -> None:
    protocol, conn = connect()
    before, failing, after = protocol.command("A"), protocol.command("B"), protocol.command("C")
    conn.reply(
        b"ok",
        RuntimeError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        b"fine",
    )
    assert result_of(before) == b"ok"
    error = failure_of(failing)
    assert isinstance(error, RedisReplyError)
    assert error.code == "WRONGTYPE"
    assert error.message.startswith("WRONGTYPE Operation")
    assert result_of(after) == b"fine"
    assert conn.open


def test_an_error_inside_an_array_stays_in_the_list() -> None:
    protocol, conn = connect()
    d = protocol.command("EXEC")
    conn.reply([b"OK", RuntimeError("ERR value is not an integer")])
    ok, error = result_of(d)
    assert ok == b"OK"
    assert isinstance(error, RedisReplyError) and error.code == "ERR"


def test_garbage_fails_every_waiting_command_and_drops_the_connection() -> None:
    protocol, conn = connect()
    waiting = [protocol.command("A"), protocol.command("B")]
    conn.send_raw(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    for d in waiting:
        error = failure_of(d)
        assert isinstance(error, RedisProtocolError)
        assert "not RESP" in str(error)
    assert conn.transport.aborted and not conn.open
    later = failure_of(protocol.command("C"))
    assert isinstance(later, RedisUnavailable)


def test_a_reply_nobody_waits_for_drops_the_connection() -> None:
    protocol, conn = connect()
    conn.reply(b"unasked")
    assert conn.transport.aborted
    assert isinstance(protocol.broken, RedisProtocolError)


def test_no_reply_in_time_fails_all_and_drops_the_connection() -> None:
    clock = MemoryReactorClock()
    timeouts: list[None] = []
    protocol, conn = connect(clock, timeout=2.0, on_timeout=lambda: timeouts.append(None))
    first = protocol.command("A")
    clock.advance(1.5)
    second = protocol.command("B")
    clock.advance(0.4)
    assert conn.open
    clock.advance(0.2)
    assert isinstance(failure_of(first), RedisTimeout)
    assert isinstance(failure_of(second), RedisTimeout)
    assert conn.transport.aborted
    assert len(timeouts) == 1


def test_the_deadline_follows_the_oldest_command() -> None:
    clock = MemoryReactorClock()
    protocol, conn = connect(clock, timeout=2.0)
    first = protocol.command("A")
    clock.advance(1.5)
    second = protocol.command("B")
    conn.reply(1)
    assert result_of(first) == 1
    clock.advance(1.9)  # t=3.4: past the first deadline (2.0), not the second's (3.5)
    assert conn.open and protocol.pending == 1
    clock.advance(0.2)
    assert isinstance(failure_of(second), RedisTimeout)


def test_an_idle_connection_keeps_no_timer() -> None:
    clock = MemoryReactorClock()
    protocol, conn = connect(clock)
    d = protocol.command("PING")
    conn.reply("PONG")
    assert result_of(d) == b"PONG"
    assert clock.getDelayedCalls() == []


def test_a_lost_connection_fails_waiting_commands_with_unavailable() -> None:
    lost: list[Any] = []
    protocol, conn = connect(on_lost=lambda p, reason: lost.append(p))
    d = protocol.command("GET", "k")
    conn.transport.loseConnection()
    error = failure_of(d)
    assert isinstance(error, RedisUnavailable) and not isinstance(error, RedisTimeout)
    assert "lost" in str(error)
    assert lost == [protocol]


def test_pubsub_messages_go_to_on_push_and_acks_to_the_subscribe() -> None:
    pushed: list[Any] = []
    protocol, conn = connect(on_push=pushed.append)
    d = protocol.subscribe_command(b"SUBSCRIBE", [b"a", b"b"])
    assert read_commands(conn.transport) == [[b"SUBSCRIBE", b"a", b"b"]]
    conn.reply([b"subscribe", b"a", 1])
    assert protocol.pending == 1  # one more ack to come
    conn.reply([b"message", b"a", b"early"], [b"subscribe", b"b", 2])
    assert result_of(d) == [[b"subscribe", b"a", 1], [b"subscribe", b"b", 2]]
    conn.reply([b"pmessage", b"r*", b"room", b"p"], [b"smessage", b"s", b"x"])
    ping = protocol.command("PING")
    conn.reply([b"pong", b""])
    assert result_of(ping) == [b"pong", b""]
    assert pushed == [
        [b"message", b"a", b"early"],
        [b"pmessage", b"r*", b"room", b"p"],
        [b"smessage", b"s", b"x"],
    ]


def test_an_unsolicited_unsubscribe_goes_to_on_push() -> None:
    pushed: list[Any] = []
    protocol, conn = connect(on_push=pushed.append)
    d = protocol.subscribe_command(b"SSUBSCRIBE", [b"s"])
    conn.reply([b"ssubscribe", b"s", 1])
    result_of(d)
    conn.reply([b"sunsubscribe", b"s", 0])
    assert pushed == [[b"sunsubscribe", b"s", 0]]
    assert conn.open


def test_a_refused_subscribe_fails_that_subscribe() -> None:
    protocol, conn = connect(on_push=lambda m: None)
    d = protocol.subscribe_command(b"SUBSCRIBE", [b"secret"])
    conn.reply(RuntimeError("NOPERM this user has no permissions to access the 'secret' channel"))
    error = failure_of(d)
    assert isinstance(error, RedisReplyError) and error.code == "NOPERM"
    assert conn.open


def test_message_looking_replies_are_plain_replies_outside_pubsub() -> None:
    protocol, conn = connect(on_push=lambda m: pytest.fail("not a pub/sub connection"))
    d = protocol.command("LRANGE", "k", 0, -1)
    conn.reply([b"message", b"a", b"b"])
    assert result_of(d) == [b"message", b"a", b"b"]


def test_a_failing_push_handler_does_not_break_the_connection() -> None:
    def explode(message: Any) -> None:
        raise RuntimeError("handler bug")

    protocol, conn = connect(on_push=explode)
    protocol.pubsub = True
    conn.reply([b"message", b"a", b"1"])
    d = protocol.command("PING")
    conn.reply([b"pong", b""])
    assert result_of(d) == [b"pong", b""]
    assert conn.open


def test_resp_helper_round_trips() -> None:
    assert resp([b"a", 1, None, "OK"]) == b"*4\r\n$1\r\na\r\n:1\r\n$-1\r\n+OK\r\n"


def test_an_aborted_connection_is_unusable_before_its_loss_is_reported() -> None:
    from twisted.internet.testing import StringTransport

    clock = MemoryReactorClock()
    protocol = RedisProtocol(clock, 1.0, "redis://127.0.0.1:6379/0")
    transport = StringTransport()  # like TCP: the loss is reported on a later reactor turn
    protocol.makeConnection(transport)
    assert protocol.usable
    protocol.command("GET", "k")
    clock.advance(1.0)
    assert transport.disconnected  # aborted
    assert protocol.open and not protocol.usable
    assert isinstance(failure_of(protocol.command("PING")), RedisTimeout)


def test_commands_that_cannot_be_sent_fail_at_once_and_send_nothing() -> None:
    protocol, conn = connect()
    with pytest.raises(ValueError, match="at least its name"):
        protocol.command()
    with pytest.raises(TypeError, match=r"not \(str, NoneType\)"):
        protocol.command("SET", None)  # type: ignore[arg-type]
    assert conn.transport.value() == b"" and protocol.pending == 0
