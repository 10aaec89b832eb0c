# -*- test-case-name: tests.redis.test_slots -*-
"""
``hash_slot(key)``: the Redis Cluster hash slot (0-16383) of a key or shard
channel: CRC16 (XMODEM) of the key, or of its ``{hash tag}`` when it has a
non-empty one, modulo 16384.

Redis Cluster refuses an SSUBSCRIBE whose channels lie in different slots
(CROSSSLOT), so the ``Subscriber`` batches shard channels by slot.
"""

from __future__ import annotations

__all__ = ["hash_slot", "SLOTS"]

SLOTS = 16384


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_TABLE = _table()


def crc16(data: bytes) -> int:
    """CRC16/XMODEM (polynomial 0x1021, initial 0), as Redis Cluster uses."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def hash_slot(key: str | bytes) -> int:
    """The cluster slot of ``key`` (``str`` is taken as UTF-8)."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start != -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return crc16(data) % SLOTS
