# -*- test-case-name: tests.redis.test_cluster_memory,tests.hub.test_redis_cluster_client -*-
"""
Reading a Redis Cluster's slot map, for ``RedisClusterClient``.

The map comes from ``CLUSTER SHARDS`` (``CLUSTER SLOTS`` on a server
without it), asked of the connected nodes in turn (the seeds when none
is). A refresh asked for by a redirection or a lost node waits until
``min_refresh`` seconds after the last one, twice as long after each
failed one, up to ``MAX_REFRESH_WAIT``. While slots have no live owner or
a primary cannot be reached, the map is asked for again with that same
growing wait, until a replica is promoted. A failure to read it is
logged once until it is read again; listeners (``map_listeners``) hear
of every changed slot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import RedisReplyError, RedisUnavailable
from .cluster_map import Address, SlotMap

if TYPE_CHECKING:
    from .cluster import _NodeClient
    from .url import RedisConfig

__all__ = ["SlotMapRefresh", "MAX_REFRESH_WAIT"]

_log = Logger(namespace="ratchetpy.redis")

MAX_REFRESH_WAIT = 30.0
"""Longest wait between slot map refreshes while they keep failing."""


class SlotMapRefresh:
    """The slot map half of ``RedisClusterClient`` (see the module docs)."""

    if TYPE_CHECKING:
        running: int
        config: RedisConfig
        reactor: Any
        slots: SlotMap
        nodes: dict[Address, _NodeClient]
        map_listeners: list[Callable[[set[int]], object]]
        min_refresh: float
        _refreshing: bool
        _scheduled: IDelayedCall | None
        _last_refresh: float
        _refresh_failures: int
        _refresh_logged: bool
        _complete: bool

        def _node(self, address: Address) -> _NodeClient: ...

        def _retire(self, address: Address) -> None: ...

        def _check_usable(self, node_back: bool = False) -> None: ...

    def refresh_soon(self) -> None:
        """Refresh the slot map soon: at most once per ``min_refresh``, later while refreshes fail."""
        if not self.running or self._refreshing or self._scheduled is not None:
            return
        if not any(node.connected for node in self.nodes.values()):
            # nobody to ask: the first node (back) up asks (``_node_usable``); the
            # seeds are among those trying, in case every known node is gone
            for seed in self.config.seeds:
                node = self._node(seed)
                if not node.running:
                    node.startService()
            return
        wait = self.min_refresh * (2 ** min(self._refresh_failures, 10))
        wait = min(wait, max(MAX_REFRESH_WAIT, self.min_refresh))
        delay = max(0.0, self._last_refresh + wait - self.reactor.seconds())
        self._scheduled = self.reactor.callLater(delay, self._scheduled_refresh)

    def _scheduled_refresh(self) -> None:
        self._scheduled = None
        self.refresh()

    def refresh(self) -> defer.Deferred[bool]:
        """Ask a connected node for the slot map now; fires True if it was read."""
        if self._refreshing:
            return defer.succeed(False)
        self._refreshing = True
        self._last_refresh = self.reactor.seconds()
        candidates = [n for a, n in sorted(self.nodes.items()) if n.connected]
        if not candidates:
            # every known node is gone: go back to the seeds too
            for seed in self.config.seeds:
                self._node(seed)
        asked: defer.Deferred[Any] = self._ask(candidates)
        return asked.addCallbacks(self._got_map, self._map_failed)

    def _ask(self, candidates: list[_NodeClient]) -> defer.Deferred[tuple[SlotMap, _NodeClient]]:
        if not candidates:
            return defer.fail(RedisUnavailable(f"no node of the Redis Cluster {self.config.address} is reachable"))
        node, rest = candidates[0], candidates[1:]

        def slots_instead(failure: Failure) -> Any:
            error = failure.value
            if isinstance(error, RedisReplyError) and "unknown" in error.message.lower():
                return node.execute("CLUSTER", "SLOTS").addCallback(
                    lambda reply: SlotMap.from_slots(reply, node.address[0])
                )
            return failure

        def next_node(failure: Failure) -> Any:
            return self._ask(rest) if rest else failure

        asked: defer.Deferred[Any] = node.execute("CLUSTER", "SHARDS")
        asked.addCallback(lambda reply: SlotMap.from_shards(reply, self.config.tls, node.address[0]))
        asked.addErrback(slots_instead)
        asked.addCallback(lambda found: (found, node))
        return asked.addErrback(next_node)

    def _got_map(self, result: tuple[SlotMap, _NodeClient]) -> bool:
        found, node = result
        self._refreshing = False
        if not found.known:
            return self._map_failed(
                Failure(RedisReplyError(f"{node.address[0]}:{node.address[1]} knows no slot owners (a cluster node?)"))
            )
        if self._refresh_logged:
            _log.info("Redis Cluster {address}: slot map read again", address=self.config.address)
        failures, self._refresh_failures = self._refresh_failures, 0
        self._refresh_logged = False
        changed = self.slots.replace(found)
        self._complete = self.slots.uncovered() == 0
        primaries = self.slots.primaries()
        for address in primaries:
            self._node(address)
        for address in list(self.nodes):
            if address not in primaries:
                self._retire(address)
        if changed:
            _log.info(
                "Redis Cluster {address}: {count} primaries ({primaries}){uncovered}",
                address=self.config.address,
                count=len(primaries),
                primaries=", ".join(f"{h}:{p}" for h, p in sorted(primaries)),
                uncovered=f"; {self.slots.uncovered()} slots without a live owner" if self.slots.uncovered() else "",
            )
            self._tell_listeners(changed)
        # a node still making its first connection is not lost (yet)
        unreachable = [a for a in primaries if self.nodes[a].outage_started is not None]
        if self.slots.uncovered() or unreachable:
            # keep asking, slower and slower, until a replica is promoted
            self._refresh_failures = failures + 1
            self.refresh_soon()
        self._check_usable()
        return True

    def _map_failed(self, failure: Failure) -> bool:
        self._refreshing = False
        self._refresh_failures += 1
        if not self._refresh_logged:
            self._refresh_logged = True
            _log.warn(
                "Redis Cluster {address}: cannot read the slot map ({error}); commands for slots "
                "without a live owner fail fast; asking again with backoff",
                address=self.config.address,
                error=failure.getErrorMessage(),
            )
        self.refresh_soon()
        return False

    def _tell_listeners(self, changed: set[int]) -> None:
        for listener in list(self.map_listeners):
            try:
                listener(changed)
            except Exception:  # noqa: BLE001 - a listener's bug must not break routing
                _log.failure("A Redis Cluster slot map listener failed")
