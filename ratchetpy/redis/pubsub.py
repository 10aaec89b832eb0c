# -*- test-case-name: tests.redis.test_pubsub,tests.redis.test_chaos -*-
"""
``Subscriber``: Redis pub/sub on a dedicated connection, kept subscribed
across reconnections.

.. code-block:: python

    subscriber = Subscriber(config, reactor, on_reconnect=fill_gaps)
    subscriber.startService()
    subscriber.subscribe("room:1", on_message)            # SUBSCRIBE room:1
    subscriber.subscribe("room:1", other)                 # no command: 2 local interests
    subscriber.subscribe("room:2", on_message, sharded=True)   # SSUBSCRIBE
    subscriber.unsubscribe("room:1", other)               # no command: 1 left
    subscriber.unsubscribe("room:1", on_message)          # UNSUBSCRIBE room:1

Interest is counted per channel: Redis hears SUBSCRIBE for the first local
callback and UNSUBSCRIBE after the last, so ``PUBSUB NUMSUB`` shows one
subscriber per node however many local listeners there are. Callbacks get
``(channel, message)`` as ``bytes``; for a pattern (``pattern=True``,
PSUBSCRIBE) ``channel`` is the channel the message was published on.

Interest outlives connections. After every reconnection all channels are
subscribed again, ``batch_size`` per command (shard channels also grouped
by cluster slot), before the connection counts as usable; then
``on_reconnect(outage_seconds)`` runs, so its owner can fetch what was
published meanwhile (pub/sub does not keep it). ``on_disconnect(reason)``
runs when a usable connection is lost. A connection that stops answering
is found by the PINGs every ``health_interval`` (``RedisLink``).

``subscribe`` and ``unsubscribe`` never wait on an outage: their Deferreds
fire with True once Redis confirmed, with False when there is no
connection now (the interest is kept, or dropped, all the same, and
reconnection applies it), and fail with ``RedisReplyError`` when Redis
refuses (an ACL that denies the channel); that is logged too.

For Redis Cluster (``ClusterSubscriber`` keeps one ``Subscriber`` per
shard): ``on_refused(channel, error)`` is told of every refused channel,
on subscribing and on subscribing again after a reconnection (a ``MOVED``
reply, which the owner follows, is then logged at debug level only), and
``on_server_unsubscribe(channel)`` of every shard channel Redis
unsubscribed by itself (its slot moved to another shard).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import RedisReplyError, RedisUnavailable
from ._interest import SHARDED_PATTERN, add_callback, channel_name, remove_callback
from .link import RedisLink
from .protocol import RedisProtocol
from .slots import hash_slot
from .url import RedisConfig

__all__ = ["Subscriber", "MessageCallback"]

_log = Logger(namespace="ratchetpy.redis")

MessageCallback = Callable[[bytes, bytes], object]
"""``callback(channel, message)``."""


@dataclass(frozen=True)
class _Kind:
    name: str
    subscribe: bytes
    unsubscribe: bytes
    message: bytes


_CHANNEL = _Kind("channel", b"SUBSCRIBE", b"UNSUBSCRIBE", b"message")
_SHARD = _Kind("shard channel", b"SSUBSCRIBE", b"SUNSUBSCRIBE", b"smessage")
_PATTERN = _Kind("pattern", b"PSUBSCRIBE", b"PUNSUBSCRIBE", b"pmessage")
_KINDS = (_CHANNEL, _SHARD, _PATTERN)
_BY_MESSAGE = {kind.message: kind for kind in _KINDS}


class _Request:
    """One (un)subscribe command in flight; its waiters learn how it ended."""

    __slots__ = ("waiters", "result")

    def __init__(self) -> None:
        self.waiters: list[defer.Deferred[bool]] = []
        self.result: bool | Failure | None = None

    def wait(self) -> defer.Deferred[bool]:
        if isinstance(self.result, Failure):
            return defer.fail(self.result)
        if self.result is not None:
            return defer.succeed(self.result)
        waiter: defer.Deferred[bool] = defer.Deferred()
        self.waiters.append(waiter)
        return waiter

    def settle(self, result: bool | Failure) -> None:
        self.result = result
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)


def _refusal_is_no_failure(failure: Failure) -> bool:
    failure.trap(RedisReplyError)
    return True


class Subscriber(RedisLink):
    """
    Pub/sub on its own connection, with per-channel reference counts.

    Args:
        config: where Redis is (``RedisConfig.from_url``).
        reactor: the reactor.
        on_reconnect: ``f(outage_seconds)``, after every reconnection once
            every channel is subscribed again.
        on_disconnect: ``f(reason)`` when the usable connection is lost.
        batch_size: channels per SUBSCRIBE when subscribing again.
        endpoint, backoff: as for ``RedisLink``.

    Attributes:
        on_refused: ``f(channel, error)`` for each channel Redis refused
            to subscribe (see the module docs).
        on_server_unsubscribe: ``f(channel)`` for each shard channel Redis
            unsubscribed by itself.
    """

    on_refused: Callable[[bytes, RedisReplyError], object] | None = None
    on_server_unsubscribe: Callable[[bytes], object] | None = None
    _moved_logged = False

    role = "pubsub"

    def __init__(
        self,
        config: RedisConfig,
        reactor: Any,
        *,
        on_reconnect: Callable[[float], object] | None = None,
        on_disconnect: Callable[[str], object] | None = None,
        batch_size: int = 500,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, reactor, **kwargs)
        if batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, not {batch_size}")
        self.on_reconnect = on_reconnect
        self.on_disconnect = on_disconnect
        self.batch_size = batch_size
        self._interest: dict[_Kind, dict[bytes, list[MessageCallback]]] = {k: {} for k in _KINDS}
        self._confirmed: dict[_Kind, set[bytes]] = {k: set() for k in _KINDS}
        self._inflight: dict[_Kind, dict[bytes, _Request]] = {k: {} for k in _KINDS}
        # the connection subscribe commands go to: set once it is set up, before
        # the resubscription is sent, so every command after it is in order
        self._live: RedisProtocol | None = None

    # -- public ---------------------------------------------------------------

    def subscribe(
        self,
        channel: str | bytes,
        callback: MessageCallback,
        *,
        sharded: bool = False,
        pattern: bool = False,
    ) -> defer.Deferred[bool]:
        """
        Call ``callback(channel, message)`` for each message on ``channel``
        (SSUBSCRIBE if ``sharded``, PSUBSCRIBE if ``pattern``). Fires with
        True once Redis confirmed, False if not connected now (subscribed
        on reconnection).
        """
        kind = self._kind(sharded, pattern)
        name = channel_name(channel)
        if add_callback(self._interest[kind], name, callback):
            if self._live is None:
                return defer.succeed(False)
            return self._send(kind, self._live, kind.subscribe, [name]).wait()
        if name in self._confirmed[kind]:
            return defer.succeed(True)
        inflight = self._inflight[kind].get(name)
        return inflight.wait() if inflight is not None else defer.succeed(False)

    def unsubscribe(
        self,
        channel: str | bytes,
        callback: MessageCallback,
        *,
        sharded: bool = False,
        pattern: bool = False,
    ) -> defer.Deferred[bool]:
        """
        Remove one ``subscribe`` of ``callback`` to ``channel``. After the
        last one, UNSUBSCRIBE: fires with True once Redis confirmed, False
        if not connected (nothing to undo). With interest left, fires True.

        Raises:
            ValueError: ``callback`` is not subscribed to ``channel``.
        """
        kind = self._kind(sharded, pattern)
        name = channel_name(channel)
        if not remove_callback(self._interest[kind], name, callback, f"{kind.name} {name!r}"):
            return defer.succeed(True)
        subscribed = name in self._confirmed[kind] or name in self._inflight[kind]
        self._confirmed[kind].discard(name)
        if self._live is None:
            return defer.succeed(False)
        if not subscribed:
            # refused, or unsubscribed by Redis itself: nothing to undo (and a
            # cluster node would answer MOVED for a slot it no longer has)
            return defer.succeed(True)
        return self._send(kind, self._live, kind.unsubscribe, [name]).wait()

    def channels(self, *, sharded: bool = False, pattern: bool = False) -> list[bytes]:
        """The channels (or patterns) with local interest."""
        return list(self._interest[self._kind(sharded, pattern)])

    def interest(
        self, channel: str | bytes, *, sharded: bool = False, pattern: bool = False
    ) -> int:
        """How many local callbacks are subscribed to ``channel``."""
        return len(self._interest[self._kind(sharded, pattern)].get(channel_name(channel), ()))

    def is_subscribed(
        self, channel: str | bytes, *, sharded: bool = False, pattern: bool = False
    ) -> bool:
        """True if Redis confirmed the subscription on the current connection."""
        return channel_name(channel) in self._confirmed[self._kind(sharded, pattern)]

    # -- commands -------------------------------------------------------------

    @staticmethod
    def _kind(sharded: bool, pattern: bool) -> _Kind:
        if sharded and pattern:
            raise ValueError(SHARDED_PATTERN)
        return _SHARD if sharded else _PATTERN if pattern else _CHANNEL

    def _send(
        self, kind: _Kind, protocol: RedisProtocol, command: bytes, names: list[bytes]
    ) -> _Request:
        request = _Request()
        subscribing = command == kind.subscribe
        if subscribing:
            for name in names:
                self._inflight[kind][name] = request
        self.stats.commands += 1

        def done(acks: list[Any]) -> None:
            for name in names:
                if self._inflight[kind].get(name) is request:
                    del self._inflight[kind][name]
                    if subscribing and name in self._interest[kind] and protocol is self._live:
                        self._confirmed[kind].add(name)
            request.settle(True)

        def failed(failure: Failure) -> None:
            for name in names:
                if self._inflight[kind].get(name) is request:
                    del self._inflight[kind][name]
            if failure.check(RedisReplyError):
                self.stats.errors += 1
                shown = b", ".join(names[:5]).decode(errors="replace") + (
                    ", ..." if len(names) > 5 else ""
                )
                error: Any = failure.value
                moved = error.code == "MOVED"
                if subscribing and self.on_refused is not None:
                    for name in names:
                        self._hook2(self.on_refused, name, error)
                # MOVED: followed by the owner (ClusterSubscriber), or a cluster
                # node behind a plain URL, which is worth one line, not one per channel
                quiet = moved and (self.on_refused is not None or self._moved_logged)
                if moved and not quiet:
                    self._moved_logged = True
                (_log.debug if quiet else _log.error)(
                    "Redis refused {command} {what} {channels}: {message}"
                    + (" (a Redis Cluster node: use a redis+cluster:// URL)" if moved else ""),
                    command=command.decode(),
                    what=kind.name,
                    channels=shown,
                    message=failure.getErrorMessage(),
                )
                request.settle(failure)
            else:
                # the connection is gone: interest is applied on reconnection
                self.stats.failures += 1
                request.settle(False)

        protocol.subscribe_command(command, names).addCallbacks(done, failed)
        return request

    def _batches(self, kind: _Kind, names: list[bytes]) -> Iterator[list[bytes]]:
        if kind is _SHARD:
            by_slot: dict[int, list[bytes]] = {}
            for name in names:
                by_slot.setdefault(hash_slot(name), []).append(name)
            groups: list[list[bytes]] = list(by_slot.values())
        else:
            groups = [names]
        for group in groups:
            for start in range(0, len(group), self.batch_size):
                yield group[start : start + self.batch_size]

    # -- connection life ------------------------------------------------------

    def _prepare(self, protocol: RedisProtocol) -> defer.Deferred[Any]:
        protocol.pubsub = True
        self._live = protocol
        self._confirmed = {k: set() for k in _KINDS}
        self._inflight = {k: {} for k in _KINDS}
        waits: list[defer.Deferred[bool]] = []
        for kind in _KINDS:
            for batch in self._batches(kind, list(self._interest[kind])):
                # a refused channel is logged and skipped; only a lost connection fails the setup
                waits.append(
                    self._send(kind, protocol, kind.subscribe, batch)
                    .wait()
                    .addErrback(_refusal_is_no_failure)
                )
        if not waits:
            return defer.succeed(None)

        def check(results: list[bool]) -> None:
            if not all(results):
                raise RedisUnavailable(
                    f"connection to {self.config.address} lost while subscribing again"
                )

        return defer.gatherResults(waits, consumeErrors=True).addCallback(check)

    def _gone(self, protocol: RedisProtocol) -> None:
        if protocol is self._live:
            self._live = None
            self._confirmed = {k: set() for k in _KINDS}

    def _became_usable(
        self, protocol: RedisProtocol, reconnected: bool, outage: float | None
    ) -> None:
        if reconnected and self.on_reconnect is not None:
            self._hook(self.on_reconnect, outage or 0.0)

    def _became_unusable(self, reason: str) -> None:
        if self.on_disconnect is not None:
            self._hook(self.on_disconnect, reason)

    def _hook(self, hook: Callable[[Any], object], argument: Any) -> None:
        try:
            result = hook(argument)
        except Exception:  # noqa: BLE001 - the owner's bug must not stop reconnection
            _log.failure("Redis Subscriber hook {hook!r} failed", hook=hook)
            return
        if isinstance(result, defer.Deferred):
            result.addErrback(
                lambda f: _log.failure("Redis Subscriber hook {hook!r} failed", f, hook=hook)
            )

    def _hook2(self, hook: Callable[[bytes, RedisReplyError], object], name: bytes, error: Any) -> None:
        try:
            hook(name, error)
        except Exception:  # noqa: BLE001 - the owner's bug must not break the connection
            _log.failure("Redis Subscriber hook {hook!r} failed", hook=hook)

    def _push(self, message: list[Any]) -> None:
        kind = _BY_MESSAGE.get(message[0])
        if kind is None:
            if message[0] == b"sunsubscribe" and len(message) > 1:
                # Redis Cluster drops shard subscriptions whose slot moved away
                self._confirmed[_SHARD].discard(message[1])
                if self.on_server_unsubscribe is not None:
                    # the owner (ClusterSubscriber) subscribes on the slot's new shard
                    _log.info(
                        "Redis unsubscribed shard channel {channel} by itself (its cluster slot "
                        "moved); subscribing on the slot's new owner",
                        channel=message[1],
                    )
                    self._hook(self.on_server_unsubscribe, message[1])
                else:
                    _log.warn(
                        "Redis unsubscribed shard channel {channel} by itself (its cluster slot "
                        "moved?); use a redis+cluster:// URL to follow it",
                        channel=message[1],
                    )
            return
        self.stats.messages += 1
        if kind is _PATTERN:
            if len(message) != 4:
                return
            key, channel, data = message[1], message[2], message[3]
        else:
            if len(message) != 3:
                return
            key, channel, data = message[1], message[1], message[2]
        for callback in list(self._interest[kind].get(key, ())):
            try:
                callback(channel, data)
            except Exception:  # noqa: BLE001 - one bad callback must not starve the others
                _log.failure(
                    "Redis message callback {callback!r} for {channel} failed",
                    callback=callback,
                    channel=channel,
                )
