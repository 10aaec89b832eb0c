# -*- test-case-name: tests.hub.test_recovery -*-
"""
Recovery: publications of a stream delivered in order, exactly once,
with gaps filled from history.

``Follower`` follows one channel's stream for one receiver. Publications
are ``offer``-ed as they arrive; the next one in sequence is delivered,
one already delivered is dropped, and one after a gap (or in another
epoch) starts a *recovery*: live publications are held back while the
history since the last delivered position is read, the missed ones are
delivered, then the held ones that are still new. When the history cannot
fill the gap (the epoch changed, the publications were trimmed or
expired) the receiver is told ``reset`` instead, and follows on from the
stream's current position. The Redis backplane keeps one follower per
channel for the node (refilling what its pub/sub connection missed while
reconnecting); the hub keeps one per *positioned member*.

A **positioned member** (``Hub.join_positioned``) is a connection that
receives a channel's publications through a ``PositionFormat`` that puts
each one's position in the message, so it can come back later and
recover: ``JsonPositions`` is the format the built-in chat speaks, and
docs/hub.md ("History and recovery") documents it for clients.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..interfaces import ConnectionInterface
from ..websocket.broadcast import deliver
from .history import HistoryResult, Publication, StreamPosition

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["Follower", "PositionFormat", "JsonPositions", "PositionedMembers", "MAX_HELD"]

_log = Logger(namespace="ratchetpy.hub.history")

MAX_HELD = 10_000
"""Live publications a follower holds back during a recovery; beyond it they are
dropped and read from history once the recovery is done."""

_RETRY_FIRST, _RETRY_MAX = 0.5, 10.0

Reader = Callable[[StreamPosition | None], "defer.Deferred[HistoryResult]"]


class Follower:
    """
    One receiver's place in one channel's stream (see the module docs).

    Args:
        read: ``read(since)`` reads the history after ``since`` (``None``:
            only the current position); a Deferred of ``HistoryResult``.
        deliver: called with each publication to deliver, in order.
        reset: called with the stream's position when a gap cannot be
            filled (unless a ``recover`` caller announces it itself).
        call_later: ``call_later(seconds, f)`` to retry a failed read
            (waiting 0.5 s, doubling up to 10 s); ``None``: a failed read
            ends the recovery and what was held is delivered as it is.
        position: the last position the receiver has, if any.
    """

    __slots__ = (
        "position", "recovering", "held", "overflowed", "closed", "_read", "_deliver",
        "_reset", "_call_later", "_reading", "_waiting", "_retry",
    )  # fmt: skip

    def __init__(
        self,
        read: Reader,
        deliver: Callable[[Publication], object],
        reset: Callable[[StreamPosition], object],
        call_later: Callable[[float, Callable[[], object]], Any] | None = None,
        position: StreamPosition | None = None,
    ) -> None:
        self.position = position
        self.recovering = False
        self.held: list[Publication] = []
        self.overflowed = False
        self.closed = False
        self._read = read
        self._deliver = deliver
        self._reset = reset
        self._call_later = call_later
        self._reading = False
        self._waiting: list[_Waiter] = []
        self._retry = _RETRY_FIRST

    def offer(self, publication: Publication) -> None:
        """A live publication: delivered, dropped as a duplicate, or held during a recovery."""
        if self.closed:
            return
        if publication.offset is None or publication.epoch is None:
            self._deliver(publication)  # not stored: nothing to order it by
            return
        if self.recovering:
            if len(self.held) < MAX_HELD:
                self.held.append(publication)
            else:
                self.overflowed = True  # read from history once the recovery is done
            return
        position = self.position
        if position is None or (
            publication.epoch == position.epoch and publication.offset == position.offset + 1
        ):
            self.position = publication.position
            self._deliver(publication)
        elif publication.epoch == position.epoch and publication.offset <= position.offset:
            return  # delivered already (recovered, then heard live)
        else:
            self.held.append(publication)
            self.recover()

    def hold(self) -> None:
        """Hold live publications back until ``recover()`` (the connection they come on was lost)."""
        if not self.closed:
            self.recovering = True

    def close(self) -> None:
        """Stop: nothing more is delivered, held publications are dropped."""
        self.closed = True
        self.held = []

    def recover(
        self, announce: Callable[[HistoryResult], object] | None = None
    ) -> defer.Deferred[HistoryResult]:
        """
        Read the history since the current position and deliver what is
        missing, holding live publications back meanwhile.

        ``announce(result)`` is called after the missed publications and
        before the held ones (a reset ``result`` is then announced there
        instead of through ``reset``). With no position, only the current
        position is read and every held publication is delivered: they
        all arrived after this receiver started. The Deferred fires with
        the result at the same moment (never, if the follower is closed
        first).
        """
        done: defer.Deferred[HistoryResult] = defer.Deferred()
        self._waiting.append(_Waiter(announce, done))
        self.recovering = True
        if not self._reading and not self.closed:
            self._start()
        return done

    def _start(self) -> None:
        self._reading = True
        waiters, self._waiting = self._waiting, []
        since = self.position
        self._read(since).addCallbacks(
            self._got, self._failed, callbackArgs=(since, waiters), errbackArgs=(waiters,)
        )

    def _got(self, result: HistoryResult, since: StreamPosition | None, waiters: list[_Waiter]) -> None:
        self._reading = False
        if self.closed:
            return
        self._retry = _RETRY_FIRST
        announced = any(w.announce is not None for w in waiters)
        if result.reset:
            self.position = result.position
            if not announced:
                self._reset(result.position)
        elif since is None:
            self.position = result.position
        else:
            last = since.offset
            self.position = since
            for publication in result.publications:
                if publication.offset is not None and publication.offset > last:
                    last = publication.offset
                    self.position = publication.position
                    self._deliver(publication)
        for waiter in waiters:
            if waiter.announce is not None:
                waiter.announce(result)
            waiter.done.callback(result)
        # After a reset, as after a start from "now": what was heard live
        # in the new epoch is delivered, even what the read counted.
        self._flush(starting=since is None or result.reset)

    def _flush(self, starting: bool) -> None:
        held, self.held = self.held, []
        overflowed, self.overflowed = self.overflowed, False
        self.recovering = False
        position = self.position
        if starting and held and position is not None and held[0].epoch == position.epoch:
            # Everything held arrived after the start (or the reset): new to
            # this receiver, even what the (later) read already counted.
            first = held[0].offset or 0
            self.position = StreamPosition(position.epoch, min(position.offset, first - 1))
        for publication in held:
            self.offer(publication)
        if self._waiting or (overflowed and not self.recovering):
            self.recovering = True
            if not self._reading:
                self._start()

    def _failed(self, failure: Failure, waiters: list[_Waiter]) -> None:
        self._reading = False
        if self.closed:
            return
        _log.warn(
            "Reading the history to fill a gap failed ({error}); {what}",
            error=failure.getErrorMessage(),
            what="retrying" if self._call_later else "delivering on without it",
        )
        self._waiting[:0] = waiters
        if self._call_later is None:
            waiters, self._waiting = self._waiting, []
            for waiter in waiters:
                waiter.done.errback(failure)
                waiter.done.addErrback(lambda _: None)  # reported above, once
            self.position = None  # whatever comes next is delivered as it comes
            self._flush(starting=False)
            return
        delay, self._retry = self._retry, min(self._retry * 2, _RETRY_MAX)
        self._call_later(delay, self._retry_read)

    def _retry_read(self) -> None:
        if not self.closed and not self._reading and self.recovering:
            self._start()


class _Waiter:
    __slots__ = ("announce", "done")

    def __init__(
        self, announce: Callable[[HistoryResult], object] | None, done: defer.Deferred[HistoryResult]
    ) -> None:
        self.announce = announce
        self.done = done


class PositionFormat(Protocol):
    """
    How a positioned member's messages look (``JsonPositions`` is the
    built-in chat's). Each method returns the message to send: ``str``
    goes as text, ``bytes`` as binary.
    """

    def publication(self, publication: Publication) -> str | bytes:
        """A publication (its ``offset``/``epoch`` are ``None`` if it was not stored)."""

    def reset(self, channel: str, position: StreamPosition) -> str | bytes:
        """Publications were lost for good; the stream goes on from ``position``."""

    def recovered(self, channel: str, result: HistoryResult) -> str | bytes | None:
        """The join's recovery is done (``result.reset``: it could not be): sent after the missed publications."""


class JsonPositions:
    """
    The positioned protocol's JSON messages (documented in docs/hub.md):

    - ``{"type": "message", "epoch": E, "offset": N, "data": TEXT}``, or
      ``"base64": B64`` instead of ``"data"`` for a binary message; no
      ``epoch``/``offset`` when it was not stored;
    - ``{"type": "recovered", "epoch": E, "offset": N, "missed": COUNT}``;
    - ``{"type": "reset", "epoch": E, "offset": N}``.
    """

    def publication(self, publication: Publication) -> str:
        out: dict[str, Any] = {"type": "message"}
        if publication.offset is not None:
            out["epoch"], out["offset"] = publication.epoch, publication.offset
        message = publication.message
        if isinstance(message, str):
            out["data"] = message
        else:
            out["base64"] = base64.b64encode(message).decode("ascii")
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False)

    def reset(self, channel: str, position: StreamPosition) -> str:
        return json.dumps({"type": "reset", "epoch": position.epoch, "offset": position.offset})

    def recovered(self, channel: str, result: HistoryResult) -> str:
        if result.reset:
            return self.reset(channel, result.position)
        return json.dumps(
            {
                "type": "recovered",
                "epoch": result.epoch,
                "offset": result.offset,
                "missed": len(result.publications),
            }
        )


class _Member:
    __slots__ = ("conn", "cid", "format", "previous", "follower", "channel")

    def __init__(
        self, conn: ConnectionInterface, channel: str, fmt: PositionFormat, previous: frozenset[str]
    ) -> None:
        self.conn = conn
        self.cid = str(conn.id)
        self.channel = channel
        self.format = fmt
        self.previous = previous
        self.follower: Follower | None = None

    def excluded(self, publication: Publication) -> bool:
        exclude = publication.exclude
        return bool(exclude) and (self.cid in exclude or not self.previous.isdisjoint(exclude))

    def send(self, publication: Publication) -> None:
        if not self.excluded(publication):
            deliver((self.conn,), publication.rendered(self.format.publication))

    def reset(self, position: StreamPosition) -> None:
        self._send(self.format.reset(self.channel, position))

    def announce(self, result: HistoryResult) -> None:
        # What this member was sent (its own publications were not).
        sent = tuple(p for p in result.publications if not self.excluded(p))
        if len(sent) != len(result.publications):
            result = HistoryResult(sent, result.epoch, result.offset, result.reset)
        self._send(self.format.recovered(self.channel, result))

    def _send(self, message: str | bytes | None) -> None:
        if message is not None and not getattr(self.conn, "closing", False):
            self.conn.send(message)


class PositionedMembers:
    """The hub's positioned members, by channel (see ``Hub.join_positioned``)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._channels: dict[str, dict[str, _Member]] = {}

    def members_of(self, channel: str) -> dict[str, _Member] | None:
        return self._channels.get(channel)

    def _call_later(self) -> Callable[[float, Callable[[], object]], Any] | None:
        reactor = getattr(self._hub.backplane, "reactor", None)
        return getattr(reactor, "callLater", None)

    def add(
        self,
        conn: ConnectionInterface,
        channel: str,
        fmt: PositionFormat,
        since: StreamPosition | None,
        previous: frozenset[str],
    ) -> defer.Deferred[HistoryResult]:
        member = _Member(conn, channel, fmt, previous)
        members = self._channels.setdefault(channel, {})
        old = members.pop(member.cid, None)
        if old is not None and old.follower is not None:
            old.follower.close()
        hub = self._hub

        def read(position: StreamPosition | None) -> defer.Deferred[HistoryResult]:
            return hub.history(channel, since=position, limit=None if position else 0)

        member.follower = Follower(
            read, member.send, member.reset, self._call_later(), position=since
        )
        members[member.cid] = member
        return member.follower.recover(announce=member.announce)

    def discard(self, channel: str, cid: str) -> None:
        members = self._channels.get(channel)
        member = members.pop(cid, None) if members is not None else None
        if member is None:
            return
        if member.follower is not None:
            member.follower.close()
        if not members:
            del self._channels[channel]

    def deliver(self, channel: str, publication: Publication, exclude: frozenset[str]) -> int:
        """Offer ``publication`` to each positioned member of ``channel``; how many it is for."""
        count = 0
        for member in list(self._channels.get(channel, {}).values()):
            if member.follower is None or getattr(member.conn, "closing", False):
                continue
            if member.cid not in exclude:
                count += 1
            member.follower.offer(publication)
        return count

    def reset(self, channel: str, position: StreamPosition) -> None:
        """The stream of ``channel`` lost publications: tell every positioned member."""
        for member in list(self._channels.get(channel, {}).values()):
            follower = member.follower
            if follower is None or follower.recovering:
                continue  # its own recovery will tell
            follower.position = position
            member.reset(position)
