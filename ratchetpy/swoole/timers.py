# -*- test-case-name: tests.swoole.test_server -*-
"""
``tick``/``after``/``clear_timer``: Swoole's timers on Twisted's
``LoopingCall`` and ``callLater``.

Intervals are in **milliseconds**, as in Swoole. Every timer has an int id
(Swoole's ``$timerId``) for ``clear``. A callback that raises is logged
and the tick keeps going (in Swoole the worker would die); a callback
that returns a Deferred or is ``async def`` is awaited before the next
tick is scheduled, so ticks of one timer never overlap.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from .._handlers import as_deferred
from ..exceptions import ConfigurationError

__all__ = ["Timers", "wants_timer_id"]

_log = Logger(namespace="ratchetpy.swoole")


def _check_ms(name: str, ms: Any) -> float:
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms <= 0:
        raise ConfigurationError(
            f"{name}(ms, fn): ms is a positive number of milliseconds (Swoole's unit), not {ms!r}"
        )
    return float(ms) / 1000.0


def _check_callable(name: str, fn: Any) -> None:
    if not callable(fn):
        raise ConfigurationError(f"{name}(ms, fn): fn must be callable, not {fn!r}")


def wants_timer_id(fn: Callable[..., Any], nargs: int) -> bool:
    """
    True if ``fn`` takes the timer id before ``nargs`` arguments: it cannot
    be called with ``nargs`` positional arguments but can with one more
    (Swoole's ``function ($timerId) {...}``).
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    placeholders = [None] * nargs
    try:
        signature.bind(*placeholders)
        return False
    except TypeError:
        pass
    try:
        signature.bind(None, *placeholders)
        return True
    except TypeError:
        return False


class Timers:
    """
    The timers of one server, by id.

    Args:
        reactor: a function returning the reactor (resolved on first use,
            so a server built at import time imports no reactor).
    """

    def __init__(self, reactor: Callable[[], Any]) -> None:
        self._reactor = reactor
        self._ids = itertools.count(1)
        self._loops: dict[int, LoopingCall] = {}
        self._delayed: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._loops) + len(self._delayed)

    def __contains__(self, timer_id: object) -> bool:
        return timer_id in self._loops or timer_id in self._delayed

    def ids(self) -> list[int]:
        """Ids of the active timers (Swoole's ``Timer::list()``)."""
        return sorted([*self._loops, *self._delayed])

    def tick(self, ms: float, fn: Callable[..., Any], *args: Any) -> int:
        """
        Call ``fn`` every ``ms`` milliseconds, the first time ``ms`` from
        now; ``fn(timer_id, *args)`` if it takes the id (as Swoole passes
        it), else ``fn(*args)``.

        Returns:
            The timer id, for ``clear``.

        Raises:
            ConfigurationError: ``ms`` is not positive or ``fn`` not callable.
        """
        interval = _check_ms("tick", ms)
        _check_callable("tick", fn)
        timer_id = next(self._ids)
        call_args = (timer_id, *args) if wants_timer_id(fn, len(args)) else args
        loop = LoopingCall(self._run, timer_id, fn, call_args)
        loop.clock = self._reactor()
        self._loops[timer_id] = loop
        loop.start(interval, now=False).addErrback(self._loop_failed, timer_id)
        return timer_id

    def after(self, ms: float, fn: Callable[..., Any], *args: Any) -> int:
        """
        Call ``fn(*args)`` once, ``ms`` milliseconds from now.

        Returns:
            The timer id, for ``clear`` before it fires.
        """
        delay = _check_ms("after", ms)
        _check_callable("after", fn)
        timer_id = next(self._ids)

        def fire() -> None:
            self._delayed.pop(timer_id, None)
            self._run(timer_id, fn, args)

        self._delayed[timer_id] = self._reactor().callLater(delay, fire)
        return timer_id

    def clear(self, timer_id: int) -> bool:
        """Stop a timer; ``False`` if no active timer has this id."""
        loop = self._loops.pop(timer_id, None)
        if loop is not None:
            if loop.running:
                loop.stop()
            return True
        call = self._delayed.pop(timer_id, None)
        if call is not None:
            if call.active():
                call.cancel()
            return True
        return False

    def clear_all(self) -> int:
        """Stop every timer; how many there were."""
        ids = self.ids()
        for timer_id in ids:
            self.clear(timer_id)
        return len(ids)

    def _run(self, timer_id: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        try:
            result = fn(*args)
        except Exception:  # noqa: BLE001 - logged; the timer goes on (module docstring)
            _log.failure("Timer {timer_id} callback {fn!r} raised", timer_id=timer_id, fn=fn)
            return None
        d = as_deferred(result)
        if d is None:
            return None
        return d.addErrback(self._async_failed, timer_id, fn)

    @staticmethod
    def _async_failed(failure: Failure, timer_id: int, fn: Any) -> None:
        _log.failure("Timer {timer_id} callback {fn!r} failed", failure, timer_id=timer_id, fn=fn)

    def _loop_failed(self, failure: Failure, timer_id: int) -> None:
        # Only a BaseException (SystemExit, ...) gets here: the loop is over.
        self._loops.pop(timer_id, None)
        _log.failure("Timer {timer_id} stopped", failure, timer_id=timer_id)
