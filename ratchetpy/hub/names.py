# -*- test-case-name: tests.hub.test_hub -*-
"""
The values the hub hands out and checks: channel and user names,
``Member`` (presence) and ``ClientInfo`` (``client_info``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from ..exceptions import HubError

__all__ = ["MAX_NAME_LENGTH", "check_name", "Member", "ClientInfo"]

MAX_NAME_LENGTH = 255
"""Longest channel or user name, in characters."""


def check_name(kind: str, name: object) -> str:
    """
    ``name`` as a channel or user name, or ``HubError`` saying what is wrong.

    A name is a non-empty string of at most ``MAX_NAME_LENGTH`` characters
    with no control characters (ints are accepted for users and turned
    into their decimal string, as Swoole binds integer uids).
    """
    if isinstance(name, int) and not isinstance(name, bool) and kind == "user":
        name = str(name)
    if not isinstance(name, str):
        raise HubError(f"a {kind} name must be a string, not {type(name).__name__}")
    if not name:
        raise HubError(f"a {kind} name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise HubError(f"a {kind} name must be at most {MAX_NAME_LENGTH} characters, not {len(name)}")
    if not name.isprintable():
        raise HubError(f"a {kind} name must not hold control characters: {name!r}")
    return name


class Member(NamedTuple):
    """One connection present in a channel: its id and the user bound to it."""

    id: str
    user: str | None


@dataclass(frozen=True)
class ClientInfo:
    """
    What the hub knows of one connection (Swoole's ``getClientInfo``).

    Times are Unix timestamps (seconds); ``last_activity`` is when the
    client last sent a message (the open, if it never did). Bytes are on
    the wire, frame headers included. ``buffered_bytes`` is what the
    kernel has not taken yet.
    """

    id: str
    node: str
    remote_address: str | None
    route: str | None
    user: str | None
    channels: tuple[str, ...]
    connected_at: float
    last_activity: float
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    buffered_bytes: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__} | {
            "channels": list(self.channels)
        }


