# -*- test-case-name: tests.redis.test_client_memory,tests.redis.test_chaos -*-
"""
``RedisLink``: one Redis connection kept alive, the base of ``RedisClient``
and ``Subscriber``.

A ``twisted.application.internet.ClientService`` makes the connection and
makes it again when it is lost, waiting a jittered, growing time between
attempts (``Backoff``). Each new connection is *set up* before anyone may
use it: AUTH (ACL user and password, or password), SELECT, CLIENT SETNAME,
pipelined, each bounded by ``connect_timeout``; then the subclass's own
step (the ``Subscriber`` resubscribes). Only then is it *usable*
(``link.protocol`` is set, ``stats.connected`` is 1). A connection whose
setup fails is aborted and the next attempt waits its backoff: a paused
Redis accepts TCP (the kernel completes the handshake) but never answers.

While usable, an idle connection is PINGed every ``health_interval``; a
PING (like any command) unanswered within ``timeout`` drops the connection,
so a half-open socket is found within ``health_interval + timeout``.

An outage is logged twice: one warning when it starts (the connection is
lost, or cannot be made at start), saying why, and one line when it ends,
with its length. Failed attempts in between are logged at debug level
only (ClientService's own per-attempt lines included), except when Redis
answers but refuses the setup with a new reason (it came back with a
different password): that is worth a warning of its own.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.application.internet import ClientService
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IProtocol, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import ILogObserver, Logger, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from ..exceptions import RedisError, RedisReplyError, RedisUnavailable
from .backoff import Backoff
from .endpoints import endpoint_for
from .protocol import RedisProtocol
from .stats import RedisStats
from .url import RedisConfig

__all__ = ["RedisLink"]

_log = Logger(namespace="ratchetpy.redis")


def _as_debug(event: dict[str, Any]) -> None:
    event["log_level"] = LogLevel.debug
    globalLogPublisher(event)


class _QuietClientService(ClientService):
    # ClientService logs every retry at info level; during an outage that is
    # a line per attempt. RedisLink logs the outage itself, so ClientService's
    # lines go out at debug level.
    _log = Logger(observer=cast(ILogObserver, _as_debug))


@implementer(IStreamClientEndpoint)
class _ObservedEndpoint:
    """An endpoint that reports failed connection attempts to ``failed``."""

    def __init__(self, endpoint: IStreamClientEndpoint, failed: Any) -> None:
        self.endpoint = endpoint
        self.failed = failed

    def connect(self, factory: Any) -> defer.Deferred[IProtocol]:
        def report(failure: Failure) -> Failure:
            self.failed(failure)
            return failure

        connecting: defer.Deferred[IProtocol] = self.endpoint.connect(factory)
        return connecting.addErrback(report)


class RedisLink(Service):
    """
    One kept-alive, set-up Redis connection (a Twisted ``Service``).

    Args:
        config: where Redis is and how to talk to it.
        reactor: the reactor (clock and network).
        endpoint: connect here instead of the endpoint ``config`` describes
            (tests use in-memory ones).
        backoff: the reconnection waits (default ``Backoff()``: 0.5 s growing to 30 s).
    """

    role = "redis"
    """What this connection is for, in log lines ("commands", "pubsub")."""

    def __init__(
        self,
        config: RedisConfig,
        reactor: Any,
        *,
        endpoint: IStreamClientEndpoint | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.reactor = reactor
        self.stats = RedisStats()
        self.backoff = backoff or Backoff()
        self.protocol: RedisProtocol | None = None
        self._latest: RedisProtocol | None = None
        self._down_since: float | None = None
        self._logged_reason: str | None = None
        self._ever_usable = False
        self._setname_warned = False
        self._health: LoopingCall | None = None
        factory = Factory.forProtocol(self._build)
        factory.noisy = False  # no "Starting factory" line per reconnection attempt
        self._service = _QuietClientService(
            _ObservedEndpoint(endpoint or endpoint_for(config, reactor), self._attempt_failed),
            factory,
            retryPolicy=self.backoff,
            clock=reactor,
        )

    @property
    def connected(self) -> bool:
        """True while a set-up connection is usable."""
        return self.protocol is not None and self.protocol.usable

    @property
    def outage_started(self) -> float | None:
        """Reactor seconds when the current outage began; None when there is none."""
        return self._down_since

    # -- service --------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        self._service.startService()
        if self.config.health_interval > 0:
            self._health = LoopingCall(self._probe)
            self._health.clock = self.reactor
            self._health.start(self.config.health_interval, now=False)

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        if self._health is not None and self._health.running:
            self._health.stop()
        self._health = None
        stopped: defer.Deferred[None] = self._service.stopService()
        latest = self._latest
        if latest is not None and latest.open:
            # a paused or unreachable server may never let a clean close finish
            guard = self.reactor.callLater(
                self.config.timeout, latest.abort, RedisUnavailable("client stopped")
            )

            def unguard(result: object) -> object:
                if guard.active():
                    guard.cancel()
                return result

            stopped.addBoth(unguard)
        return stopped

    # -- connections ----------------------------------------------------------

    def _build(self) -> RedisProtocol:
        return RedisProtocol(
            self.reactor,
            self.config.timeout,
            self.config.address,
            on_connected=self._connected,
            on_lost=self._lost,
            on_push=self._push,
            on_timeout=self._timed_out,
        )

    def _connected(self, protocol: RedisProtocol) -> None:
        self._latest = protocol
        setup = self._setup(protocol)
        setup.addCallback(lambda _: self._prepare(protocol))
        setup.addCallbacks(
            lambda _: self._usable(protocol), lambda f: self._setup_failed(protocol, f)
        )

    def _setup(self, protocol: RedisProtocol) -> defer.Deferred[Any]:
        config, timeout = self.config, self.config.connect_timeout
        steps: list[defer.Deferred[Any]] = []
        if config.password is not None:
            credentials = (
                (config.username, config.password) if config.username else (config.password,)
            )
            steps.append(protocol.command("AUTH", *credentials, timeout=timeout))
        if config.db:
            steps.append(protocol.command("SELECT", config.db, timeout=timeout))
        if config.client_name:
            steps.append(
                protocol.command(
                    "CLIENT", "SETNAME", config.client_name, timeout=timeout
                ).addErrback(self._setname_failed)
            )
        if not steps:
            # nothing to send, but the connection must still prove it answers
            steps.append(protocol.command("PING", timeout=timeout))
        return defer.gatherResults(steps, consumeErrors=True)

    def _setname_failed(self, failure: Failure) -> None:
        # an ACL user may lack +client; the name only helps CLIENT LIST readers
        failure.trap(RedisReplyError)
        if not self._setname_warned:
            self._setname_warned = True
            _log.warn(
                "Redis {role} connection to {address}: CLIENT SETNAME refused ({message}); going on unnamed",
                role=self.role,
                address=self.config.address,
                message=failure.getErrorMessage(),
            )

    def _prepare(self, protocol: RedisProtocol) -> defer.Deferred[Any]:
        """A subclass's last setup step before the connection is usable."""
        return defer.succeed(None)

    def _setup_failed(self, protocol: RedisProtocol, failure: Failure) -> None:
        error = failure.value
        if isinstance(error, defer.FirstError):
            error = error.subFailure.value
        if isinstance(error, RedisReplyError):
            reason = f"Redis refused the connection's setup: {error.message} (check the URL's user, password and db)"
        elif isinstance(error, RedisError):
            reason = str(error)
        else:
            _log.failure("Redis {role} connection setup failed", failure, role=self.role)
            reason = f"setup failed: {failure.getErrorMessage()}"
        self._outage(reason, refused=isinstance(error, RedisReplyError))
        protocol.abort(error if isinstance(error, RedisError) else RedisUnavailable(reason))

    def _usable(self, protocol: RedisProtocol) -> None:
        if not protocol.usable:
            return  # lost during the last step; the loss started the outage
        self.protocol = protocol
        self.stats.connected = 1
        self.backoff.reset()
        was_down, self._down_since, self._logged_reason = self._down_since, None, None
        reconnected = self._ever_usable
        self._ever_usable = True
        outage = None
        if was_down is not None:
            outage = self.reactor.seconds() - was_down
            _log.info(
                "Redis {role} connection to {address} is back after {outage_seconds:.1f} s",
                role=self.role,
                address=self.config.address,
                outage_seconds=outage,
            )
        elif not reconnected:
            _log.info(
                "Redis {role} connection to {address} is up",
                role=self.role,
                address=self.config.address,
            )
        self._became_usable(protocol, reconnected, outage)

    def _became_usable(
        self, protocol: RedisProtocol, reconnected: bool, outage: float | None
    ) -> None:
        """Hook: the connection is usable (``reconnected``: not the first time)."""

    def _became_unusable(self, reason: str) -> None:
        """Hook: the usable connection was lost."""

    def _gone(self, protocol: RedisProtocol) -> None:
        """Hook: ``protocol`` is closed, whether it was ever usable or not."""

    def _lost(self, protocol: RedisProtocol, reason: Failure) -> None:
        if protocol is self._latest:
            self._latest = None
        self._gone(protocol)
        if protocol is not self.protocol:
            return
        self.protocol = None
        self.stats.connected = 0
        if self.running:
            text = f"connection lost ({reason.getErrorMessage()})"
            if isinstance(protocol.broken, RedisError):
                text = str(protocol.broken)
            self._outage(text)
            self._became_unusable(text)

    def _attempt_failed(self, failure: Failure) -> None:
        if self.running:
            self._outage(f"cannot connect ({failure.getErrorMessage()})")

    def _outage(self, reason: str, refused: bool = False) -> None:
        if self._down_since is None:
            self._down_since = self.reactor.seconds()
            self.stats.outages += 1
            _log.warn(
                "Redis {role} connection to {address} unavailable: {reason}; "
                "reconnecting with backoff, commands fail fast until it is back",
                role=self.role,
                address=self.config.address,
                reason=reason,
            )
        elif refused and reason != self._logged_reason:
            # Redis answers but refuses (a new password?): worth a line of its own
            _log.warn(
                "Redis {role} connection to {address} still unavailable: {reason}",
                role=self.role,
                address=self.config.address,
                reason=reason,
            )
        else:
            _log.debug(
                "Redis {role} connection to {address}: attempt failed: {reason}",
                role=self.role,
                address=self.config.address,
                reason=reason,
            )
            return
        self._logged_reason = reason

    def _timed_out(self) -> None:
        self.stats.timeouts += 1

    def _push(self, message: list[Any]) -> None:
        """Hook: a pub/sub message arrived (``Subscriber``)."""

    def _probe(self) -> None:
        protocol = self.protocol
        if protocol is not None and protocol.pending == 0:
            # the reply itself does not matter: no reply in time drops the connection
            protocol.command("PING").addErrback(lambda _: None)
