"""
The local side of a subscription, shared by ``Subscriber`` and ``ClusterSubscriber``.

Both keep, per channel, the callbacks that asked for it: Redis is told to
subscribe when the first one arrives and to unsubscribe when the last one
leaves; the callbacks in between change nothing on the server.
"""

from __future__ import annotations

from typing import TypeVar

_K = TypeVar("_K")
_C = TypeVar("_C")

SHARDED_PATTERN = "Redis has no sharded pattern subscriptions: choose sharded or pattern"


def channel_name(channel: str | bytes) -> bytes:
    """The channel as Redis names it: ``str`` is UTF-8 encoded."""
    return channel.encode() if isinstance(channel, str) else bytes(channel)


def add_callback(interest: dict[_K, list[_C]], key: _K, callback: _C) -> bool:
    """Add ``callback`` under ``key``; True if it is the first there (subscribe on Redis)."""
    callbacks = interest.setdefault(key, [])
    callbacks.append(callback)
    return len(callbacks) == 1


def remove_callback(
    interest: dict[_K, list[_C]], key: _K, callback: _C, what: str
) -> bool:
    """
    Remove one ``callback`` under ``key``; True if it was the last (unsubscribe on Redis).

    The key is dropped with its last callback.

    Raises:
        ValueError: ``callback`` is not subscribed there; ``what`` names the channel.
    """
    callbacks = interest.get(key, [])
    if callback not in callbacks:
        raise ValueError(f"{callback!r} is not subscribed to {what}")
    callbacks.remove(callback)
    if callbacks:
        return False
    del interest[key]
    return True
