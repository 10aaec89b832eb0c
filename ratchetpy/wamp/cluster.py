# -*- test-case-name: tests.wamp.test_wamp_cluster -*-
"""
WAMP topics across processes: with a hub backplane (Redis), a
``Topic.broadcast`` on one node reaches the topic's subscribers on every
node, and PubSub code written for one process runs unchanged on many.

How it rides on the hub (``ratchetpy.hub.relay``):

- while a topic has a subscriber on a node, that node holds a node
  subscription (``hub.subscribe_channel``) to the topic's hub channel,
  ``channel_name(prefix, uri)``: ``"wamp:" + uri`` by default;
- ``Topic.broadcast`` encodes and frames the EVENT once, delivers it to
  the local subscribers, and hands the same text to ``hub.relay`` with
  the publish's ``exclude`` and ``eligible`` session ids; each node with
  subscribers gets it once, frames it once and delivers it to its own
  subscribers, filtered by those session ids. A relayed EVENT is never
  relayed again.
- When every ``eligible`` session is subscribed on this node, no other
  node can have one, and nothing is relayed.

Without a backplane nothing of this runs: ``Topic.broadcast`` is what it
always was.

Channel names: a hub channel name is at most ``MAX_NAME_LENGTH`` (255)
printable characters, and URIs may be longer (``max_uri_length`` is 2048
by default) or hold any character. A URI that fits, is printable and does
not start with ``#`` maps to ``prefix + uri``; any other to ``prefix + "#"
+ sha256(uri)`` in hex. The two forms cannot meet (a literal name never
has ``#`` right after the prefix), and every node computes the same name.
A prefix is a word without ``:`` or ``#``, then ``:`` (``"wamp:"``), so
names under two different prefixes never meet either.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ..exceptions import ConfigurationError
from ..hub.names import MAX_NAME_LENGTH

__all__ = [
    "DEFAULT_CHANNEL_PREFIX",
    "check_channel_prefix",
    "channel_name",
    "relay_meta",
    "read_meta",
]

DEFAULT_CHANNEL_PREFIX = "wamp:"
"""The hub channel prefix of WAMP topics (``"wamp:" + topic URI``)."""

_PREFIX = re.compile(r"[^:#]{1,63}:")


def check_channel_prefix(prefix: Any) -> str:
    """
    ``prefix`` as a topic channel prefix.

    Raises:
        ConfigurationError: it is not 1-63 printable characters other than
            ``:`` and ``#``, followed by ``:``.
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix) or not prefix.isprintable():
        raise ConfigurationError(
            f"channel_prefix must be a name of 1-63 printable characters without ':' "
            f"or '#', ending with ':' (like 'wamp:'), not {prefix!r}"
        )
    return prefix


def channel_name(prefix: str, uri: str) -> str:
    """The hub channel of the topic ``uri`` (see the module docs)."""
    if (
        len(prefix) + len(uri) <= MAX_NAME_LENGTH
        and uri.isprintable()
        and not uri.startswith("#")
    ):
        return prefix + uri
    digest = hashlib.sha256(uri.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}#{digest}"


def relay_meta(excluded: frozenset[str], allowed: frozenset[str]) -> dict[str, Any]:
    """What a relayed EVENT carries for the receiving nodes to filter on."""
    meta: dict[str, Any] = {}
    if excluded:
        meta["x"] = sorted(excluded)
    if allowed:
        meta["e"] = sorted(allowed)
    return meta


def read_meta(meta: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]] | None:
    """``(excluded, eligible)`` session ids from a relayed EVENT; ``None`` if malformed."""
    found = []
    for key in ("x", "e"):
        ids = meta.get(key, ())
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
            return None
        found.append(frozenset(ids))
    return found[0], found[1]
