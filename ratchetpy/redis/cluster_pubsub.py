# -*- test-case-name: tests.redis.test_cluster_pubsub_memory,tests.hub.test_redis_cluster_backplane -*-
"""
``ClusterSubscriber``: pub/sub on a Redis Cluster, each channel on the
shard that owns its slot.

.. code-block:: python

    client = RedisClusterClient(config, reactor)
    subscriber = ClusterSubscriber(client, on_reconnect=fill_gaps)
    subscriber.subscribe("ch:{room}", on_message, sharded=True)   # SSUBSCRIBE on the slot's primary

It offers what ``Subscriber`` offers (``subscribe``, ``unsubscribe``,
``is_subscribed``, ``interest``, ``channels``, ``connected``,
``on_reconnect``, ``on_disconnect``, ``stats``; a Twisted ``Service``),
over one ``Subscriber`` per primary that has subscriptions (each with its
own connection, reconnection and resubscription), placed by the slot map
of the ``RedisClusterClient`` it shares:

- a channel (shard channel, classic channel or pattern) is subscribed on
  the primary owning its slot; classic channels and patterns hear the
  whole cluster from any node, so they only move when their node leaves;
- ``MOVED`` on SSUBSCRIBE (the map was stale): the slot's owner is
  changed in the map, a refresh is asked for, and the channel is
  subscribed on the new owner;
- Redis ending a shard subscription by itself (a ``sunsubscribe`` push:
  the slot migrated): the map is refreshed and the channel subscribed on
  the slot's new owner (re-subscribing on the old one gets ``MOVED``, which
  leads there too);
- a map change (a replica promoted, a slot migrated) moves every channel
  whose owner changed;
- after any move, and after a shard's reconnection, ``on_reconnect`` runs
  once its channels are subscribed, so the owner can read what was
  published meanwhile (pub/sub does not keep it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from ..exceptions import RedisReplyError
from ._interest import SHARDED_PATTERN, add_callback, channel_name, remove_callback
from .cluster import RedisClusterClient
from .cluster_map import Address
from .pubsub import MessageCallback, Subscriber
from .slots import hash_slot
from .stats import RedisStats

__all__ = ["ClusterSubscriber"]

_log = Logger(namespace="ratchetpy.redis")

_Key = tuple[bytes, bool, bool]  # channel, sharded, pattern


class ClusterSubscriber(Service):
    """
    Pub/sub over a Redis Cluster (see the module docs).

    Args:
        cluster: the ``RedisClusterClient`` whose slot map places channels
            (it need not be started by this subscriber).
        on_reconnect: ``f(outage_seconds)`` after a shard's reconnection
            or a move, once its channels are subscribed again.
        on_disconnect: ``f(reason)`` when a shard's connection is lost.
        batch_size: channels per SUBSCRIBE when subscribing again.
        endpoint_for, backoff: as for ``RedisClusterClient`` (tests).
    """

    role = "pubsub"

    def __init__(
        self,
        cluster: RedisClusterClient,
        *,
        on_reconnect: Callable[[float], object] | None = None,
        on_disconnect: Callable[[str], object] | None = None,
        batch_size: int = 500,
        endpoint_for: Any = None,
        backoff: Any = None,
    ) -> None:
        self.cluster = cluster
        self.config = cluster.config
        self.reactor = cluster.reactor
        self.on_reconnect = on_reconnect
        self.on_disconnect = on_disconnect
        self.batch_size = batch_size
        self.shards: dict[Address, Subscriber] = {}
        self._endpoint_for = endpoint_for if endpoint_for is not None else cluster._endpoint_for
        self._backoff = backoff if backoff is not None else cluster._backoff
        self._interest: dict[_Key, list[MessageCallback]] = {}
        self._dispatchers: dict[_Key, MessageCallback] = {}
        self._placed: dict[_Key, Address] = {}
        self._retired = RedisStats()
        cluster.map_listeners.append(self._map_changed)

    # -- what Subscriber offers --------------------------------------------------

    def subscribe(
        self,
        channel: str | bytes,
        callback: MessageCallback,
        *,
        sharded: bool = False,
        pattern: bool = False,
    ) -> defer.Deferred[bool]:
        """
        Call ``callback(channel, message)`` for each message on ``channel``.
        Fires with True once the slot's shard confirmed, False when it
        cannot now (subscribed once the map or the shard is back).
        """
        if sharded and pattern:
            raise ValueError(SHARDED_PATTERN)
        key = (channel_name(channel), sharded, pattern)
        if not add_callback(self._interest, key, callback):
            return defer.succeed(self.is_subscribed(channel, sharded=sharded, pattern=pattern))
        self._dispatchers[key] = self._dispatcher(key)
        return self._place(key)

    def unsubscribe(
        self,
        channel: str | bytes,
        callback: MessageCallback,
        *,
        sharded: bool = False,
        pattern: bool = False,
    ) -> defer.Deferred[bool]:
        """
        Remove one ``subscribe``; after the last, unsubscribe on the shard.

        Raises:
            ValueError: ``callback`` is not subscribed to ``channel``.
        """
        key = (channel_name(channel), sharded, pattern)
        if not remove_callback(self._interest, key, callback, repr(key[0])):
            return defer.succeed(True)
        return self._unplace(key)

    def channels(self, *, sharded: bool = False, pattern: bool = False) -> list[bytes]:
        """The channels (or patterns) with local interest."""
        return [k[0] for k in self._interest if k[1:] == (sharded, pattern)]

    def interest(self, channel: str | bytes, *, sharded: bool = False, pattern: bool = False) -> int:
        """How many local callbacks are subscribed to ``channel``."""
        return len(self._interest.get((channel_name(channel), sharded, pattern), ()))

    def is_subscribed(self, channel: str | bytes, *, sharded: bool = False, pattern: bool = False) -> bool:
        """True if the channel's shard confirmed the subscription."""
        key = (channel_name(channel), sharded, pattern)
        address = self._placed.get(key)
        shard = self.shards.get(address) if address is not None else None
        return shard is not None and shard.is_subscribed(key[0], sharded=sharded, pattern=pattern)

    @property
    def connected(self) -> bool:
        """True while the map is known, every channel placed and every shard in use connected."""
        if not self.cluster.slots.known or len(self._placed) < len(self._interest):
            return False
        return all(self.shards[a].connected for a in set(self._placed.values()) if a in self.shards)

    @property
    def stats(self) -> RedisStats:
        """Every shard's counters summed."""
        total = RedisStats(**self._retired.as_dict())
        for shard in self.shards.values():
            for name, value in shard.stats.as_dict().items():
                setattr(total, name, getattr(total, name) + value)
        total.connected = int(self.connected)
        return total

    # -- placement -----------------------------------------------------------------

    def _dispatcher(self, key: _Key) -> MessageCallback:
        def dispatch(channel: bytes, message: bytes) -> None:
            for callback in list(self._interest.get(key, ())):
                try:
                    callback(channel, message)
                except Exception:  # noqa: BLE001 - one bad callback must not starve the others
                    _log.failure("Redis message callback {callback!r} for {channel} failed",
                                 callback=callback, channel=channel)  # fmt: skip

        return dispatch

    def _owner(self, key: _Key) -> Address | None:
        owner = self.cluster.slots.owner(hash_slot(key[0]))
        if owner is None:
            self.cluster.refresh_soon()
        return owner

    def _shard(self, address: Address) -> Subscriber:
        shard = self.shards.get(address)
        if shard is None:
            endpoint = self._endpoint_for(address) if self._endpoint_for is not None else None
            shard = Subscriber(
                self.config.node(*address),
                self.reactor,
                on_reconnect=self._shard_reconnected,
                on_disconnect=self._shard_disconnected,
                batch_size=self.batch_size,
                endpoint=endpoint,
                backoff=self._backoff() if self._backoff is not None else None,
            )
            shard.on_refused = lambda name, error, a=address: self._refused(a, name, error)
            shard.on_server_unsubscribe = lambda name, a=address: self._dropped(a, name)
            self.shards[address] = shard
            if self.running:
                shard.startService()
        return shard

    def _place(self, key: _Key) -> defer.Deferred[bool]:
        if not self.running:
            return defer.succeed(False)  # placed when the service starts
        owner = self._owner(key)
        if owner is None:
            return defer.succeed(False)  # placed when the map arrives
        self._placed[key] = owner
        name, sharded, pattern = key
        return self._shard(owner).subscribe(name, self._dispatchers[key], sharded=sharded, pattern=pattern)

    def _unplace(
        self, key: _Key, keep_dispatcher: bool = False, retire: bool = True
    ) -> defer.Deferred[bool]:
        address = self._placed.pop(key, None)
        dispatcher = self._dispatchers.get(key) if keep_dispatcher else self._dispatchers.pop(key, None)
        shard = self.shards.get(address) if address is not None else None
        if shard is None or dispatcher is None:
            return defer.succeed(False)
        name, sharded, pattern = key
        try:
            done = shard.unsubscribe(name, dispatcher, sharded=sharded, pattern=pattern)
        except ValueError:
            done = defer.succeed(False)
        if retire:
            self._retire_idle()
        return done.addErrback(lambda _: False)

    def _retire_idle(self) -> None:
        in_use = set(self._placed.values())
        for address in [a for a in self.shards if a not in in_use]:
            self._retire(address)

    def _retire(self, address: Address) -> None:
        shard = self.shards.pop(address, None)
        if shard is None:
            return
        for name, value in shard.stats.as_dict().items():
            if name != "connected":
                setattr(self._retired, name, getattr(self._retired, name) + value)
        if shard.running:
            shard.stopService()

    def _move(self, keys: list[_Key], why: str) -> None:
        if not keys:
            return
        moving = []
        for key in keys:
            if key not in self._interest:
                continue
            self._unplace(key, keep_dispatcher=True, retire=False)
            moving.append(self._place(key))
        self._retire_idle()
        _log.info(
            "Redis Cluster pub/sub: {count} channel(s) moved to their slot's new owner ({why})",
            count=len(moving),
            why=why,
        )
        # what was published while a channel moved is lost to pub/sub: let the owner read it back
        done = defer.DeferredList(moving, consumeErrors=True)
        done.addCallback(lambda _: self._shard_reconnected(0.0))

    def _refused(self, address: Address, name: bytes, error: RedisReplyError) -> None:
        if error.code != "MOVED":
            return
        parts = error.message.split()
        host, _, port = parts[2].rpartition(":") if len(parts) >= 3 else ("", "", "")
        try:
            slot, owner = int(parts[1]), (host.strip("[]"), int(port))
        except (ValueError, IndexError):
            return
        if self.cluster.slots.move(slot, owner):
            self.cluster.refresh_soon()
        # defer: this runs inside the shard's reply handling
        self.reactor.callLater(0, self._rehome, name)

    def _dropped(self, address: Address, name: bytes) -> None:
        self.cluster.refresh_soon()
        # subscribe again where the map says; the old owner answers MOVED if it changed
        self.reactor.callLater(0, self._rehome, name, True)

    def _rehome(self, name: bytes, even_if_same: bool = False) -> None:
        keys = [k for k in self._interest if k[0] == name and k[1]]
        stale = [k for k in keys if even_if_same or self._placed.get(k) != self._owner(k)]
        self._move(stale, "MOVED" if not even_if_same else "Redis unsubscribed it")

    def _map_changed(self, slots: set[int]) -> None:
        if not self.running:
            return
        primaries = self.cluster.slots.primaries()
        stale = []
        for key in list(self._interest):
            placed = self._placed.get(key)
            if placed is None:
                self._place(key)  # subscribed before the map was known
            elif key[1]:
                if placed != self._owner(key):
                    stale.append(key)
            elif placed not in primaries:
                stale.append(key)
        self._move(stale, "the slot map changed")

    # -- shard connections -------------------------------------------------------

    def _shard_reconnected(self, outage: float) -> None:
        if self.on_reconnect is not None:
            try:
                self.on_reconnect(outage)
            except Exception:  # noqa: BLE001 - the owner's bug must not stop resubscription
                _log.failure("ClusterSubscriber on_reconnect hook failed")

    def _shard_disconnected(self, reason: str) -> None:
        if self.on_disconnect is not None:
            try:
                self.on_disconnect(reason)
            except Exception:  # noqa: BLE001
                _log.failure("ClusterSubscriber on_disconnect hook failed")

    # -- service -------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        for shard in self.shards.values():
            if not shard.running:
                shard.startService()
        for key in list(self._interest):
            if key not in self._placed:
                self._place(key)

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        stops = [shard.stopService() for shard in self.shards.values() if shard.running]
        return defer.DeferredList(stops, consumeErrors=True).addCallback(lambda _: None)
