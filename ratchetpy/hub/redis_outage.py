# -*- test-case-name: tests.hub.test_redis_backplane -*-
"""
Failure bookkeeping for ``RedisBackplane``: what it logs and counts while
Redis is away, and when it says Redis is back.

Every failed Redis operation is counted (``counters["failures"]``) and
answered with a default (this node's own view). The first failure of an
outage is logged once, at warning level; "Redis is back" is logged once
both connections (commands and pub/sub) are usable again. A plain URL
pointed at a Redis Cluster node (MOVED/ASK/CROSSSLOT/CLUSTERDOWN replies)
is said once, at error level, with the ``redis+cluster://`` URL to use.
An unexpected (non-Redis) failure is logged with its traceback each time.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import RedisError, RedisReplyError

if TYPE_CHECKING:
    from ..redis.cluster import CommandClient
    from ..redis.connections import AnySubscriber
    from ..redis.url import RedisConfig
    from .answers import Answers
    from .redis_history import RedisHistory

__all__ = ["OutageMixin"]

_log = Logger(namespace="ratchetpy.hub.redis")

# Replies only a Redis Cluster node gives: the key or shard channel lives on another node.
_CLUSTER_REPLIES = frozenset({"MOVED", "ASK", "CROSSSLOT", "CLUSTERDOWN"})


class OutageMixin:
    """The failure bookkeeping half of ``RedisBackplane`` (see the module docs)."""

    if TYPE_CHECKING:
        client: CommandClient
        subscriber: AnySubscriber
        config: RedisConfig
        cluster: bool
        reactor: Any
        counters: Counter[str]
        answers: Answers
        history_store: RedisHistory
        _outage_logged: bool
        _outage_since: float
        _cluster_logged: bool

        def refresh(self) -> None: ...

    def _failed(self, what: str, default: Any) -> Any:
        def failed(failure: Failure) -> Any:
            self.counters["failures"] += 1
            error = failure.value
            if (
                not self.cluster
                and isinstance(error, RedisReplyError)
                and error.code in _CLUSTER_REPLIES
            ):
                if not self._cluster_logged:
                    self._cluster_logged = True
                    _log.error(
                        "Redis backplane: {what} failed ({error}): {address}: this is a Redis "
                        "Cluster node: use {suggested} (or add ?cluster=1) so the backplane "
                        "follows the cluster's slots; until then presence and counted "
                        "deliveries are wrong",
                        what=what,
                        error=failure.getErrorMessage(),
                        address=self.config.address,
                        suggested=self.config.cluster_url,
                    )
                return default
            if not self._outage_logged:
                self._outage_logged = True
                self._outage_since = self.reactor.seconds()
                _log.warn(
                    "Redis backplane: {what} failed ({error}); cross-node delivery and "
                    "presence are degraded to this node until Redis is back",
                    what=what,
                    error=failure.getErrorMessage(),
                )
            if not failure.check(RedisError):
                _log.failure("Redis backplane: unexpected failure in {what}", failure, what=what)
            return default

        return failed

    def _reconnected(self, outage: float) -> None:
        self.history_store.reconnected()
        self._maybe_back()

    def _client_usable(self) -> None:
        self._maybe_back()
        self.refresh()

    def _maybe_back(self) -> None:
        # The two connections come back at different moments; saying "back"
        # when only one is would be followed by a second "degraded" line as
        # soon as a command hits the other one (seen in CI).
        if not (self.client.connected and self.subscriber.connected):
            return
        if self._outage_logged:
            _log.info(
                "Redis backplane: Redis is back after {outage:.1f} s",
                outage=self.reactor.seconds() - self._outage_since,
            )
        self._outage_logged = False

    def _disconnected(self, reason: str) -> None:
        self.history_store.disconnected()
        # Answers in flight will not come: settle them with what arrived.
        self.answers.settle_all()
