"""
``LinkedNodes``: hubs in one process joined by an in-memory backplane, so
node subscriptions (``Hub.subscribe_channel`` / ``relay``) can be tested
without Redis. A relay crosses as the Redis backplane carries it: the
payload bytes, the opcode and ``meta`` through JSON, framed again on the
receiving hub.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, succeed

from ratchetpy.hub import Hub
from ratchetpy.websocket.broadcast import PreparedMessage, prepare

__all__ = ["LinkedNodes", "LinkedBackplane"]


class LinkedBackplane:
    """One hub's side of ``LinkedNodes``; records what its hub asked of it."""

    def __init__(self, nodes: LinkedNodes, hub: Hub) -> None:
        self.nodes = nodes
        self.hub = hub
        self.subscribed: set[str] = set()
        self.calls: list[tuple[str, str]] = []  # ("sub" | "unsub", channel)
        self.relays: list[tuple[str, bytes, int, dict[str, Any]]] = []
        hub.backplane = self  # type: ignore[assignment]

    def node_subscribed(self, channel: str) -> None:
        assert channel not in self.subscribed, f"{channel} subscribed twice"
        self.subscribed.add(channel)
        self.calls.append(("sub", channel))

    def node_unsubscribed(self, channel: str) -> None:
        self.subscribed.remove(channel)
        self.calls.append(("unsub", channel))

    def relay(self, channel: str, prepared: PreparedMessage, meta: dict[str, Any]) -> None:
        wire_meta = json.loads(json.dumps(meta))
        self.relays.append((channel, prepared.payload, prepared.opcode, wire_meta))
        for other in self.nodes.backplanes:
            if other is not self and channel in other.subscribed:
                message: str | bytes = (
                    prepared.payload.decode() if prepared.opcode == 1 else prepared.payload
                )
                other.hub.deliver_relayed(channel, prepare(message), wire_meta)

    # The rest of the Backplane protocol: nothing crosses.
    def joined(self, *args: Any) -> None:
        pass

    left = bound = unbound = joined

    def publish(self, *args: Any) -> Deferred[int]:
        return succeed(0)

    push_user = publish


class LinkedNodes:
    """``count`` hubs, each with a ``LinkedBackplane`` to the others."""

    def __init__(self, count: int) -> None:
        self.backplanes: list[LinkedBackplane] = []
        for _ in range(count):
            self.backplanes.append(LinkedBackplane(self, Hub()))

    @property
    def hubs(self) -> list[Hub]:
        return [b.hub for b in self.backplanes]
