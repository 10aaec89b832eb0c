# -*- test-case-name: tests.server.test_backlog -*-
"""
The listen backlog: how many accepted-by-the-kernel connections may wait
for the server to take them.

Twisted listens with a backlog of 50. When a server restarts, or a network
blip drops everyone, all clients reconnect at once; beyond 50 waiting
connections the kernel drops SYNs, and each dropped client retries 1, 3,
7 s later (3,000 reconnecting clients saw 2,294 drops). ratchetpy listens
with ``DEFAULT_BACKLOG`` instead, on every endpoint it builds and on
``tcp:``/``tcp6:``/``ssl:``/``unix:`` descriptions that give no
``backlog=`` of their own (an explicit one always wins). Sockets handed
over already listening (``systemd:``) keep the backlog their owner chose
(``Backlog=`` in the socket unit).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint

__all__ = ["DEFAULT_BACKLOG", "server_from_string"]

DEFAULT_BACKLOG = 4096
"""
The listen backlog ratchetpy asks for.

4096 holds a reconnect burst of thousands of clients. It is Linux's default
``net.core.somaxconn`` since 5.4, and the kernel silently caps any backlog
at that sysctl (macOS at ``kern.ipc.somaxconn``), so asking for more than
the system allows is harmless: raise the sysctl to go higher. Not
``socket.SOMAXCONN``: that is a C header constant (128 on macOS and older
glibc, 2**31-1 on Windows), not the system's limit.
"""

# Twisted leaves serverFromString unannotated; this is its documented type.
_parse: Callable[[Any, str], IStreamServerEndpoint] = serverFromString

# Twisted's own server parsers that take a backlog= argument.
_KINDS_WITH_BACKLOG = frozenset({"tcp", "tcp6", "ssl", "unix"})


def _keywords(description: str) -> tuple[str, set[str]]:
    """The endpoint kind and the keyword names of ``description`` (``\\`` escapes)."""
    fields: list[str] = [""]
    escaped = False
    for char in description:
        if escaped:
            fields[-1] += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("")
        else:
            fields[-1] += char
    names = set()
    for field in fields[1:]:
        name, equals, _ = field.partition("=")
        if equals and "\\" not in name:
            names.add(name)
    return fields[0].lower(), names


def server_from_string(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    ``serverFromString``, with ``backlog=DEFAULT_BACKLOG`` unless given.

    Only Twisted's ``tcp``, ``tcp6``, ``ssl`` and ``unix`` endpoints get the
    default; other plugins' descriptions are passed through unchanged.

    Raises:
        ValueError: whatever ``serverFromString`` raises for a bad
            ``description`` (its errors pass through unchanged).
    """
    kind, keywords = _keywords(description)
    if kind in _KINDS_WITH_BACKLOG and "backlog" not in keywords:
        try:
            return _parse(reactor, f"{description}:backlog={DEFAULT_BACKLOG}")
        except Exception:  # noqa: BLE001 - re-parsed below, which raises the user's error
            # The backlog was given positionally, or the description is bad:
            # parsing it as given keeps the user's value or reports their error.
            pass
    return _parse(reactor, description)
