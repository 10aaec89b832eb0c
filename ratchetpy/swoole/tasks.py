# -*- test-case-name: tests.swoole.test_loopback -*-
"""
``server.task()``: blocking work in the reactor's thread pool, returning a
Deferred (Swoole's task workers, without the processes).

``task(fn, *args)`` runs ``fn``; ``task(data)`` runs the ``task`` handler
as Swoole's task workers do, then ``finish`` with what it returned. The
pool's size is ``task_worker_num`` (Twisted's default: 10 threads). Code in
a task thread must not touch the reactor: the server's calls refuse to run
there (``reactor_only``), with a message saying what to do instead.
"""

from __future__ import annotations

import inspect
import itertools
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from ..exceptions import ConfigurationError, SwooleError

__all__ = ["Tasks", "reactor_only"]

_log = Logger(namespace="ratchetpy.swoole")

# Set in task threads, so server calls made there can refuse.
_task_thread = threading.local()


def _run_in_thread(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    _task_thread.active = True
    try:
        return fn(*args, **kwargs)
    finally:
        _task_thread.active = False


def reactor_only(name: str) -> None:
    """
    Raise ``SwooleError`` if called from a task thread.

    Args:
        name: the server method, for the message.
    """
    if getattr(_task_thread, "active", False):
        raise SwooleError(
            f"server.{name}() was called from a task() thread, where the reactor's state must "
            "not be touched: return the value from the task and use it in the Deferred's "
            "callback (or the 'finish' handler), or use reactor.callFromThread"
        )


class Tasks:
    """
    The tasks of one server.

    Args:
        server: passed to the ``task`` and ``finish`` handlers.
        reactor: a function returning the reactor.
        handler: a function returning the server's handler for an event.
    """

    def __init__(
        self,
        server: Any,
        reactor: Callable[[], Any],
        handler: Callable[[str], Callable[..., Any] | None],
    ) -> None:
        self._server = server
        self._reactor = reactor
        self._handler = handler
        self._ids = itertools.count(1)
        self.running = 0
        """Tasks started and not yet finished (Swoole's ``tasking_num``)."""

    def run(self, fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """
        Run ``fn(*args, **kwargs)``, or the ``task`` handler for ``fn`` when
        it is data, in a thread (see the module docstring).

        Raises:
            ConfigurationError: ``fn`` is an ``async def``, or data is given
                with no ``task`` handler.
        """
        task_id = next(self._ids)
        finish: Callable[..., Any] | None = None
        if callable(fn):
            if inspect.iscoroutinefunction(fn):
                raise ConfigurationError(
                    f"task() runs blocking functions in a thread; {fn!r} is async: await it in a handler"
                )
            call, call_args = fn, args
        else:
            handler = self._handler("task")
            if handler is None:
                raise ConfigurationError(
                    "task(data) needs a 'task' handler (server.on('task', fn(server, task_id, "
                    "src_worker_id, data))), or pass a function: task(fn, *args)"
                )
            call, call_args, kwargs = handler, (self._server, task_id, 0, fn), {}
            finish = self._handler("finish")
        reactor = self._reactor()
        self.running += 1

        def done(result: Any) -> Any:
            self.running -= 1
            return result

        d = deferToThreadPool(reactor, reactor.getThreadPool(), _run_in_thread, call, call_args, kwargs)
        d.addBoth(done)
        if finish is not None:
            d.addCallback(self._finish, finish, task_id)
        return d

    def _finish(self, result: Any, finish: Callable[..., Any], task_id: int) -> Any:
        # Swoole calls onFinish only for a task that returned something.
        if result is not None:
            try:
                finish(self._server, task_id, result)
            except Exception:  # noqa: BLE001 - logged; the Deferred still fires with the result
                _log.failure("The 'finish' handler raised for task {task_id}", task_id=task_id)
        return result
