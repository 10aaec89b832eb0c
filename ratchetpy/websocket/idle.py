# -*- test-case-name: tests.websocket.test_idle -*-
"""
The idle timeout: close WebSocket clients that have sent nothing for a while.

A client whose last message (or, if configured, last pong) is
``idle_timeout`` seconds old is closed with ``1001 Going Away`` (reason
"Idle timeout"); its component's ``on_close`` runs once the closing
handshake ends (or ``close_timeout`` later, if the client never answers).

What counts as activity: every message received. Pongs count only with
``idle_counts_pongs=True``: browsers answer the server's keepalive pings by
themselves, so counting them would keep an abandoned tab connected forever.
Pings a client sends never count, for the same reason (client libraries
send them on a timer).

One timer per server, not one per connection: ``IdleSweeper`` wakes up when
the oldest connection's time is up, closes every connection idle for
``idle_timeout`` seconds, and sleeps until the next one's time, at least a
tenth of the timeout later, so sweeps (each a pass over the open
connections) stay rare. A client is thus closed between ``idle_timeout``
and 1.1 x ``idle_timeout`` seconds after its last activity. The timer runs
only while the server has open connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from ._engine import STATE_OPEN

if TYPE_CHECKING:
    from .protocol import WsServerProtocol

__all__ = ["IdleSweeper", "IDLE_CLOSE_CODE", "IDLE_CLOSE_REASON", "SWEEP_FRACTION"]

IDLE_CLOSE_CODE = 1001
IDLE_CLOSE_REASON = "Idle timeout"

SWEEP_FRACTION = 0.1
"""Sweeps are at least this fraction of the timeout apart."""

_log = Logger(namespace="ratchetpy.websocket")


class IdleSweeper:
    """
    Closes the idle connections of one ``WsServer``.

    Args:
        timeout: seconds without activity before a connection is closed.
        connections: returns the server's open connections (protocols with
            ``last_activity``, ``state`` and ``close_with``).
        reactor: returns the reactor to schedule on (the server's, known
            once its first connection arrived).
    """

    def __init__(
        self,
        timeout: float,
        connections: Callable[[], Iterable[WsServerProtocol]],
        reactor: Callable[[], Any],
    ) -> None:
        self.timeout = timeout
        self._connections = connections
        self._reactor = reactor
        self._call: IDelayedCall | None = None
        self._at = 0.0

    @property
    def running(self) -> bool:
        """True while a sweep is scheduled."""
        return self._call is not None

    def opened(self, protocol: WsServerProtocol) -> None:
        """A connection opened: make sure a sweep comes by its deadline."""
        deadline = protocol.last_activity + self.timeout
        if self._call is None or deadline < self._at:
            self._schedule(deadline)

    def closed(self, remaining: int) -> None:
        """A connection closed, ``remaining`` are still open: stop when none are."""
        if remaining == 0:
            self.stop()

    def stop(self) -> None:
        """Cancel the next sweep."""
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _schedule(self, at: float) -> None:
        self.stop()
        reactor = self._reactor()
        self._at = at
        self._call = reactor.callLater(max(0.0, at - reactor.seconds()), self._sweep)

    def _sweep(self) -> None:
        self._call = None
        reactor = self._reactor()
        now = reactor.seconds()
        cutoff = now - self.timeout
        idle: list[WsServerProtocol] = []
        oldest: float | None = None
        count = 0
        for protocol in self._connections():
            count += 1
            if protocol.state != STATE_OPEN:
                continue  # closing already
            last = protocol.last_activity
            if last <= cutoff:
                idle.append(protocol)
            elif oldest is None or last < oldest:
                oldest = last
        for protocol in idle:
            protocol.close_with(IDLE_CLOSE_CODE, IDLE_CLOSE_REASON)
        if idle:
            _log.info(
                "Closing {count} idle WebSocket connection(s) with 1001: nothing received "
                "for {timeout:g} s (idle_timeout, --idle-timeout)",
                count=len(idle),
                timeout=self.timeout,
            )
        if count == 0:
            return
        # Closing ones are still counted: check again once a timeout later,
        # by when they are gone (their close_timeout) or the server stopped.
        at = now + self.timeout if oldest is None else oldest + self.timeout
        self._schedule(max(at, now + self.timeout * SWEEP_FRACTION))
