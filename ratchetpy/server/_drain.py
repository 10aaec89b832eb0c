"""
Closing a set of open connections for a stop, with a deadline that holds.

A graceful stop asks every connection to close (a WebSocket gets 1001),
waits up to ``timeout`` seconds for them, aborts the ones left, and then
waits at most ``ABORT_GRACE`` seconds more for the aborts to be reported.
After that it finishes whatever happened: a component that raises in
``on_close``, a layer that loses track of a connection, a peer that never
answers, a half-open socket. A stop must never hang a process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

__all__ = ["OpenSet", "close_all", "ABORT_GRACE"]

ABORT_GRACE = 1.0
"""Seconds to wait, after aborting, for the aborted connections to be reported lost."""

_log = Logger(namespace="ratchetpy.server")

T = TypeVar("T")


class OpenSet(Generic[T]):
    """Open connections, and Deferreds waiting for none to be left."""

    __slots__ = ("_members", "_waiters")

    def __init__(self) -> None:
        self._members: set[T] = set()
        self._waiters: list[Deferred[None]] = []

    def add(self, member: T) -> None:
        self._members.add(member)

    def discard(self, member: T) -> None:
        """Forget ``member``; fires the waiters if it was the last one."""
        self._members.discard(member)
        if not self._members and self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def clear(self) -> None:
        """Forget every member (a stop that gave up waiting), firing the waiters."""
        for member in list(self._members):
            self.discard(member)

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._members))

    def __contains__(self, member: object) -> bool:
        return member in self._members

    def wait_empty(self) -> Deferred[None]:
        """Fires once no member is left (at once if none is)."""
        if not self._members:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        return waiter


def close_all(
    members: OpenSet[T],
    reactor: Any,
    close: Callable[[T], object],
    abort: Callable[[T], object],
    timeout: float | None,
    what: str = "connection(s)",
) -> Deferred[int]:
    """
    Ask every member to ``close``, then ``abort`` those left after
    ``timeout`` seconds (``None``: wait as long as it takes); fires with how
    many had to be aborted, at the latest ``timeout + ABORT_GRACE`` seconds
    from now.
    """
    if not len(members):
        return succeed(0)
    for member in members:
        _guarded(close, member, "close")
    done = members.wait_empty()
    if timeout is None or not len(members) or reactor is None:
        return done.addCallback(lambda _: 0)
    aborted = [0]
    calls: list[Any] = []

    def abort_left() -> None:
        left = list(members)
        aborted[0] = len(left)
        if not left:
            return
        _log.warn(
            "{count} {what} did not finish closing within {timeout} s; dropping them",
            count=len(left),
            what=what,
            timeout=timeout,
        )
        for member in left:
            _guarded(abort, member, "abort")
        calls.append(reactor.callLater(ABORT_GRACE, give_up))

    def give_up() -> None:
        left = len(members)
        if left:
            # Only a broken layer gets here: the transport was aborted but its
            # loss never reached us. Finish the stop regardless.
            _log.error(
                "{count} {what} still not reported closed {grace} s after being "
                "dropped; finishing the stop without them",
                count=left,
                what=what,
                grace=ABORT_GRACE,
            )
            members.clear()

    calls.append(reactor.callLater(timeout, abort_left))

    def cancel(result: object) -> int:
        for call in calls:
            if call.active():
                call.cancel()
        return aborted[0]

    return done.addCallback(cancel)


def _guarded(action: Callable[[T], object], member: T, name: str) -> None:
    try:
        action(member)
    except Exception:  # noqa: BLE001 - logged; a stop must reach every member
        _log.failure("Could not {action} {member!r} during a stop", action=name, member=member)
