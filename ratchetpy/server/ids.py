"""
Connection ids: ``conn.id``, unique across processes and hosts, unguessable.

An id has three dot-separated parts, ``<node>.<counter>.<secret>``:

- ``node``: this process's node id, 12 hex digits drawn at random when the
  process first needs one (or set with ``set_node_id`` before any
  connection, e.g. from configuration), so ids from different processes
  and hosts never collide and a backplane can tell which process holds a
  connection (``node_of(id)``);
- ``counter``: a per-process sequence number in hex, so ids of one process
  are unique even if the random part repeated;
- ``secret``: 96 random bits (16 URL-safe base64 characters) from
  ``secrets``: ids travel to browsers and back to backends, and knowing one
  id must not let anyone guess another.

``resource_id`` stays what Ratchet has: a small per-process int.
"""

from __future__ import annotations

import itertools
import re
import secrets

from ..exceptions import ConfigurationError

__all__ = ["new_connection_id", "node_id", "set_node_id", "node_of", "is_connection_id"]

SECRET_BYTES = 12
"""Random bytes in each id: 96 bits."""

_NODE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_ID = re.compile(r"([A-Za-z0-9_-]{1,64})\.([0-9a-f]+)\.([A-Za-z0-9_-]{16})\Z")

_node: str | None = None
_counter = itertools.count(1)


def node_id() -> str:
    """This process's node id (drawn at random on first use)."""
    global _node
    if _node is None:
        _node = secrets.token_hex(6)
    return _node


def set_node_id(node: str) -> None:
    """
    Use ``node`` as this process's node id (letters, digits, ``_``, ``-``;
    at most 64). Set it before the first connection: ids already handed
    out keep the old one.

    Raises:
        ConfigurationError: ``node`` is empty or has other characters.
    """
    global _node
    if not isinstance(node, str) or not _NODE.match(node):
        raise ConfigurationError(
            f"node id must be 1-64 letters, digits, '_' or '-', not {node!r}"
        )
    _node = node


def new_connection_id() -> str:
    """A fresh id, ``<node>.<counter>.<secret>``."""
    return f"{node_id()}.{next(_counter):x}.{secrets.token_urlsafe(SECRET_BYTES)}"


def is_connection_id(value: object) -> bool:
    """True if ``value`` has the shape of a connection id (it may not exist)."""
    return isinstance(value, str) and _ID.match(value) is not None


def node_of(connection_id: str) -> str | None:
    """The node part of ``connection_id``, or ``None`` if it is not an id."""
    match = _ID.match(connection_id) if isinstance(connection_id, str) else None
    return match.group(1) if match else None
