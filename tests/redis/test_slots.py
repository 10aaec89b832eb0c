"""hash_slot: Redis Cluster's key slots, checked against published values."""

from __future__ import annotations

from ratchetpy.redis.slots import crc16, hash_slot


def test_crc16_check_value() -> None:
    assert crc16(b"123456789") == 0x31C3  # CRC-16/XMODEM's check value


def test_slots_of_known_keys() -> None:
    # values from the Redis Cluster specification and CLUSTER KEYSLOT
    assert hash_slot("foo") == 12182
    assert hash_slot(b"bar") == 5061
    assert hash_slot("123456789") == 0x31C3 % 16384


def test_hash_tags() -> None:
    assert (
        hash_slot("{user1000}.following")
        == hash_slot("{user1000}.followers")
        == hash_slot("user1000")
    )
    assert hash_slot("foo{}{bar}") == crc16(b"foo{}{bar}") % 16384  # an empty tag is no tag
    assert hash_slot("foo{{bar}}zap") == hash_slot("{bar")  # the first { to the first } after it
