# -*- test-case-name: tests.redis.test_cluster_memory,tests.hub.test_redis_cluster_client -*-
"""
``RedisClusterClient``: commands to a Redis Cluster, routed by slot.

.. code-block:: python

    client = RedisClusterClient.from_url("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", reactor)
    client.startService()
    yield client.execute("HSET", client.key("presence:{room}"), "id", "1")

It offers what ``RedisClient`` offers (``execute``, ``publish``,
``spublish``, ``evalsha_or_eval``, ``key``, ``connected``, ``on_usable``,
``pending``, ``stats``; a Twisted ``Service``), over one kept-alive
``RedisClient`` per primary:

- **The slot map** (``ratchetpy.redis.cluster_refresh``) comes from
  ``CLUSTER SHARDS`` (``CLUSTER SLOTS`` on a server without it), asked
  of any connected node (the seeds at first),
  again every ``refresh_interval`` and whenever something below suggests
  it changed; never more often than every ``min_refresh`` seconds, and
  with a growing wait (up to 30 s) while refreshing fails.
- **Routing**: a command goes to the primary owning its key's slot
  (``{hash tags}`` count, ``slots.hash_slot``); keyless commands (PING,
  PUBLISH, ...) to any connected primary. Every key of a multi-key
  command or script must be in one slot: otherwise ``RedisClusterError``
  (``CROSSSLOT``) names the keys, before anything is sent.
- **MOVED** (the slot has a new owner): the map is changed for that slot
  at once, a full refresh is asked for, and the command is sent once more,
  to the new owner. A second redirection fails the command.
- **ASK** (the slot is being migrated and this key is already on the
  target): ``ASKING`` and the command go to the target, once; the map is
  not changed (the slot still belongs to the source until the migration
  ends).
- **CLUSTERDOWN / TRYAGAIN** (slots without a live owner, a multi-key
  command during a migration): the command fails at once with
  ``RedisClusterError`` saying so, and the map is refreshed.
- **A primary goes away**: its ``RedisClient`` logs the outage once and
  reconnects with backoff; commands for its slots fail fast with
  ``RedisUnavailable`` naming the node; the map is refreshed (with
  backoff) until a replica is promoted, then its slots go to the new
  primary and the old node's connection is closed.

``connected`` is True while every slot has an owner and every primary
has a usable connection. ``on_usable`` runs when that becomes true, and each
time a primary's connection is made again (the owner writes back what
the node may have lost). ``map_listeners`` are called after every change
of the map (``ClusterSubscriber`` moves its subscriptions then).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IStreamClientEndpoint
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import RedisClusterError, RedisReplyError, RedisUnavailable
from .backoff import Backoff
from .client import RedisClient
from .cluster_keys import as_bytes, command_slot, key_names, redirect_target
from .cluster_map import Address, SlotMap
from .cluster_refresh import MAX_REFRESH_WAIT as MAX_REFRESH_WAIT  # re-exported: public here before
from .cluster_refresh import SlotMapRefresh
from .protocol import Arg, RedisProtocol
from .scripts import Script
from .slots import hash_slot
from .stats import RedisStats
from .url import RedisConfig

__all__ = ["RedisClusterClient", "command_slot", "CommandClient"]

_log = Logger(namespace="ratchetpy.redis")

class _NodeClient(RedisClient):
    """One primary's connection; tells the cluster client when it comes and goes."""

    def __init__(self, owner: RedisClusterClient, address: Address, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.address = address

    def _became_usable(
        self, protocol: RedisProtocol, reconnected: bool, outage: float | None
    ) -> None:
        super()._became_usable(protocol, reconnected, outage)
        self.owner._node_usable(self, reconnected)

    def _became_unusable(self, reason: str) -> None:
        self.owner._node_lost(self)


class RedisClusterClient(SlotMapRefresh, Service):
    """
    Commands to a Redis Cluster (see the module docs).

    Args:
        config: a cluster config (``redis+cluster://`` or ``?cluster=1``);
            its TLS, ACL user, password and timeouts apply to every node.
        reactor: the reactor.
        endpoint_for: ``f((host, port))`` -> the endpoint to reach that
            node (tests use in-memory ones); default: from ``config``.
        backoff: ``f()`` -> a ``Backoff`` for each node's reconnections.
        refresh_interval: seconds between routine slot map refreshes (0: none).
        min_refresh: fewest seconds between two refreshes asked for by
            redirections or lost nodes.
    """

    role = "commands"

    def __init__(
        self,
        config: RedisConfig,
        reactor: Any,
        *,
        endpoint_for: Callable[[Address], IStreamClientEndpoint] | None = None,
        backoff: Callable[[], Backoff] | None = None,
        refresh_interval: float = 30.0,
        min_refresh: float = 1.0,
    ) -> None:
        if not config.cluster:
            raise ValueError("RedisClusterClient needs a cluster config (redis+cluster://...)")
        self.config = config
        self.reactor = reactor
        self.slots = SlotMap()
        self.nodes: dict[Address, _NodeClient] = {}
        self.on_usable: Callable[[], object] | None = None
        self.map_listeners: list[Callable[[set[int]], object]] = []
        self.refresh_interval = refresh_interval
        self.min_refresh = min_refresh
        self._endpoint_for = endpoint_for
        self._backoff = backoff
        self._retired = RedisStats()
        self._waiters: dict[Address, list[defer.Deferred[RedisClient]]] = {}
        self._refreshing = False
        self._scheduled: IDelayedCall | None = None
        self._last_refresh = -math.inf
        self._refresh_failures = 0
        self._refresh_logged = False
        self._periodic: LoopingCall | None = None
        self._was_connected = False
        self._complete = False

    @classmethod
    def from_url(cls, url: str, reactor: Any, **kwargs: Any) -> RedisClusterClient:
        """A client for a ``redis+cluster://`` URL."""
        return cls(RedisConfig.from_url(url), reactor, **kwargs)

    # -- what RedisClient offers ---------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while every slot has an owner and every primary is connected."""
        primaries = self.slots.primaries()
        return self._complete and bool(primaries) and all(
            a in self.nodes and self.nodes[a].connected for a in primaries
        )

    @property
    def pending(self) -> int:
        """Commands waiting for replies, over every node."""
        return sum(node.pending for node in self.nodes.values())

    @property
    def stats(self) -> RedisStats:
        """Every node's counters summed (``connected``: 1 while ``connected``)."""
        total = RedisStats(**self._retired.as_dict())
        for node in self.nodes.values():
            for name, value in node.stats.as_dict().items():
                setattr(total, name, getattr(total, name) + value)
        total.connected = int(self.connected)
        return total

    def key(self, name: Any) -> Any:
        """``name`` with the configured prefix in front; ``str`` stays ``str``."""
        prefix = self.config.prefix
        if isinstance(name, bytes):
            return prefix.encode() + name
        return prefix + name

    def execute(self, *args: Arg, timeout: float | None = None) -> defer.Deferred[Any]:
        """Send one command to the node owning its key's slot; fires with its reply."""
        try:
            slot = command_slot(args)
        except (RedisClusterError, ValueError) as exc:
            return defer.fail(exc)
        return self._run(slot, lambda c: c.execute(*args, timeout=timeout), args, args[0])

    def publish(self, channel: str | bytes, message: str | bytes) -> defer.Deferred[int]:
        """
        PUBLISH (classic pub/sub crosses the whole cluster; its reply counts
        only the subscribers of the node that took it). Sent to the owner of
        the channel's slot, so one channel always takes the same path.
        """
        slot = hash_slot(channel)
        return self._run(slot, lambda c: c.publish(channel, message), ("PUBLISH", channel, message), "PUBLISH")

    def spublish(self, channel: str | bytes, message: str | bytes) -> defer.Deferred[int]:
        """SPUBLISH on the shard owning the channel's slot; fires with its subscriber count."""
        return self.execute("SPUBLISH", channel, message)

    def evalsha_or_eval(
        self, script: Script | str | bytes, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()
    ) -> defer.Deferred[Any]:
        """A Lua script on the node owning its keys' slot (all keys in one slot)."""
        if not isinstance(script, Script):
            script = Script(script)
        whole: tuple[Arg, ...] = ("EVAL", script.source, len(keys), *keys, *args)
        try:
            slot = command_slot(whole)
        except RedisClusterError as exc:
            return defer.fail(exc)
        chosen = script
        return self._run(slot, lambda c: c.evalsha_or_eval(chosen, keys, args), whole, "EVALSHA")

    # -- routing ---------------------------------------------------------------------

    def _run(
        self,
        slot: int | None,
        send: Callable[[RedisClient], defer.Deferred[Any]],
        whole: Sequence[Arg],
        name: Arg,
    ) -> defer.Deferred[Any]:
        client = self._route(slot)
        if isinstance(client, Failure):
            return defer.fail(client)
        sent = send(client)
        return sent.addErrback(self._redirected, slot, whole, name)

    def _route(self, slot: int | None) -> RedisClient | Failure:
        if slot is None:
            for address in sorted(self.slots.primaries()):
                node = self.nodes.get(address)
                if node is not None and node.connected:
                    return node
            self.refresh_soon()
            return Failure(RedisUnavailable(f"no primary of the Redis Cluster {self.config.address} is connected"))
        owner = self.slots.owner(slot)
        if owner is None:
            self.refresh_soon()
            what = "is not known yet" if not self.slots.known else "has no live owner"
            return Failure(
                RedisUnavailable(
                    f"Redis Cluster {self.config.address}: slot {slot} {what}; failing fast "
                    "until the slot map says who serves it"
                )
            )
        node = self._node(owner)
        if not node.connected:
            self.refresh_soon()
            down = node.outage_started
            since = f" for {self.reactor.seconds() - down:.1f} s" if down is not None else ""
            return Failure(
                RedisUnavailable(
                    f"Redis Cluster primary {owner[0]}:{owner[1]} (slot {slot}) is unavailable{since}; "
                    "failing fast until it is back or a replica takes over"
                )
            )
        return node

    def _redirected(
        self, failure: Failure, slot: int | None, whole: Sequence[Arg], name: Arg, hops: int = 0
    ) -> Any:
        error = failure.value
        if isinstance(error, RedisUnavailable):
            self.refresh_soon()
            return failure
        if not isinstance(error, RedisReplyError) or isinstance(error, RedisClusterError):
            return failure
        code = error.code
        command = as_bytes(name).decode(errors="replace")
        if code in ("MOVED", "ASK"):
            target = redirect_target(error)
            if target is None:
                return failure
            if hops:
                self.refresh_soon()
                return Failure(
                    RedisClusterError(
                        f"Redis Cluster redirected {command} twice ({error.message}); the cluster "
                        "is reconfiguring: failing now, the slot map is being refreshed",
                        code,
                    )
                )
            moved_slot, address = target
            if code == "MOVED":
                if self.slots.move(moved_slot, address):
                    self._tell_listeners({moved_slot})
                self.refresh_soon()
            node = self._node(address)
            ready = self._when_usable(node)

            def again(client: RedisClient) -> defer.Deferred[Any]:
                if code == "ASK":
                    # ASKING lets the next command on this connection reach a slot being imported
                    client.execute("ASKING").addErrback(lambda _: None)
                    return client.execute(*whole)
                if whole[0] == "EVAL":
                    count = int(as_bytes(whole[2]))
                    script = Script(as_bytes(whole[1]))
                    return client.evalsha_or_eval(script, whole[3 : 3 + count], whole[3 + count :])
                return client.execute(*whole)

            retried = ready.addCallback(again)
            return retried.addErrback(self._redirected, slot, whole, name, hops + 1)
        if code in ("CLUSTERDOWN", "TRYAGAIN"):
            self.refresh_soon()
            return Failure(
                RedisClusterError(
                    f"Redis Cluster cannot run {command} now ({error.message}); failing at once "
                    "rather than waiting; the slot map is being refreshed",
                    code,
                )
            )
        if code == "CROSSSLOT":
            keys = ", ".join(k.decode(errors="replace") for k in key_names(whole))
            return Failure(
                RedisClusterError(f"CROSSSLOT {command}: keys {keys} are not in one slot ({error.message})", code)
            )
        return failure

    def _when_usable(self, node: _NodeClient) -> defer.Deferred[RedisClient]:
        if node.connected:
            return defer.succeed(node)
        waiter: defer.Deferred[RedisClient] = defer.Deferred()
        self._waiters.setdefault(node.address, []).append(waiter)

        def expire() -> None:
            waiting = self._waiters.get(node.address, [])
            if waiter in waiting:
                waiting.remove(waiter)
                waiter.errback(
                    RedisUnavailable(
                        f"Redis Cluster node {node.address[0]}:{node.address[1]} was not reachable "
                        f"within {self.config.connect_timeout} s after a redirection to it"
                    )
                )

        call = self.reactor.callLater(self.config.connect_timeout, expire)
        return waiter.addBoth(lambda result: (call.active() and call.cancel(), result)[1])

    # -- nodes -------------------------------------------------------------------

    def _node(self, address: Address) -> _NodeClient:
        node = self.nodes.get(address)
        if node is None:
            endpoint = self._endpoint_for(address) if self._endpoint_for is not None else None
            node = _NodeClient(
                self,
                address,
                self.config.node(*address),
                self.reactor,
                endpoint=endpoint,
                backoff=self._backoff() if self._backoff is not None else None,
            )
            self.nodes[address] = node
            if self.running:
                node.startService()
        return node

    def _retire(self, address: Address) -> None:
        node = self.nodes.pop(address, None)
        if node is None:
            return
        for name, value in node.stats.as_dict().items():
            if name != "connected":
                setattr(self._retired, name, getattr(self._retired, name) + value)
        for waiter in self._waiters.pop(address, []):
            waiter.errback(RedisUnavailable(f"Redis Cluster node {address[0]}:{address[1]} left the slot map"))
        if node.running:
            node.stopService()

    def _node_usable(self, node: _NodeClient, reconnected: bool = False) -> None:
        for waiter in self._waiters.pop(node.address, []):
            waiter.callback(node)
        if reconnected or not self._complete or node.address not in self.slots.primaries():
            # back after an outage: the cluster may have failed over meanwhile
            self.refresh_soon()
        self._check_usable(node_back=True)

    def _node_lost(self, node: _NodeClient) -> None:
        self._was_connected = self.connected
        # a replica may be promoted: keep asking the others until the map says so
        self.refresh_soon()

    def _check_usable(self, node_back: bool = False) -> None:
        now = self.connected
        became = now and not self._was_connected
        self._was_connected = now
        if (became or (now and node_back)) and self.on_usable is not None:
            try:
                self.on_usable()
            except Exception:  # noqa: BLE001 - the owner's hook must not break the client
                _log.failure("The on_usable hook of the Redis Cluster client failed")

    # -- service -------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        for seed in self.config.seeds:
            node = self._node(seed)
            if not node.running:
                node.startService()
        if self.refresh_interval > 0:
            self._periodic = LoopingCall(self.refresh_soon)
            self._periodic.clock = self.reactor
            self._periodic.start(self.refresh_interval, now=False)

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        if self._periodic is not None and self._periodic.running:
            self._periodic.stop()
        if self._scheduled is not None and self._scheduled.active():
            self._scheduled.cancel()
        self._scheduled = None
        stops = [node.stopService() for node in self.nodes.values() if node.running]
        for address, waiters in list(self._waiters.items()):
            for waiter in waiters:
                waiter.errback(RedisUnavailable(f"Redis Cluster client stopped ({address[0]}:{address[1]})"))
        self._waiters.clear()
        return defer.DeferredList(stops, consumeErrors=True).addCallback(lambda _: None)


CommandClient = RedisClient | RedisClusterClient
"""What the backplane sends commands through: one server or a cluster."""

