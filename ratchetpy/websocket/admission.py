# -*- test-case-name: tests.websocket.test_admission -*-
"""
Connection limits: how many WebSocket connections a server takes, in all
and from one address.

An ``Admission`` counts the WebSocket connections a server holds, from the
moment ``WsServer`` accepts a handshake until the connection is gone
(however it ends: closing handshake, drop, a handshake that never
completes). A request over a limit is refused before the WebSocket
handshake with ``503 Service Unavailable`` and ``Retry-After``, so
well-behaved clients back off instead of retrying at once.

``App`` gives every route one ``Admission``, so its limits are global; a
``WsServer`` on its own makes its own from its options. A route's own
``WsServer`` limits, when it has some, apply on top of the ``App``'s (the
route's ``Admission`` has the ``App``'s as ``parent``).

The per-address limit counts by **IP address**: an IPv4-mapped IPv6 peer
(``::ffff:192.0.2.7``, from a dual-stack socket) counts as its IPv4
address, IPv6 addresses count each on their own (a client holding a whole
/64 can open that many times the limit). Behind a reverse proxy every
client arrives from the proxy's address, so the per-address limit then
limits the proxy: set it there instead. Peers without an IP address
(UNIX sockets) are counted only against the total.

Refusals are logged once per burst: a warning at the first refusal, naming
the limit and the fix, then one summary line once no connection has been
refused for ``burst_quiet`` seconds (or when the server stops), never a
line per refused client. Each refusal is also counted in the server's
``ServerStats.refused`` (``"max_connections"``, ``"max_connections_per_ip"``).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from ..exceptions import ConfigurationError

__all__ = [
    "Admission",
    "Refusal",
    "Slot",
    "address_key",
    "DEFAULT_RETRY_AFTER",
    "BURST_QUIET",
]

DEFAULT_RETRY_AFTER = 5
"""Seconds a refused client is told to wait (``Retry-After``)."""

BURST_QUIET = 10.0
"""Seconds without a refusal that end a burst (and log its summary)."""

MAX_CONNECTIONS = "max_connections"
MAX_CONNECTIONS_PER_IP = "max_connections_per_ip"

_FIX = {
    MAX_CONNECTIONS: "raise max_connections (--max-connections) if the server can take more",
    MAX_CONNECTIONS_PER_IP: (
        "raise max_connections_per_ip (--max-connections-per-ip) if clients share addresses "
        "(NAT, a reverse proxy: then limit at the proxy)"
    ),
}

_log = Logger(namespace="ratchetpy.websocket")


def address_key(remote_address: str) -> str | None:
    """
    The key a peer is counted under for the per-address limit.

    Args:
        remote_address: ``conn.remote_address`` (a host, IPv6 without
            brackets).

    Returns:
        The address in canonical form (IPv6 compressed, lower case; an
        IPv4-mapped IPv6 address as its IPv4 address), or ``None`` for a
        peer with no IP address (a UNIX socket).
    """
    try:
        ip = ipaddress.ip_address(remote_address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _limit(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int or None (no limit), not {value!r}")
    return value


@dataclass(frozen=True)
class Refusal:
    """
    Why a connection was not admitted.

    Attributes:
        reason: ``"max_connections"`` or ``"max_connections_per_ip"`` (the
            name it is counted under in ``ServerStats.refused``).
        limit: the limit that was reached.
        retry_after: seconds the client is told to wait.
    """

    reason: str
    limit: int
    retry_after: int

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The response headers of the 503."""
        return [("Retry-After", str(self.retry_after))]


class Slot:
    """One admitted connection's place; ``release()`` gives it back (once)."""

    __slots__ = ("_admission", "_key", "_parent")

    def __init__(self, admission: Admission, key: str | None, parent: Slot | None) -> None:
        self._admission: Admission | None = admission
        self._key = key
        self._parent = parent

    def release(self) -> None:
        """Give the place back; later calls do nothing."""
        admission, self._admission = self._admission, None
        if admission is None:
            return
        admission._release(self._key)
        if self._parent is not None:
            self._parent.release()


class Admission:
    """
    Counts WebSocket connections and refuses those over the limits.

    Args:
        max_connections: most connections at once (open or still in their
            handshake); ``None``: no limit.
        max_connections_per_ip: most connections at once from one IP
            address; ``None``: no limit.
        retry_after: seconds a refused client is told to wait
            (``Retry-After``), a positive int.
        burst_quiet: seconds without a refusal after which a burst of
            refusals is over and its summary logged.
        parent: another ``Admission`` (an ``App``'s) whose limits apply
            too; a connection takes a place in both.

    Attributes:
        open: connections holding a place now.
    """

    def __init__(
        self,
        max_connections: int | None = None,
        max_connections_per_ip: int | None = None,
        *,
        retry_after: int = DEFAULT_RETRY_AFTER,
        burst_quiet: float = BURST_QUIET,
        parent: Admission | None = None,
    ) -> None:
        self.max_connections = _limit("max_connections", max_connections)
        self.max_connections_per_ip = _limit("max_connections_per_ip", max_connections_per_ip)
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 1:
            raise ConfigurationError(
                f"retry_after must be a positive int (seconds, Retry-After), not {retry_after!r}"
            )
        self.retry_after = retry_after
        if (
            isinstance(burst_quiet, bool)
            or not isinstance(burst_quiet, (int, float))
            or not 0 < burst_quiet < float("inf")
        ):
            raise ConfigurationError(f"burst_quiet must be a positive number of seconds, not {burst_quiet!r}")
        self.burst_quiet = float(burst_quiet)
        self.parent = parent
        self.open = 0
        self._per_address: dict[str, int] = {}
        # The burst of refusals being logged (see _refused).
        self._reactor: Any = None
        self._burst: Counter[str] = Counter()
        self._burst_start = 0.0
        self._last_refusal = 0.0
        self._burst_timer: IDelayedCall | None = None

    @property
    def limited(self) -> bool:
        """True when this ``Admission`` or a parent has any limit."""
        own = self.max_connections is not None or self.max_connections_per_ip is not None
        return own or (self.parent is not None and self.parent.limited)

    def count_for(self, remote_address: str) -> int:
        """Connections holding a place now from ``remote_address``'s IP address."""
        key = address_key(remote_address)
        return 0 if key is None else self._per_address.get(key, 0)

    def admit(self, remote_address: str, reactor: Any) -> Slot | Refusal:
        """
        Take a place for a connection from ``remote_address``, or refuse it.

        Args:
            remote_address: the peer's host (``conn.remote_address``).
            reactor: the reactor the burst log's timer runs on.

        Returns:
            A ``Slot`` to ``release()`` once the connection is gone, or the
            ``Refusal`` (already logged as part of its burst).
        """
        key = address_key(remote_address) if self.max_connections_per_ip is not None else None
        refusal = self._check(key)
        if refusal is not None:
            self._refused(refusal, remote_address, reactor)
            return refusal
        parent_slot: Slot | None = None
        if self.parent is not None:
            outcome = self.parent.admit(remote_address, reactor)
            if isinstance(outcome, Refusal):
                return outcome
            parent_slot = outcome
        self.open += 1
        if key is not None:
            self._per_address[key] = self._per_address.get(key, 0) + 1
        return Slot(self, key, parent_slot)

    def _check(self, key: str | None) -> Refusal | None:
        if self.max_connections is not None and self.open >= self.max_connections:
            return Refusal(MAX_CONNECTIONS, self.max_connections, self.retry_after)
        limit = self.max_connections_per_ip
        if limit is not None and key is not None and self._per_address.get(key, 0) >= limit:
            return Refusal(MAX_CONNECTIONS_PER_IP, limit, self.retry_after)
        return None

    def _release(self, key: str | None) -> None:
        self.open -= 1
        if key is not None:
            left = self._per_address[key] - 1
            if left:
                self._per_address[key] = left
            else:
                del self._per_address[key]

    # -- logging, once per burst ---------------------------------------------

    def _refused(self, refusal: Refusal, peer: str, reactor: Any) -> None:
        self._reactor = reactor
        now = reactor.seconds()
        self._last_refusal = now
        if not self._burst:
            self._burst_start = now
            _log.warn(
                "Refusing WebSocket connections with 503 (Retry-After: {retry_after}): "
                "{reason} ({limit}) reached, first from {peer}; {fix}. "
                "Further refusals are summed up once they stop",
                reason=refusal.reason,
                limit=refusal.limit,
                peer=peer,
                retry_after=refusal.retry_after,
                fix=_FIX[refusal.reason],
            )
        self._burst[refusal.reason] += 1
        if self._burst_timer is None:
            self._burst_timer = reactor.callLater(self.burst_quiet, self._burst_check)

    def _burst_check(self) -> None:
        self._burst_timer = None
        now = self._reactor.seconds()
        wait = self._last_refusal + self.burst_quiet - now
        if wait > 0:
            self._burst_timer = self._reactor.callLater(wait, self._burst_check)
            return
        self._end_burst(f"none for {self.burst_quiet:g} s")

    def flush(self) -> None:
        """End the current burst now: log its summary (``App`` calls this on stop)."""
        timer, self._burst_timer = self._burst_timer, None
        if timer is not None and timer.active():
            timer.cancel()
        if self._burst:
            self._end_burst("server stopping")
        if self.parent is not None:
            self.parent.flush()

    def _end_burst(self, why: str) -> None:
        burst, self._burst = self._burst, Counter()
        _log.info(
            "Refused {count} WebSocket connection(s) with 503 in {duration:.0f} s "
            "({detail}); burst over ({why})",
            count=sum(burst.values()),
            duration=self._last_refusal - self._burst_start,
            detail=", ".join(f"{reason}: {n}" for reason, n in sorted(burst.items())),
            refused=dict(burst),
            why=why,
        )
