"""tick/after/clear_timer in milliseconds, on a Clock."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ratchetpy import ConfigurationError
from ratchetpy.swoole import Server
from ratchetpy.swoole.timers import Timers, wants_timer_id


def timers():
    clock = Clock()
    return Timers(lambda: clock), clock


def test_tick_every_ms_until_cleared():
    t, clock = timers()
    calls = []
    timer_id = t.tick(100, calls.append, "x")
    clock.advance(0.099)
    assert calls == []
    clock.pump([0.001, 0.1, 0.1])
    assert calls == ["x", "x", "x"]
    assert t.clear(timer_id) is True and t.clear(timer_id) is False
    clock.advance(1)
    assert calls == ["x", "x", "x"] and len(t) == 0


def test_tick_passes_the_timer_id_to_a_function_that_takes_it():
    """Swoole's function ($timerId) {...}: the id comes first when the function has room for it."""
    t, clock = timers()
    seen = []

    def with_id(timer_id, label):
        seen.append((timer_id, label))
        t.clear(timer_id)

    first = t.tick(10, with_id, "a")
    second = t.tick(10, lambda: seen.append("no id"))
    clock.advance(0.01)
    clock.advance(0.01)
    assert seen == [(first, "a"), "no id", "no id"]
    assert t.ids() == [second]


def test_after_fires_once_and_can_be_cleared():
    t, clock = timers()
    calls = []
    t.after(50, calls.append, 1)
    cancelled = t.after(50, calls.append, 2)
    assert t.clear(cancelled) is True
    clock.advance(0.05)
    clock.advance(1)
    assert calls == [1] and len(t) == 0
    assert t.clear(cancelled) is False


def test_a_raising_tick_is_logged_and_goes_on(logged):
    t, clock = timers()
    calls = []

    def flaky():
        calls.append(1)
        raise ValueError("once")

    t.tick(10, flaky)
    clock.advance(0.01)
    clock.advance(0.01)
    assert len(calls) == 2
    assert [e["log_failure"].type for e in logged if e.get("log_failure")] == [ValueError, ValueError]


def test_an_async_tick_is_awaited_before_the_next():
    """Ticks never overlap: the next one is scheduled once the Deferred fires."""
    t, clock = timers()
    pending = []

    def slow():
        d = Deferred()
        pending.append(d)
        return d

    t.tick(10, slow)
    clock.advance(0.01)
    clock.advance(0.05)
    assert len(pending) == 1
    pending[0].callback(None)
    clock.advance(0.01)
    assert len(pending) == 2


def test_clear_all():
    t, clock = timers()
    t.tick(10, print)
    t.after(10, print)
    assert t.clear_all() == 2 and t.ids() == []


@pytest.mark.parametrize("ms", [0, -5, "10", True, float("inf")])
def test_ms_must_be_positive(ms):
    t, _ = timers()
    with pytest.raises(ConfigurationError, match="milliseconds"):
        t.tick(ms, print)
    with pytest.raises(ConfigurationError, match="milliseconds"):
        t.after(ms, print)


def test_fn_must_be_callable():
    t, _ = timers()
    with pytest.raises(ConfigurationError, match="callable"):
        t.tick(10, "print")


@pytest.mark.parametrize(
    ("fn", "nargs", "expected"),
    [
        (lambda timer_id: None, 0, True),
        (lambda: None, 0, False),
        (lambda timer_id, a: None, 1, True),
        (lambda a: None, 1, False),
        (lambda *args: None, 0, False),
        (print, 0, False),
    ],
)
def test_wants_timer_id(fn, nargs, expected):
    assert wants_timer_id(fn, nargs) is expected


def test_server_timers_use_its_reactor():
    clock = Clock()
    server = Server(reactor=clock)
    calls = []
    tick = server.tick(1000, calls.append, "tick")
    server.after(1500, calls.append, "after")
    assert server.stats()["timer_num"] == 2
    clock.advance(1)
    clock.advance(0.5)
    assert calls == ["tick", "after"]
    assert server.clear_timer(tick) and not server.clear_timer(tick)
