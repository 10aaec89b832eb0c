# -*- test-case-name: tests.hub.test_relay -*-
"""
Node subscriptions: a channel this node listens to on other nodes' behalf
without holding a member connection, for layers that keep their own
subscribers (WAMP topics).

.. code-block:: python

    def receive(prepared, meta):          # a message another node relayed
        return deliver(my_subscribers_filtered_by(meta), prepared)

    hub.subscribe_channel("wamp:news", receive)   # while anyone here wants it
    hub.relay("wamp:news", text, {"x": [...]})    # to the other nodes' receivers
    hub.unsubscribe_channel("wamp:news", receive)

The owner delivers to its local subscribers itself, then hands the same
message to ``relay``; each other node with a receiver for that channel
frames it once and calls its receivers with the ``PreparedMessage`` and
``meta`` (a JSON object: what the receivers filter on). A relayed message
is never relayed again, so there are no loops. Without a backplane
``relay`` does nothing and costs nothing.

Node subscriptions are a namespace of their own: ``hub.publish`` reaches a
channel's *members* (connections that ``join``\\ ed), ``relay`` reaches
*receivers*; a name may be used by both without the two meeting. With a
backplane, a node is subscribed to a relay channel (in Redis) while it has
at least one receiver for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from ..exceptions import HubError
from ..websocket.broadcast import PreparedMessage, prepare
from .names import check_name

if TYPE_CHECKING:
    from .backplane import Backplane

__all__ = ["NodeSubscriptions", "Receiver"]

_log = Logger(namespace="ratchetpy.hub")

Receiver = Callable[[PreparedMessage, Mapping[str, Any]], "int | None"]
"""``receiver(prepared, meta)``: deliver a relayed message; how many it went to."""


class NodeSubscriptions:
    """The node-subscription part of ``Hub`` (see the module docs)."""

    backplane: Backplane | None
    _receivers: dict[str, list[Receiver]]

    def subscribe_channel(self, channel: str, receiver: Receiver) -> None:
        """
        Call ``receiver(prepared, meta)`` for each message another node
        relays to ``channel`` (``relay``). Subscribing the same receiver
        twice is one subscription.

        Raises:
            HubError: ``channel`` is not a valid channel name, or
                ``receiver`` is not callable.
        """
        name = check_name("channel", channel)
        if not callable(receiver):
            raise HubError(f"a receiver must be callable, not {type(receiver).__name__}")
        receivers = self._receivers.setdefault(name, [])
        if receiver in receivers:
            return
        receivers.append(receiver)
        if len(receivers) == 1 and self.backplane is not None:
            self.backplane.node_subscribed(name)

    def unsubscribe_channel(self, channel: str, receiver: Receiver) -> None:
        """Stop calling ``receiver`` for ``channel``; nothing if it was not subscribed."""
        receivers = self._receivers.get(channel)
        if not receivers or receiver not in receivers:
            return
        receivers.remove(receiver)
        if not receivers:
            del self._receivers[channel]
            if self.backplane is not None:
                self.backplane.node_unsubscribed(channel)

    def node_channels(self) -> list[str]:
        """The channels this node has a receiver for."""
        return list(self._receivers)

    def relay(
        self,
        channel: str,
        message: str | bytes | PreparedMessage,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """
        Send ``message`` to the receivers of ``channel`` on the other nodes
        (not this one's: the caller delivers locally). ``meta`` must be
        JSON-ready; receivers get it as given. Nothing happens without a
        backplane; with one, failures are the backplane's to log and count.
        """
        backplane = self.backplane
        if backplane is None:
            return
        backplane.relay(channel, prepare(message), dict(meta) if meta else {})

    def deliver_relayed(
        self, channel: str, prepared: PreparedMessage, meta: Mapping[str, Any]
    ) -> int:
        """
        Hand a message another node relayed to this node's receivers of
        ``channel``; how many connections they delivered to. A receiver
        that raises is logged and the others still run.
        """
        total = 0
        for receiver in list(self._receivers.get(channel, ())):
            try:
                delivered = receiver(prepared, meta)
            except Exception:  # noqa: BLE001 - one receiver must not starve the others
                _log.failure(
                    "Hub: a receiver of relayed channel {channel!r} raised", channel=channel
                )
                continue
            total += delivered or 0
        return total
