# -*- test-case-name: tests.redis.test_client_memory -*-
"""
``RedisStats``: what one Redis connection counts, for logs and metrics.

Counted as events happen, never per byte: ``commands`` sent,
``failures`` (commands that got no reply: Redis down, too many pending,
timeout, connection lost), ``errors`` (error replies), ``timeouts``
(connections dropped for not answering), ``outages`` (times the connection
went from usable to unusable, or could not be made at start),
``connected`` (1 while usable, a gauge) and, on a ``Subscriber``,
``messages`` received.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["RedisStats"]


@dataclass
class RedisStats:
    """Counters of one Redis connection; ``as_dict()`` for metrics."""

    commands: int = 0
    failures: int = 0
    errors: int = 0
    timeouts: int = 0
    outages: int = 0
    connected: int = 0
    messages: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return asdict(self)
