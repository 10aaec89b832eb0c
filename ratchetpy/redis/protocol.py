# -*- test-case-name: tests.redis.test_protocol -*-
"""
``RedisProtocol``: one connection to Redis, speaking RESP2 through hiredis.

Commands are encoded by ``hiredis.pack_command`` and replies parsed by a
``hiredis.Reader``. Redis answers in order, so each command's Deferred
waits in a FIFO and the next reply fires the oldest one:

- a normal reply fires it with the value (``bytes`` for bulk and status
  replies, ``int``, ``None``, nested ``list``);
- an error reply fails that command only, with ``RedisReplyError``
  (an error inside an array, e.g. from EXEC, stays in the list as a
  ``RedisReplyError`` instance);
- bytes that are not RESP fail every waiting command with
  ``RedisProtocolError`` and abort the connection (its owner reconnects);
- no reply within the command's timeout fails every waiting command with
  ``RedisTimeout`` and aborts the connection: a half-open socket or a
  paused server would otherwise look healthy forever.

On a pub/sub connection (``pubsub = True``) messages
(``message``/``pmessage``/``smessage``) go to ``on_push``, and subscribe
commands expect one acknowledgement per channel (``subscribe_command``).
An acknowledgement no command waits for (Redis Cluster unsubscribes
shard channels by itself when their slot moves) also goes to ``on_push``.

One timer serves the whole FIFO: only the oldest command's deadline can
expire first, since nothing behind it can be answered before it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import (
    RedisError,
    RedisProtocolError,
    RedisReplyError,
    RedisTimeout,
    RedisUnavailable,
)

__all__ = ["RedisProtocol", "PUSH_MESSAGES", "SUBSCRIBE_ACKS", "Arg"]

_log = Logger(namespace="ratchetpy.redis")

Arg = str | bytes | int | float | memoryview
"""What a command argument may be: ``str`` is sent as UTF-8."""

PUSH_MESSAGES = frozenset((b"message", b"pmessage", b"smessage"))
SUBSCRIBE_ACKS = frozenset(
    (b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe")
)

_NOT_ENOUGH_DATA = object()


def _pack(args: tuple[Arg, ...]) -> bytes:
    if not args:
        # Redis answers nothing at all to an empty command: it would only time out
        raise ValueError("a Redis command needs at least its name")
    try:
        # hiredis's stub types the argument as a 1-tuple; any length is accepted
        packed: bytes = hiredis.pack_command(args)  # type: ignore[arg-type]
    except TypeError:
        kinds = ", ".join(type(a).__name__ for a in args)
        raise TypeError(
            f"Redis command arguments must be str, bytes, int, float or memoryview, not ({kinds})"
        ) from None
    return packed


class _Pending:
    """A command waiting for its reply (or, for a subscribe, its ``remaining`` acks)."""

    __slots__ = ("deferred", "deadline", "ack", "remaining", "acks")

    def __init__(self, deadline: float, ack: bytes | None = None, remaining: int = 1) -> None:
        self.deferred: defer.Deferred[Any] = defer.Deferred()
        self.deadline = deadline
        self.ack = ack
        self.remaining = remaining
        self.acks: list[Any] = []


class RedisProtocol(Protocol):
    """
    One RESP2 connection; see the module docs for how replies are matched.

    Args:
        clock: the reactor, for command timeouts.
        timeout: default seconds a command may wait for its reply.
        address: where the connection goes, password hidden, for messages.
        on_connected: called with the protocol once TCP (and TLS) is up.
        on_lost: called with the protocol and the reason when it is gone.
        on_push: called with each pub/sub message (a list) when ``pubsub`` is set.
        on_timeout: called once when a command times out (for counting).
    """

    pubsub = False
    """Set on a pub/sub connection: replies starting with message/... are pushes."""

    def __init__(
        self,
        clock: IReactorTime,
        timeout: float,
        address: str = "Redis",
        *,
        on_connected: Callable[[RedisProtocol], object] | None = None,
        on_lost: Callable[[RedisProtocol, Failure], object] | None = None,
        on_push: Callable[[list[Any]], object] | None = None,
        on_timeout: Callable[[], object] | None = None,
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        self.address = address
        self.on_connected = on_connected
        self.on_lost = on_lost
        self.on_push = on_push
        self.on_timeout = on_timeout
        self._reader = hiredis.Reader(replyError=RedisReplyError, notEnoughData=_NOT_ENOUGH_DATA)
        self._queue: deque[_Pending] = deque()
        self._timer: IDelayedCall | None = None
        self._broken: RedisError | None = None
        self.open = False

    @property
    def broken(self) -> RedisError | None:
        """Why the connection was given up (timeout, bad bytes, loss); None while fine."""
        return self._broken

    @property
    def usable(self) -> bool:
        """Connected and not given up. An aborted connection is unusable at
        once, before the reactor gets round to reporting it lost."""
        return self.open and self._broken is None

    @property
    def pending(self) -> int:
        """Commands waiting for their replies."""
        return len(self._queue)

    # -- sending --------------------------------------------------------------

    def command(self, *args: Arg, timeout: float | None = None) -> defer.Deferred[Any]:
        """
        Send one command; its Deferred fires with the reply.

        Raises (at once, nothing sent): ``ValueError`` for no arguments,
        ``TypeError`` for an argument that is not str, bytes, int, float or
        memoryview (``None`` and ``bool`` included).

        Fails with ``RedisReplyError`` (an error reply), ``RedisTimeout``,
        ``RedisProtocolError`` or ``RedisUnavailable`` (the connection is
        closed or was lost before the reply).
        """
        return self._send(_pack(args), timeout)

    def subscribe_command(
        self, command: bytes, channels: Sequence[bytes], timeout: float | None = None
    ) -> defer.Deferred[list[Any]]:
        """
        Send ``SUBSCRIBE``-like ``command`` (also UNSUBSCRIBE, SSUBSCRIBE,
        PSUBSCRIBE and their opposites) for ``channels`` (at least one); the
        Deferred fires with the list of per-channel acknowledgements.
        """
        if not channels:
            raise ValueError("subscribe_command needs at least one channel")
        self.pubsub = True
        return self._send(
            _pack((command, *channels)), timeout, ack=command.lower(), remaining=len(channels)
        )

    def _send(
        self, packed: bytes, timeout: float | None, ack: bytes | None = None, remaining: int = 1
    ) -> defer.Deferred[Any]:
        if not self.open or self._broken is not None:
            return defer.fail(self._broken or RedisUnavailable(f"not connected to {self.address}"))
        pending = _Pending(
            self.clock.seconds() + (self.timeout if timeout is None else timeout), ack, remaining
        )
        self._queue.append(pending)
        if self._timer is None:
            self._arm(pending.deadline)
        assert self.transport is not None
        self.transport.write(packed)
        return pending.deferred

    def abort(self, error: RedisError) -> None:
        """Fail every waiting command with ``error`` and drop the connection now."""
        if self._broken is None:
            self._broken = error
        self._fail_all(error)
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    # -- receiving ------------------------------------------------------------

    def connectionMade(self) -> None:
        self.open = True
        set_keepalive = getattr(self.transport, "setTcpKeepAlive", None)
        if set_keepalive is not None:
            try:
                set_keepalive(1)  # a second line of defence; PINGs are the first
            except OSError:
                pass
        if self.on_connected is not None:
            self.on_connected(self)

    def dataReceived(self, data: bytes) -> None:
        if self._broken is not None:
            return
        self._reader.feed(data)
        while self._broken is None:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                _log.error(
                    "{address} sent bytes that are not RESP ({problem}); is this port a Redis server? "
                    "Dropping the connection",
                    address=self.address,
                    problem=str(exc),
                )
                self.abort(
                    RedisProtocolError(f"{self.address} sent bytes that are not RESP ({exc})")
                )
                return
            if reply is _NOT_ENOUGH_DATA:
                return
            self._reply(reply)

    def _reply(self, reply: Any) -> None:
        if self.pubsub and type(reply) is list and reply and type(reply[0]) is bytes:
            kind = reply[0]
            if kind in PUSH_MESSAGES:
                self._push(reply)
                return
            if kind in SUBSCRIBE_ACKS:
                head = self._queue[0] if self._queue else None
                if head is None or head.ack != kind:
                    self._push(reply)
                    return
                head.acks.append(reply)
                head.remaining -= 1
                if head.remaining:
                    return
                reply = head.acks
        if not self._queue:
            self.abort(
                RedisProtocolError(f"{self.address} sent a reply no command was waiting for")
            )
            return
        head = self._queue.popleft()
        if not self._queue:
            self._disarm()
        if isinstance(reply, RedisReplyError):
            head.deferred.errback(reply)
        else:
            head.deferred.callback(reply)

    def _push(self, message: list[Any]) -> None:
        if self.on_push is None:
            return
        try:
            self.on_push(message)
        except Exception:  # noqa: BLE001 - one bad handler must not break the connection
            _log.failure("Redis pub/sub message handler failed")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.open = False
        self._disarm()
        error = self._broken or RedisUnavailable(
            f"connection to {self.address} lost ({reason.getErrorMessage()})"
        )
        self._broken = error
        self._fail_all(error)
        if self.on_lost is not None:
            self.on_lost(self, reason)

    # -- timeouts -------------------------------------------------------------

    def _arm(self, deadline: float) -> None:
        self._timer = self.clock.callLater(
            max(0.0, deadline - self.clock.seconds()), self._check_deadline
        )

    def _disarm(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._queue:
            return
        head = self._queue[0]
        if head.deadline > self.clock.seconds():
            self._arm(head.deadline)
            return
        # Debug only: the link logs the outage this starts, once, at warn; a
        # warn here would repeat on every reconnection attempt to a paused Redis.
        _log.debug(
            "{address} sent no reply in time ({count} command(s) waiting); dropping the connection",
            address=self.address,
            count=len(self._queue),
        )
        if self.on_timeout is not None:
            self.on_timeout()
        self.abort(RedisTimeout(f"{self.address} sent no reply in time; connection dropped"))

    def _fail_all(self, error: RedisError) -> None:
        self._disarm()
        waiting, self._queue = self._queue, deque()
        for pending in waiting:
            pending.deferred.errback(Failure(error))
