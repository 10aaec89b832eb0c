# -*- test-case-name: tests.test_app_redis -*-
"""
``App.use_redis(url)``: the App's hub spanning processes through Redis.

.. code-block:: python

    app = App("chat.example.com", 8080, "0.0.0.0")
    app.route("/chat", Chat())
    app.use_redis("redis://127.0.0.1:6379/0?prefix=chat:")
    app.run()

Start the same program several times (on several hosts, or on one host
with ``twistd ratchetpy --workers N``) with the same URL and prefix, and
``app.hub`` is one hub: a publish reaches every process with a member of
the channel, a push reaches the process holding the connection, presence
and ``stats()`` cover every process (see ``ratchetpy.hub.redis_backplane``
for what crosses, and what happens while Redis is down).

The backplane is a service of the App: it connects when the App starts
(before the first client can arrive) and disconnects when the App stops,
after the graceful stop has closed every connection, so what components
publish while their clients close still reaches the other processes.
``App`` inherits these methods from ``AppRedis``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from .exceptions import ConfigurationError
from .hub import Hub

if TYPE_CHECKING:
    from .hub.redis_backplane import RedisBackplane
    from .redis.url import RedisConfig

__all__ = ["AppRedis", "REDIS_URL_EXAMPLE"]

_log = Logger(namespace="ratchetpy.app")

REDIS_URL_EXAMPLE = "redis://127.0.0.1:6379/0"
"""The URL shown in messages that ask for one."""


class AppRedis:
    """
    The Redis methods of ``App`` (a mixin: it uses the App's hub, reactor
    and ``running``).
    """

    hub: Hub
    reactor: Any
    running: int
    backplane: RedisBackplane | None

    def use_redis(
        self,
        redis: str | RedisConfig,
        *,
        presence_ttl: float | None = None,
        ack_timeout: float | None = None,
        sharded: bool = False,
    ) -> RedisBackplane:
        """
        Make ``app.hub`` span every process using the same Redis and prefix.

        Call it once, before or after ``route``; on a running App the
        backplane starts at once.

        Args:
            redis: a ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL
                (``?prefix=`` keeps apps sharing one Redis apart; see
                ``ratchetpy.redis.url`` for every option), a Redis Cluster's
                ``redis+cluster://HOST:PORT[,HOST:PORT...]`` (or
                ``?cluster=1``), or a ``RedisConfig``.
            presence_ttl: seconds before a dead process's presence expires
                (default ``DEFAULT_PRESENCE_TTL``, 30).
            ack_timeout: seconds to wait for other processes' answers
                (default ``DEFAULT_ACK_TIMEOUT``, 2).
            sharded: sharded pub/sub (SPUBLISH/SSUBSCRIBE) on one Redis
                server; always on for a Redis Cluster URL.

        Returns:
            The ``RedisBackplane`` (also ``app.backplane``; its ``counters``
            and ``client.stats`` tell how Redis is doing).

        Raises:
            ConfigurationError: a URL that cannot work (the message says
                what is wrong and never shows the password), a bad number,
                or a hub that already has a backplane.
        """
        from .hub.redis_backplane import (
            DEFAULT_ACK_TIMEOUT,
            DEFAULT_PRESENCE_TTL,
            RedisBackplane,
        )
        from .redis.url import RedisConfig

        if self.backplane is not None or self.hub.backplane is not None:
            raise ConfigurationError(
                "this App's hub already spans processes (use_redis was called, or a "
                "backplane was attached to app.hub); call use_redis once"
            )
        if isinstance(redis, str):
            try:
                config = RedisConfig.from_url(redis.strip())
            except ConfigurationError as exc:
                raise ConfigurationError(f"use_redis: {exc}; e.g. {REDIS_URL_EXAMPLE}") from None
        elif isinstance(redis, RedisConfig):
            config = redis
        else:
            raise ConfigurationError(
                f"use_redis takes a Redis URL (e.g. {REDIS_URL_EXAMPLE}) or a RedisConfig, "
                f"not {type(redis).__name__}"
            )
        ttl = _positive("presence_ttl", DEFAULT_PRESENCE_TTL if presence_ttl is None else presence_ttl)
        timeout = _positive("ack_timeout", DEFAULT_ACK_TIMEOUT if ack_timeout is None else ack_timeout)
        backplane = RedisBackplane(
            self.hub, config, self.reactor, presence_ttl=ttl, ack_timeout=timeout, sharded=bool(sharded)
        )
        self.backplane = backplane
        if self.running:
            self._start_backplane()
        return backplane

    def _start_backplane(self) -> None:
        backplane = self.backplane
        if backplane is None or backplane.running:
            return
        _log.info(
            "Hub spans processes through Redis at {address} (prefix {prefix!r}; this "
            "process is node {node})",
            address=backplane.config.address,
            prefix=backplane.names.prefix,
            node=backplane.node,
        )
        backplane.startService()

    def _stop_backplane(self, result: Any = None) -> Deferred[Any]:
        backplane = self.backplane
        if backplane is None or not backplane.running:
            return succeed(result)
        return backplane.stopService().addBoth(lambda _: result)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value > 0
    ):
        raise ConfigurationError(f"use_redis({name}=...) must be a positive number of seconds, not {value!r}")
    return float(value)
