# -*- test-case-name: tests.hub.test_envelope -*-
"""
What crosses Redis between nodes: the names of the Redis channels and
keys the hub uses, and the one message format they carry.

Redis channels (``P`` is the configured key prefix, ``ratchetpy:`` by
default; ``{...}`` is a Redis Cluster hash tag, so everything about one
channel or user lives in one slot):

=================================  ===========================================
``P`` ``ch:{<channel>}``           publications to a hub channel; a node is
                                   subscribed while it has a local member
``P`` ``user:{<user>}``            pushes to a user; a node is subscribed
                                   while it holds one of the user's connections
``P`` ``node:<node>``              messages for one node: a push to one of its
                                   connections, a disconnect, a question, and
                                   the answers to the questions it asked
``P`` ``relay:{<channel>}``        relays to a node subscription
                                   (``Hub.subscribe_channel``: WAMP topics); a
                                   node is subscribed while it has a receiver
=================================  ===========================================

Keys:

===================================  ===========================================
``P`` ``presence:{<channel>}``       hash: connection id -> ``{"user", "node"}``
``P`` ``presence-exp:{<channel>}``   sorted set: connection id -> expiry (Unix s)
``P`` ``upresence:{<user>}``         hash: connection id -> node
``P`` ``upresence-exp:{<user>}``     sorted set: connection id -> expiry
``P`` ``{nodes}``                    sorted set: node -> expiry
``P`` ``{nodes}:stats``              hash: node -> its ``local_stats()`` JSON
``P`` ``stream:{<channel>}``         stream: a channel's history (one entry per
                                     publication, id ``<offset>-0``)
``P`` ``meta:{<channel>}``           hash: the stream's epoch ``e`` and top
                                     offset ``s``
===================================  ===========================================

The message format (``Envelope``): one line of JSON, a newline, then the
payload bytes as they are (a text message's UTF-8, or binary), so a
message is never re-encoded on its way through Redis. Header fields:

==========  =================================================================
``k``       kind: ``pub`` (channel publication), ``user`` (push to a user),
            ``push`` (to one connection), ``disc`` (disconnect one),
            ``info`` (``client_info`` question), ``ack`` (an answer),
            ``rel`` (a relay to node subscriptions)
``n``       the node that sent it
``c``       the hub channel (``pub``, ``rel``) or user (``user``)
``o``       opcode of the payload: 1 text, 2 binary
``x``       connection ids not to deliver to (``exclude``)
``id``      the connection (``push``, ``disc``, ``info``)
``r``       request id: the sender wants an ``ack`` with the same ``r``
``d``       in an ``ack``: the answer (a count, a bool, a dict or null)
``code``    ``disc``: the close code; ``reason``: its reason
``m``       ``rel``: what the receivers filter on (a JSON object; WAMP puts
            the publish's ``exclude`` and ``eligible`` session ids there)
``off``     ``pub`` on a channel with history: the publication's offset in
            the channel's stream (``ratchetpy.hub.redis_history``)
``ep``      with ``off``: the stream's epoch
==========  =================================================================

A message that does not parse is counted and logged (once a minute at
most), and dropped: one bad publisher cannot break a node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Envelope",
    "EnvelopeError",
    "Names",
    "KINDS",
]

KINDS = frozenset({"pub", "user", "push", "disc", "info", "ack", "rel"})


class EnvelopeError(ValueError):
    """A message from Redis that is not a hub envelope."""


@dataclass
class Envelope:
    """One hub message crossing Redis (see the module docs for the fields)."""

    kind: str
    node: str
    header: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""

    def encode(self) -> bytes:
        header = {"k": self.kind, "n": self.node, **self.header}
        return json.dumps(header, separators=(",", ":")).encode() + b"\n" + self.payload

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        """
        Parse a message read from Redis.

        Raises:
            EnvelopeError: it is not an envelope (no header line, bad
                JSON, an unknown kind, a field of the wrong type).
        """
        line, newline, payload = data.partition(b"\n")
        if not newline:
            raise EnvelopeError("no header line")
        try:
            header = json.loads(line)
        except (UnicodeDecodeError, ValueError) as exc:
            raise EnvelopeError(f"header is not JSON: {exc}") from None
        if not isinstance(header, dict):
            raise EnvelopeError("header is not a JSON object")
        kind = header.pop("k", None)
        node = header.pop("n", None)
        if kind not in KINDS:
            raise EnvelopeError(f"unknown kind {kind!r}")
        if not isinstance(node, str) or not node:
            raise EnvelopeError("no sending node")
        opcode = header.get("o", 1)
        if opcode not in (1, 2):
            raise EnvelopeError(f"bad opcode {opcode!r}")
        exclude = header.get("x", [])
        if not isinstance(exclude, list) or not all(isinstance(i, str) for i in exclude):
            raise EnvelopeError("exclude is not a list of ids")
        for name in ("c", "id", "r", "reason", "ep"):
            if name in header and not isinstance(header[name], str):
                raise EnvelopeError(f"{name!r} is not a string")
        if "m" in header and not isinstance(header["m"], dict):
            raise EnvelopeError("'m' is not a JSON object")
        if "off" in header:
            offset = header["off"]
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 1:
                raise EnvelopeError(f"offset {offset!r} is not an int >= 1")
            if "ep" not in header or "c" not in header:
                raise EnvelopeError("an offset without its epoch or channel")
        return cls(kind, node, header, payload)

    @property
    def opcode(self) -> int:
        return int(self.header.get("o", 1))

    @property
    def exclude(self) -> frozenset[str]:
        return frozenset(self.header.get("x", ()))

    def message(self) -> str | bytes:
        """The payload as the message a connection sends: ``str`` for text."""
        if self.opcode == 1:
            try:
                return self.payload.decode("utf-8")
            except UnicodeDecodeError:
                raise EnvelopeError("text payload is not UTF-8") from None
        return self.payload


@dataclass(frozen=True)
class Names:
    """The Redis channel and key names for one prefix (see the module docs)."""

    prefix: str = "ratchetpy:"

    def channel(self, channel: str) -> str:
        return f"{self.prefix}ch:{{{channel}}}"

    def user(self, user: str) -> str:
        return f"{self.prefix}user:{{{user}}}"

    def node(self, node: str) -> str:
        return f"{self.prefix}node:{node}"

    def relay(self, channel: str) -> str:
        return f"{self.prefix}relay:{{{channel}}}"

    def presence(self, channel: str) -> tuple[str, str]:
        return f"{self.prefix}presence:{{{channel}}}", f"{self.prefix}presence-exp:{{{channel}}}"

    def stream(self, channel: str) -> str:
        return f"{self.prefix}stream:{{{channel}}}"

    def meta(self, channel: str) -> str:
        return f"{self.prefix}meta:{{{channel}}}"

    def user_presence(self, user: str) -> tuple[str, str]:
        return f"{self.prefix}upresence:{{{user}}}", f"{self.prefix}upresence-exp:{{{user}}}"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}{{nodes}}"

    @property
    def node_stats(self) -> str:
        return f"{self.prefix}{{nodes}}:stats"
