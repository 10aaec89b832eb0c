# -*- test-case-name: tests.hub.test_redis_history -*-
"""
History in Redis for ``RedisBackplane``: channel streams stored and
published in one step, read back by position, and the node's own gaps
filled after its pub/sub connection was lost.

Keys (``P`` is the backplane's prefix; the ``{channel}`` hash tag puts
them and the live channel ``P ch:{channel}`` in one cluster slot):

===============================  ==============================================
``P`` ``stream:{<channel>}``     a Redis stream, one entry per publication, its
                                 id ``<offset>-0``; fields ``d`` (payload),
                                 ``o`` (opcode), ``x`` (excluded ids, JSON,
                                 when any). At most ``size`` entries; expires
                                 ``ttl`` after the latest publication
``P`` ``meta:{<channel>}``       hash: ``e`` the epoch, ``s`` the top offset;
                                 expires ``meta_ttl`` after the latest
                                 publication
===============================  ==============================================

**Publishing** (``_PUBLISH``, one Lua script, so atomic): the epoch is
read, or created (a random string the node proposes) together with an
empty stream when the meta hash is gone, so a Redis that lost its data
starts a new epoch and every older position reads as ``reset``; HINCRBY
gives the offset; XADD stores the entry with that id (MAXLEN trims to
``size`` exactly, as the in-process store does); PEXPIRE both keys; then
PUBLISH (or SPUBLISH) the hub envelope, whose header the script completes
with ``"off"`` and ``"ep"``. Redis runs one script at a time, so offsets
are handed out, stored and published in the same order.

**Delivering**: every node subscribed to the channel, the publishing one
included, hears the envelope and hands it to its ``Follower`` for the
channel (started from the stream's position when the node's first member
joined), which delivers in offset order, exactly once. When the
subscriber connection is lost the follower holds live publications back;
once it is subscribed again it reads the stream after the last offset it
delivered, delivers the gap, then what it held. If the epoch changed or
the gap was trimmed or expired, nothing of the gap can be delivered: the
hub is told (``Hub.history_reset``), which tells positioned members and
``on_history_reset`` listeners. (A node without the channel's history
policy follows from the first publication it hears.)

**Redis down**: a publish cannot be stored; it reaches this node's
members without a position (``publish_with_position`` fires ``None``).
A publish that timed out may still have run: it is neither delivered
locally nor retried (it arrives through Redis if it ran).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import RedisTimeout
from ..redis.scripts import Script
from ..websocket.broadcast import PreparedMessage, prepare
from .envelope import Envelope, EnvelopeError
from .history import (
    HistoryPolicy,
    HistoryResult,
    Publication,
    StreamPosition,
    new_epoch,
)
from .recovery import Follower

if TYPE_CHECKING:
    from .redis_backplane import RedisBackplane

__all__ = ["RedisHistory"]

_log = Logger(namespace="ratchetpy.hub.redis")

# KEYS: stream, meta, live channel. ARGV: header prefix (a JSON object
# without its closing brace), payload, opcode, excluded ids (JSON or ''),
# size, ttl ms, meta ttl ms, proposed epoch, PUBLISH or SPUBLISH.
_PUBLISH = Script(
    """
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[8]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 's', 1)
local id = offset .. '-0'
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[5], id, 'd', ARGV[2], 'o', ARGV[3], 'x', ARGV[4])
else
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[5], id, 'd', ARGV[2], 'o', ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
local message = ARGV[1] .. ',"off":' .. offset .. ',"ep":"' .. epoch .. '"}\\n' .. ARGV[2]
local receivers = redis.call(ARGV[9], KEYS[3], message)
return {offset, epoch, receivers}
"""
)

# KEYS: stream, meta. ARGV: since offset ('' for none), since epoch, limit
# (-1: all), proposed epoch, meta ttl ms. Returns {epoch, top, entries,
# reset (0/1), newest first (0/1)}. Reading creates the epoch, so a
# position handed out before the first publication stays valid.
_READ = Script(
    """
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 's', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
local top = tonumber(redis.call('HGET', KEYS[2], 's') or '0')
local limit = tonumber(ARGV[3])
if ARGV[1] == '' then
  if limit == 0 then return {epoch, top, {}, 0, 0} end
  if limit < 0 then return {epoch, top, redis.call('XRANGE', KEYS[1], '-', '+'), 0, 0} end
  return {epoch, top, redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', limit), 0, 1}
end
local since = tonumber(ARGV[1])
if ARGV[2] ~= epoch or since > top then return {epoch, top, {}, 1, 0} end
if since == top then return {epoch, top, {}, 0, 0} end
local first = (since + 1) .. '-0'
local entries
if limit < 0 then
  entries = redis.call('XRANGE', KEYS[1], first, '+')
else
  entries = redis.call('XRANGE', KEYS[1], first, '+', 'COUNT', math.max(limit, 1))
end
if #entries == 0 or entries[1][1] ~= first then return {epoch, top, {}, 1, 0} end
if limit == 0 then entries = {} end
return {epoch, top, entries, 0, 0}
"""
)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisHistory:
    """The history half of a ``RedisBackplane`` (see the module docs)."""

    def __init__(self, backplane: RedisBackplane) -> None:
        self.backplane = backplane
        self._followers: dict[str, Follower] = {}
        self._delivered_now = 0

    # -- publishing ------------------------------------------------------------

    def publish_stored(
        self,
        channel: str,
        prepared: PreparedMessage,
        exclude: frozenset[str],
        count: bool,
        policy: HistoryPolicy,
    ) -> defer.Deferred[tuple[int, StreamPosition | None]]:
        bp = self.backplane
        names = bp.names
        header: dict[str, Any] = {"k": "pub", "n": bp.node, "c": channel, "o": prepared.opcode}
        if exclude:
            header["x"] = sorted(exclude)
        request = None
        if count:
            rid, request = bp.answers.open(sum)
            header["r"] = rid
        prefix = json.dumps(header, separators=(",", ":"))[:-1]
        excluded = json.dumps(sorted(exclude), separators=(",", ":")) if exclude else ""
        command = "SPUBLISH" if bp.sharded else "PUBLISH"
        bp.counters["published"] += 1
        sent = bp.client.evalsha_or_eval(
            _PUBLISH,
            [names.stream(channel), names.meta(channel), names.channel(channel)],
            [
                prefix, prepared.payload, prepared.opcode, excluded, policy.size,
                _ms(policy.ttl), _ms(policy.meta_ttl), new_epoch(), command,
            ],
        )  # fmt: skip

        def stored(reply: list[Any]) -> Any:
            offset, epoch, receivers = reply
            position = StreamPosition(epoch.decode(), int(offset))
            bp.counters["stored"] += 1
            if request is None:
                return (0, position)
            request.expected = int(receivers)
            request.check()
            return request.deferred.addCallback(lambda n: (n, position))

        def failed(failure: Failure) -> tuple[int, StreamPosition | None]:
            if request is not None:
                request.settle()
            bp._failed(f"storing a publication on {channel!r}", None)(failure)
            if failure.check(RedisTimeout):
                return (0, None)  # it may have run: then it arrives through Redis
            publication = Publication(channel, prepared, exclude=exclude)
            return (bp.hub.deliver_channel(channel, prepared, exclude, publication), None)

        return sent.addCallbacks(stored, failed)

    # -- reading ---------------------------------------------------------------

    def read(
        self,
        channel: str,
        since: StreamPosition | None,
        limit: int | None,
        policy: HistoryPolicy,
    ) -> defer.Deferred[HistoryResult]:
        bp = self.backplane
        names = bp.names
        args = [
            "" if since is None else since.offset,
            "" if since is None else since.epoch,
            -1 if limit is None else limit,
            new_epoch(),
            _ms(policy.meta_ttl),
        ]
        d = bp.client.evalsha_or_eval(_READ, [names.stream(channel), names.meta(channel)], args)

        def counted(failure: Failure) -> Failure:
            bp.counters["failures"] += 1
            return failure

        return d.addCallbacks(self._result, counted, callbackArgs=(channel,))

    def _result(self, reply: list[Any], channel: str) -> HistoryResult:
        epoch, top, entries, reset, newest_first = reply
        epoch = epoch.decode()
        publications = []
        for entry_id, fields in reversed(entries) if newest_first else entries:
            publication = self._publication(channel, epoch, entry_id, fields)
            if publication is not None:
                publications.append(publication)
        return HistoryResult(tuple(publications), epoch, int(top), bool(reset))

    def _publication(
        self, channel: str, epoch: str, entry_id: bytes, fields: list[bytes]
    ) -> Publication | None:
        values = dict(zip(fields[::2], fields[1::2], strict=False))
        try:
            offset = int(entry_id.split(b"-", 1)[0])
            payload = values[b"d"]
            message: str | bytes = payload.decode("utf-8") if values.get(b"o") == b"1" else payload
            exclude = json.loads(values[b"x"]) if b"x" in values else []
        except (KeyError, ValueError):
            self.backplane.counters["malformed"] += 1
            return None
        return Publication(channel, prepare(message), offset, epoch, frozenset(map(str, exclude)))

    # -- delivering ------------------------------------------------------------

    def received(self, envelope: Envelope) -> None:
        """A publication with its position, heard on a channel's Redis channel (this node's too)."""
        bp = self.backplane
        header = envelope.header
        channel = str(header.get("c"))
        try:
            prepared = prepare(envelope.message())
        except EnvelopeError:
            bp.counters["malformed"] += 1
            return
        bp.counters["received"] += 1
        publication = Publication(
            channel, prepared, int(header["off"]), str(header["ep"]), envelope.exclude
        )
        follower = self._followers.get(channel)
        if follower is None:
            follower = self._followers[channel] = self._follower(channel)
        self._delivered_now = 0
        follower.offer(publication)
        delivered = self._delivered_now
        rid = header.get("r")
        if envelope.node != bp.node:
            bp.counters["delivered_remote"] += delivered
            bp._reply(envelope, delivered)
        elif rid is not None:
            request = bp.answers.get(str(rid))
            if request is not None:  # this node's own answer, without a trip through Redis
                request.answers.append(delivered)
                request.check()

    def _follower(self, channel: str) -> Follower:
        bp = self.backplane
        policy = bp.hub.history_policy(channel) or HistoryPolicy()

        def read(since: StreamPosition | None) -> defer.Deferred[HistoryResult]:
            d = self.read(channel, since, None if since is not None else 0, policy)

            def count(result: HistoryResult) -> HistoryResult:
                if result.publications:
                    bp.counters["recovered"] += len(result.publications)
                    _log.info(
                        "Channel {channel!r}: read {count} publication(s) this node missed "
                        "back from history (after offset {offset})",
                        channel=channel,
                        count=len(result.publications),
                        offset=since.offset if since is not None else 0,
                    )
                return result

            return d.addCallback(count)

        def deliver(publication: Publication) -> None:
            self._delivered_now += bp.hub.deliver_channel(
                channel, publication.prepared, publication.exclude, publication
            )

        def reset(position: StreamPosition) -> None:
            bp.counters["resets"] += 1
            bp.hub.history_reset(channel, position)

        return Follower(read, deliver, reset, bp.reactor.callLater)

    def subscribed(self, channel: str) -> None:
        """
        This node now has a member in ``channel``: on a channel with
        history, follow its stream from its current position at once, so
        a gap is filled even before the first publication is heard.
        """
        if channel in self._followers or self.backplane.hub.history_policy(channel) is None:
            return
        follower = self._followers[channel] = self._follower(channel)
        follower.recover()

    def disconnected(self) -> None:
        """The subscriber connection is lost: hold live publications until it is back."""
        for follower in self._followers.values():
            follower.hold()

    def reconnected(self) -> None:
        """Subscribed again: fill every channel's gap from its stream."""
        bp = self.backplane
        for channel, follower in list(self._followers.items()):
            if bp.subscriber.interest(bp.names.channel(channel), sharded=bp.sharded):
                follower.recover()
            else:
                self.forget(channel)

    def forget(self, channel: str) -> None:
        """No local member is left in ``channel``: stop following it."""
        follower = self._followers.pop(channel, None)
        if follower is not None:
            follower.close()

    def stop(self) -> None:
        for channel in list(self._followers):
            self.forget(channel)
