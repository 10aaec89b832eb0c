# -*- test-case-name: tests.redis.test_cluster_memory -*-
"""
Which slot a command goes to on a Redis Cluster (``command_slot``), and
where a ``MOVED``/``ASK`` reply sends it (``redirect_target``).

Keys are found by command: the first argument for most; every argument
for DEL, EXISTS, MGET and the like; every other one for MSET; the
declared keys of EVAL/EVALSHA/FCALL. Keyless commands (PING, PUBLISH,
CLUSTER, ...) may go to any node. MULTI/EXEC/WATCH and SELECT cannot work
through a client with a connection per shard and are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..exceptions import RedisClusterError, RedisReplyError
from .cluster_map import Address
from .protocol import Arg
from .slots import hash_slot

__all__ = ["as_bytes", "command_slot", "key_names", "redirect_target"]

_KEYLESS = frozenset(
    b"PING ECHO PUBLISH PUBSUB TIME INFO CLUSTER SCRIPT DBSIZE CONFIG CLIENT COMMAND "
    b"ASKING READONLY READWRITE RANDOMKEY SCAN KEYS WAIT FLUSHALL FLUSHDB LASTSAVE".split()
)
_ALL_KEYS = frozenset(
    b"DEL UNLINK EXISTS MGET TOUCH SUNION SINTER SDIFF SUNIONSTORE SINTERSTORE SDIFFSTORE "
    b"PFCOUNT PFMERGE RENAME RENAMENX".split()
)
_SCRIPTS = frozenset(b"EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO".split())
_UNSUPPORTED = frozenset(b"MULTI EXEC WATCH UNWATCH DISCARD SELECT".split())


def as_bytes(value: Arg) -> bytes:
    """An argument as Redis receives it."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, memoryview):
        return value.tobytes()
    return str(value).encode()


def key_names(args: Sequence[Arg]) -> list[bytes]:
    """The keys of a command (see the module docs)."""
    name = as_bytes(args[0]).upper()
    if name in _UNSUPPORTED:
        raise ValueError(
            f"{name.decode()} cannot work through a Redis Cluster client (each slot is another "
            "connection); use a Lua script whose keys share a {hash tag}"
        )
    if name in _KEYLESS or len(args) < 2:
        return []
    if name in _SCRIPTS:
        count = int(as_bytes(args[2])) if len(args) > 2 else 0
        return [as_bytes(a) for a in args[3 : 3 + count]]
    if name in _ALL_KEYS:
        return [as_bytes(a) for a in args[1:]]
    if name in (b"MSET", b"MSETNX"):
        return [as_bytes(a) for a in args[1::2]]
    return [as_bytes(args[1])]


def command_slot(args: Sequence[Arg]) -> int | None:
    """
    The slot a command must go to; None for a keyless command.

    Raises:
        RedisClusterError: its keys lie in different slots (``CROSSSLOT``).
        ValueError: a command a cluster client cannot run (MULTI, SELECT, ...).
    """
    keys = key_names(args)
    if not keys:
        return None
    slots = {key: hash_slot(key) for key in keys}
    if len(set(slots.values())) > 1:
        shown = ", ".join(
            f"{key.decode(errors='replace')} (slot {slot})" for key, slot in slots.items()
        )
        raise RedisClusterError(
            f"CROSSSLOT {as_bytes(args[0]).decode(errors='replace')}: its keys lie in different "
            f"cluster slots: {shown}; give them one {{hash tag}} so they share a slot",
            "CROSSSLOT",
        )
    return next(iter(slots.values()))


def redirect_target(error: RedisReplyError) -> tuple[int, Address] | None:
    """``(slot, (host, port))`` of a MOVED/ASK reply; None if it does not parse."""
    # "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381"
    parts = error.message.split()
    if len(parts) < 3:
        return None
    host, _, port = parts[2].rpartition(":")
    try:
        return int(parts[1]), (host.strip("[]"), int(port))
    except ValueError:
        return None
