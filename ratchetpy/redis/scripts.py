# -*- test-case-name: tests.redis.test_client_memory -*-
"""
``Script``: a Lua script and its SHA1, for ``RedisClient.evalsha_or_eval``.

Redis caches scripts by SHA1 (EVALSHA) but forgets them on restart, on
``SCRIPT FLUSH`` and on failover to a replica that never saw them; the
client then sends the source once with EVAL, which caches it again.
"""

from __future__ import annotations

import hashlib

__all__ = ["Script"]


class Script:
    """A Lua script; ``sha1`` is what EVALSHA names it by."""

    __slots__ = ("source", "sha1")

    def __init__(self, source: str | bytes) -> None:
        self.source = source.encode() if isinstance(source, str) else bytes(source)
        self.sha1 = hashlib.sha1(self.source).hexdigest()  # Redis names scripts by SHA1

    def __repr__(self) -> str:
        return f"Script(sha1={self.sha1})"
