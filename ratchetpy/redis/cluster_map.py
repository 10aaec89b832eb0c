# -*- test-case-name: tests.redis.test_cluster_map -*-
"""
``SlotMap``: which Redis Cluster primary serves each of the 16384 slots.

Read from ``CLUSTER SHARDS`` (Redis 7+) with ``SlotMap.from_shards``, or
``CLUSTER SLOTS`` (older servers) with ``SlotMap.from_slots``. A ``MOVED``
reply changes one slot at once (``move``) until the next full read.

Only primaries are kept: commands and sharded subscriptions go to the
primary that owns a slot. A node whose ``health`` is not ``online``
(``CLUSTER SHARDS``) is left out: its slots have no owner until a replica
is promoted, so commands for them fail fast instead of waiting on a dead
node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .slots import SLOTS

__all__ = ["Address", "SlotMap", "ranges"]

Address = tuple[str, int]
"""A cluster node as ``(host, port)``."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(flat: list[Any]) -> dict[str, Any]:
    return {_text(k): v for k, v in zip(flat[::2], flat[1::2], strict=False)}


def ranges(slots: Iterable[int]) -> str:
    """``slots`` as compact ranges for messages: ``0-5460,9000``."""
    out: list[str] = []
    ordered = sorted(slots)
    start = prev = None
    for slot in ordered:
        if start is None:
            start = prev = slot
        elif slot == prev + 1:  # type: ignore[operator]
            prev = slot
        else:
            out.append(f"{start}-{prev}" if start != prev else str(start))
            start = prev = slot
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else str(start))
    return ",".join(out)


class SlotMap:
    """The owner of every slot (``None`` where none is known)."""

    def __init__(self) -> None:
        self._owners: list[Address | None] = [None] * SLOTS

    @property
    def known(self) -> bool:
        """True once at least one slot has an owner."""
        return any(owner is not None for owner in self._owners)

    def owner(self, slot: int) -> Address | None:
        """The primary serving ``slot``, or None."""
        return self._owners[slot]

    def move(self, slot: int, address: Address) -> bool:
        """A MOVED reply: ``slot`` is now served by ``address``. True if that is news."""
        changed = self._owners[slot] != address
        self._owners[slot] = address
        return changed

    def primaries(self) -> set[Address]:
        """Every primary serving at least one slot."""
        return {owner for owner in self._owners if owner is not None}

    def slots_of(self, address: Address) -> list[int]:
        """The slots ``address`` serves."""
        return [slot for slot, owner in enumerate(self._owners) if owner == address]

    def uncovered(self) -> int:
        """How many slots have no owner."""
        return sum(1 for owner in self._owners if owner is None)

    def replace(self, other: SlotMap) -> set[int]:
        """Take ``other``'s owners; returns the slots whose owner changed."""
        changed = {s for s in range(SLOTS) if self._owners[s] != other._owners[s]}
        self._owners = list(other._owners)
        return changed

    def assign(self, start: int, end: int, address: Address) -> None:
        """``start``..``end`` (inclusive) are served by ``address``."""
        if not 0 <= start <= end < SLOTS:
            raise ValueError(f"slot range {start}-{end} is outside 0-{SLOTS - 1}")
        for slot in range(start, end + 1):
            self._owners[slot] = address

    @classmethod
    def from_shards(cls, reply: list[Any], tls: bool = False, fallback_host: str = "127.0.0.1") -> SlotMap:
        """
        Read a ``CLUSTER SHARDS`` reply (RESP2: each shard a flat
        ``slots, [start, end, ...], nodes, [[field, value, ...], ...]`` list).

        With ``tls`` the node's ``tls-port`` is used when it has one. A node
        whose endpoint is unknown (``?``) is reached at its ``ip``, or at
        ``fallback_host`` (the node that answered) when that is empty too.

        Raises:
            ValueError: the reply does not have that shape.
        """
        found = cls()
        for shard in reply:
            if not isinstance(shard, list):
                raise ValueError(f"CLUSTER SHARDS: a shard is not a list: {shard!r}")
            fields = _fields(shard)
            bounds = [int(b) for b in fields.get("slots") or []]
            primary: Address | None = None
            for node in fields.get("nodes") or []:
                info = _fields(node)
                if _text(info.get("role", "")) != "master":
                    continue
                if _text(info.get("health", "online")) != "online":
                    continue
                host = _text(info.get("endpoint") or "")
                if host in ("", "?"):
                    host = _text(info.get("ip") or "") or fallback_host
                port = info.get("tls-port") if tls and info.get("tls-port") else info.get("port")
                if port is None:
                    continue
                primary = (host, int(port))
            if primary is None:
                continue
            for start, end in zip(bounds[::2], bounds[1::2], strict=False):
                found.assign(start, end, primary)
        return found

    @classmethod
    def from_slots(cls, reply: list[Any], fallback_host: str = "127.0.0.1") -> SlotMap:
        """
        Read a ``CLUSTER SLOTS`` reply: ``[[start, end, [host, port, id, ...],
        replicas...], ...]``.

        Raises:
            ValueError: the reply does not have that shape.
        """
        found = cls()
        for entry in reply:
            if not isinstance(entry, list) or len(entry) < 3 or not isinstance(entry[2], list):
                raise ValueError(f"CLUSTER SLOTS: an entry is not [start, end, [host, port, ...]]: {entry!r}")
            host = _text(entry[2][0] or "")
            if host in ("", "?"):
                host = fallback_host
            found.assign(int(entry[0]), int(entry[1]), (host, int(entry[2][1])))
        return found
