"""
Calling a component's handlers: plain functions, coroutines and Deferreds.

Every layer that calls user code (``on_open``, ``on_message``, ``on_close``,
``on_error``, WAMP's ``on_call``/``on_publish``/...) goes through
``call_handler``, so the rules are the same everywhere:

- A handler may be a plain method, an ``async def`` (run with Twisted's
  ``Deferred.fromCoroutine``: it may ``await`` Deferreds) or return a
  ``Deferred``.
- **Order per connection.** One connection's handler calls run one after
  another: while an async handler of a connection has not finished, that
  connection's next events wait for it (an ``async def on_open`` that loads
  the user finishes before the first ``on_message`` starts; ``on_close``
  comes after the last message handler). Different connections never wait
  for each other. While more than ``MAX_QUEUED`` events wait, the
  connection stops reading (TCP backpressure) until the queue drains.
- **Errors.** An ``Exception`` raised by a handler, or the failure of the
  awaitable it returned, goes to ``on_error(conn, exc)``; the connection
  stays open (Ratchet's contract). Anything else (``SystemExit``,
  ``KeyboardInterrupt``, ``GeneratorExit``, another ``BaseException``) is
  logged with its traceback and the connection is closed (1011 over
  WebSocket, aborted over raw TCP); ``SystemExit`` and
  ``KeyboardInterrupt`` also stop the server gracefully, as ``exit()`` in a
  PHP Ratchet handler ends the process. Nothing is ever raised into the
  reactor.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = [
    "HandlerHost",
    "HandlerHostBase",
    "Serial",
    "call_handler",
    "handle_result",
    "settle",
    "as_deferred",
    "MAX_QUEUED",
    "stops_process",
    "stop_reactor",
    "stop_now",
]

MAX_QUEUED = 32
"""Events one connection may have waiting behind an async handler before it
stops reading from the socket."""


def stops_process(exc: BaseException | None) -> bool:
    """True for the exceptions that ask the whole process to stop."""
    return isinstance(exc, (SystemExit, KeyboardInterrupt))


def stop_reactor(reactor: Any) -> None:
    """
    Stop ``reactor`` gracefully, on its next turn, if it runs: its shutdown
    triggers (``App``/``IoServer`` stops) close the other clients first.
    """
    if reactor is not None and getattr(reactor, "running", False):
        reactor.callLater(0, stop_now, reactor)


def stop_now(reactor: Any) -> None:
    """``reactor.stop()``, a no-op when a stop is already under way."""
    from twisted.internet.error import ReactorNotRunning

    try:
        reactor.stop()
    except ReactorNotRunning:
        pass  # a stop is already under way


class HandlerHost(Protocol):
    """What ``call_handler`` needs from the object that owns a connection."""

    _serial: Serial | None

    def _handler_error(self, exc: Exception) -> None:
        """Route ``exc`` to the component's ``on_error``."""

    def _handler_fatal(self, exc: BaseException) -> None:
        """Log ``exc``, close the connection, stop the process if asked."""

    def _pause_reading(self) -> None:
        """Stop reading from the peer."""

    def _resume_reading(self) -> None:
        """Read from the peer again."""


class Serial:
    """
    The events of one connection that wait for an async handler to finish.

    Created the first time a handler of the connection returns an
    unfinished awaitable; it costs nothing for connections whose handlers
    are plain functions.
    """

    __slots__ = ("busy", "queue", "paused")

    def __init__(self) -> None:
        self.busy = False
        self.queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self.paused = False


def call_handler(host: HandlerHost, method: Callable[..., Any], *args: Any) -> None:
    """
    Call ``method(*args)`` for ``host``'s connection, after any async
    handler of that connection still running.
    """
    serial = host._serial
    if serial is not None and serial.busy:
        serial.queue.append((method, args))
        if len(serial.queue) > MAX_QUEUED and not serial.paused:
            serial.paused = True
            host._pause_reading()
        return
    _run(host, method, args)


def _run(host: HandlerHost, method: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = method(*args)
    except Exception as exc:  # noqa: BLE001 - goes to on_error (module docstring)
        host._handler_error(exc)
        return
    except BaseException as exc:  # noqa: BLE001 - see the module docstring
        host._handler_fatal(exc)
        return
    if result is not None:
        handle_result(host, result)


def handle_result(host: HandlerHost, result: object) -> None:
    """
    What a handler of ``host``'s connection returned: if it is awaitable,
    route its failure and hold the connection's next events until it is done.
    """
    d = as_deferred(result)
    if d is None:
        return  # a plain return value (``return self``, ...): nothing to wait for
    d.addErrback(_failed, host)
    if d.called:
        return  # finished already (or failed, and on_error has run)
    serial = host._serial
    if serial is None:
        serial = host._serial = Serial()
    serial.busy = True
    d.addBoth(_next, host, serial)


def as_deferred(result: object) -> Deferred[Any] | None:
    """
    ``result`` as a Deferred if it is a Deferred, a coroutine or another
    awaitable; ``None`` for a plain value.
    """
    if isinstance(result, Deferred):
        return result
    if inspect.iscoroutine(result):
        return Deferred.fromCoroutine(result)
    if inspect.isawaitable(result):
        return Deferred.fromCoroutine(_awaited(result))
    return None


def settle(result: object, on_failure: Callable[[Failure], object]) -> None:
    """
    If ``result`` is awaitable, run it and pass its failure (if any) to
    ``on_failure``; for handlers whose completion nothing waits for, such as
    ``on_error``.
    """
    d = as_deferred(result)
    if d is not None:
        d.addErrback(on_failure)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _failed(failure: Failure, host: HandlerHost) -> None:
    exc = failure.value
    if isinstance(exc, Exception):
        host._handler_error(exc)
    else:
        # Never None: Twisted types Failure.value as Optional, but a Failure
        # is only ever built around an exception.
        host._handler_fatal(exc)  # type: ignore[arg-type]


def _next(_: object, host: HandlerHost, serial: Serial) -> None:
    serial.busy = False
    while serial.queue and not serial.busy:
        method, args = serial.queue.popleft()
        _run(host, method, args)
    if serial.paused and len(serial.queue) <= MAX_QUEUED // 2:
        serial.paused = False
        host._resume_reading()


_log = Logger(namespace="ratchetpy")


class HandlerHostBase:
    """
    ``HandlerHost`` for a protocol that carries one connection: the error
    policy of the module docstring, written once. The host says how to
    reach its component, connection and reactor, and how it closes a
    connection whose handler crashed (``_handler_close_text`` names it in the
    log, e.g. "closing WebSocket #{rid} with 1011").
    """

    _serial: Serial | None = None
    _handler_close_text = "closing connection #{rid}"
    transport: Any

    def _handler_parts(self) -> tuple[Any, Any, Any]:
        """The component, the connection it sees, and the reactor."""
        raise NotImplementedError

    def _handler_close(self) -> None:
        """Close the connection after a crash (1011, or an abort)."""
        raise NotImplementedError

    def _handler_error(self, exc: Exception) -> None:
        component, conn, _ = self._handler_parts()
        try:
            result = component.on_error(conn, exc)
        except BaseException as crash:  # noqa: BLE001 - logged, then closed
            self._on_error_failed(Failure(crash), exc)
            return
        if result is not None:
            settle(result, lambda failure: self._on_error_failed(failure, exc))

    def _on_error_failed(self, failure: Failure, exc: Exception) -> None:
        component, conn, reactor = self._handler_parts()
        _log.failure(
            "on_error of {component!r} raised while handling {error!r}; "
            + self._handler_close_text,
            failure,
            component=component,
            error=exc,
            rid=getattr(conn, "resource_id", None),
        )
        self._handler_close()
        if stops_process(failure.value):
            stop_reactor(reactor)

    def _handler_fatal(self, exc: BaseException) -> None:
        component, conn, reactor = self._handler_parts()
        stop = stops_process(exc)
        _log.failure(
            "A handler of {component!r} raised {kind}; "
            + self._handler_close_text
            + ("; stopping the server, as exit() in a PHP handler would" if stop else ""),
            Failure(exc),
            component=component,
            kind=type(exc).__name__,
            rid=getattr(conn, "resource_id", None),
        )
        self._handler_close()
        if stop:
            stop_reactor(reactor)

    def _pause_reading(self) -> None:
        if self.transport is not None:
            self.transport.pauseProducing()

    def _resume_reading(self) -> None:
        if self.transport is not None:
            self.transport.resumeProducing()
