# -*- test-case-name: tests.redis.test_client_memory,tests.redis.test_client -*-
"""
``RedisClient``: commands to Redis that never wait on an outage.

.. code-block:: python

    client = RedisClient.from_url("redis://app:secret@127.0.0.1:6379/2?prefix=app:", reactor)
    client.setServiceParent(application)          # or client.startService()
    yield client.execute("SET", client.key("greeting"), "hello")
    receivers = yield client.publish("news", "hi")

``execute(*args)`` returns a Deferred that fires with the reply, or fails:

- at once with ``RedisUnavailable`` while there is no usable connection
  (down, reconnecting, still setting up), or when ``max_pending`` commands
  already wait for replies; nothing is queued for later, so memory stays
  bounded and no caller waits on an outage;
- with ``RedisTimeout`` when the reply does not come within ``timeout``;
  the connection is dropped and made again;
- with ``RedisUnavailable`` when the connection is lost first;
- with ``RedisReplyError`` when Redis answers with an error.

Connection handling (setup, reconnection with jittered backoff, health
PINGs, outage logging) is ``RedisLink``'s; ``client.stats`` counts
commands, failures, error replies, timeouts and outages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import RedisReplyError, RedisUnavailable
from .link import RedisLink
from .protocol import Arg, RedisProtocol
from .scripts import Script
from .url import RedisConfig

_log = Logger(namespace="ratchetpy.redis")

__all__ = ["RedisClient"]

_Name = TypeVar("_Name", str, bytes)


class RedisClient(RedisLink):
    """
    Redis commands over one kept-alive connection (a Twisted ``Service``).

    Args:
        config: where Redis is and how to talk to it (``RedisConfig.from_url``).
        reactor: the reactor.
        endpoint: connect here instead (tests).
        backoff: the reconnection waits (``Backoff``).
    """

    role = "commands"

    on_usable: Callable[[], object] | None = None
    """Called each time a connection becomes usable (first connect and every
    reconnection): the owner writes back state Redis may have lost."""

    def _became_usable(
        self, protocol: RedisProtocol, reconnected: bool, outage: float | None
    ) -> None:
        hook = self.on_usable
        if hook is not None:
            try:
                hook()
            except Exception:  # noqa: BLE001 - the owner's hook must not break the link
                _log.failure("The on_usable hook of the Redis client failed")

    @classmethod
    def from_url(cls, url: str, reactor: Any, **kwargs: Any) -> RedisClient:
        """A client for ``url`` (see ``ratchetpy.redis.url`` for its options)."""
        return cls(RedisConfig.from_url(url), reactor, **kwargs)

    @property
    def pending(self) -> int:
        """Commands waiting for their replies now."""
        return self.protocol.pending if self.protocol is not None else 0

    def key(self, name: _Name) -> _Name:
        """``name`` with the configured prefix (``?prefix=``) in front; ``str`` stays ``str``."""
        prefix = self.config.prefix
        if isinstance(name, bytes):
            return prefix.encode() + name
        return prefix + name

    def execute(self, *args: Arg, timeout: float | None = None) -> defer.Deferred[Any]:
        """
        Send one command (``execute("HSET", key, "field", 1)``); fires with its reply.

        Replies are RESP2 values: ``bytes`` (bulk and status replies such as
        ``b"OK"``), ``int``, ``None``, and lists of these. ``timeout``
        overrides the configured one for this command (a blocking command
        such as BLPOP needs longer than its own wait). See the module docs
        for the ways it fails.
        """
        return self._send(args, timeout).addErrback(self._count_failure)

    def publish(self, channel: str | bytes, message: str | bytes) -> defer.Deferred[int]:
        """
        PUBLISH ``message`` on ``channel``; fires with the number of
        subscribers that got it. Channel names are used as given (no
        prefix): pass ``client.key(name)`` to keep apps apart.
        """
        return self.execute("PUBLISH", channel, message)

    def spublish(self, channel: str | bytes, message: str | bytes) -> defer.Deferred[int]:
        """SPUBLISH (sharded pub/sub, Redis 7+); fires with the number of subscribers that got it."""
        return self.execute("SPUBLISH", channel, message)

    def evalsha_or_eval(
        self, script: Script | str | bytes, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()
    ) -> defer.Deferred[Any]:
        """
        Run a Lua script by its SHA1 (EVALSHA), sending its source (EVAL)
        only when Redis does not have it cached (a NOSCRIPT reply: after a
        restart, SCRIPT FLUSH or a failover). Keys are not prefixed: pass
        ``client.key(name)``. Fires with the script's result.
        """
        if not isinstance(script, Script):
            script = Script(script)
        numkeys = len(keys)

        def fallback(failure: Failure) -> Any:
            error = failure.value
            if isinstance(error, RedisReplyError) and error.code == "NOSCRIPT":
                return self._send(("EVAL", script.source, numkeys, *keys, *args), None)
            return failure

        sent = self._send(("EVALSHA", script.sha1, numkeys, *keys, *args), None)
        return sent.addErrback(fallback).addErrback(self._count_failure)

    def _send(self, args: Sequence[Arg], timeout: float | None) -> defer.Deferred[Any]:
        protocol = self.protocol
        if protocol is None or not protocol.usable:
            down = self.outage_started
            since = f" for {self.reactor.seconds() - down:.1f} s" if down is not None else ""
            return defer.fail(
                RedisUnavailable(f"Redis at {self.config.address} is unavailable{since}")
            )
        if protocol.pending >= self.config.max_pending:
            return defer.fail(
                RedisUnavailable(
                    f"too many pending Redis commands ({protocol.pending}, max_pending="
                    f"{self.config.max_pending}); Redis at {self.config.address} is slow or unreachable"
                )
            )
        sent = protocol.command(*args, timeout=timeout)
        self.stats.commands += 1
        return sent

    def _count_failure(self, failure: Failure) -> Failure:
        if failure.check(RedisReplyError):
            self.stats.errors += 1
        else:
            self.stats.failures += 1
        return failure
