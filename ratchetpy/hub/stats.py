# -*- test-case-name: tests.hub.test_stats -*-
"""
``ServerStats``: what a server counts, for ``Hub.stats()``, ``client_info``
and the Prometheus metrics.

Nothing here runs per message. Traffic (messages and bytes in and out) is
read from each open connection's own counters (``WsServerProtocol.traffic``)
when someone asks, and folded into running
totals when a connection closes; the data path pays nothing for it. Events
that are rare by nature (a connection opened or closed, a refusal, a
backpressure episode, a push, a publish API request) are counted as they
happen.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "ServerStats",
    "Traffic",
    "TrafficSource",
    "REFUSAL_REASONS",
    "refusal_reason",
    "traffic_of",
]

REFUSAL_REASONS: dict[int, str] = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    426: "upgrade_required",
    431: "head_too_large",
    500: "server_error",
    503: "unavailable",
    505: "http_version",
}
"""The reason a refusal is counted under when its code gives none more precise."""


def refusal_reason(status: int) -> str:
    """The default reason for a refusal with HTTP ``status``."""
    return REFUSAL_REASONS.get(status, f"http_{status}")


class TrafficSource(Protocol):
    """Anything that counts its traffic (a WebSocket protocol)."""

    def traffic(self) -> Traffic: ...


@dataclass(frozen=True)
class Traffic:
    """Messages and bytes (on the wire, frame headers included) in and out."""

    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.messages_in + other.messages_in,
            self.bytes_in + other.bytes_in,
            self.messages_out + other.messages_out,
            self.bytes_out + other.bytes_out,
        )


def traffic_of(source: object) -> Traffic:
    """One connection's traffic so far, from its protocol's counters."""
    traffic = getattr(source, "traffic", None)
    return traffic() if traffic is not None else Traffic()


class ServerStats:
    """
    Counters for one server (one ``App``, or one ``WsServer`` on its own).

    Attributes:
        accepted: WebSocket connections opened (handshake completed).
        closed: connections closed, by close code (1006: lost without a
            closing handshake).
        refused: handshakes refused, by reason (``"not_found"``,
            ``"forbidden"``, ``"max_connections"``, ...).
        refused_status: the same refusals by HTTP status.
        refusals: the same refusals by ``(status, reason)`` (the metrics'
            labels).
        backpressure: send-buffer overflows, by the policy applied
            (``"close"``, ``"drop"``, ``"notify"``).
        pushes: hub deliveries to one client or user, ``"delivered"`` and
            ``"missed"`` (unknown or closing id).
        api_requests: publish API requests, by HTTP status.
    """

    def __init__(self) -> None:
        self.accepted = 0
        self.closed: Counter[int] = Counter()
        self.refused: Counter[str] = Counter()
        self.refused_status: Counter[int] = Counter()
        self.refusals: Counter[tuple[int, str]] = Counter()
        self.backpressure: Counter[str] = Counter()
        self.pushes: Counter[str] = Counter()
        self.api_requests: Counter[int] = Counter()
        self._live: set[TrafficSource] = set()
        self._closed_traffic = Traffic()

    # -- events ----------------------------------------------------------

    def connection_opened(self, source: TrafficSource) -> None:
        """A WebSocket connection completed its handshake."""
        self.accepted += 1
        self._live.add(source)

    def connection_closed(self, source: TrafficSource, code: int) -> None:
        """A connection counted by ``connection_opened`` closed with ``code``."""
        if source in self._live:
            self._live.discard(source)
            self._closed_traffic = self._closed_traffic + traffic_of(source)
            self.closed[code] += 1

    def refusal(self, status: int, reason: str | None = None) -> None:
        """A connection was refused with HTTP ``status`` (before any WebSocket)."""
        reason = reason or refusal_reason(status)
        self.refused[reason] += 1
        self.refused_status[status] += 1
        self.refusals[(status, reason)] += 1

    def backpressure_event(self, policy: str) -> None:
        """A client's send buffer overflowed and ``policy`` applied."""
        self.backpressure[policy] += 1

    def pushed(self, delivered: int = 0, missed: int = 0) -> None:
        """Hub pushes to single clients or users: delivered and missed."""
        if delivered:
            self.pushes["delivered"] += delivered
        if missed:
            self.pushes["missed"] += missed

    def api_request(self, status: int) -> None:
        """A publish API request was answered with ``status``."""
        self.api_requests[status] += 1

    # -- reading ---------------------------------------------------------

    @property
    def open(self) -> int:
        """WebSocket connections open now."""
        return len(self._live)

    def traffic(self) -> Traffic:
        """Traffic of every connection so far: closed ones plus the open ones now."""
        # Plain int sums: this runs over every open connection at each
        # scrape, where Traffic additions cost twice as much.
        closed = self._closed_traffic
        messages_in, bytes_in = closed.messages_in, closed.bytes_in
        messages_out, bytes_out = closed.messages_out, closed.bytes_out
        for source in self._live:
            traffic = source.traffic()
            messages_in += traffic.messages_in
            bytes_in += traffic.bytes_in
            messages_out += traffic.messages_out
            bytes_out += traffic.bytes_out
        return Traffic(messages_in, bytes_in, messages_out, bytes_out)

    def snapshot(self) -> dict[str, Any]:
        """Everything above as plain JSON-ready values."""
        traffic = self.traffic()
        return {
            "open": self.open,
            "accepted": self.accepted,
            "closed": {str(code): n for code, n in sorted(self.closed.items())},
            "messages_in": traffic.messages_in,
            "messages_out": traffic.messages_out,
            "bytes_in": traffic.bytes_in,
            "bytes_out": traffic.bytes_out,
            "refused": dict(sorted(self.refused.items())),
            "backpressure": dict(sorted(self.backpressure.items())),
            "pushes": {"delivered": self.pushes["delivered"], "missed": self.pushes["missed"]},
            "api_requests": {str(status): n for status, n in sorted(self.api_requests.items())},
        }
