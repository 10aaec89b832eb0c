"""``WsServerInterface``: a component that speaks WebSocket subprotocols."""

from __future__ import annotations

import abc
from collections.abc import Sequence

__all__ = ["WsServerInterface"]


class WsServerInterface(abc.ABC):
    """
    Implement this beside ``MessageComponentInterface`` to negotiate
    subprotocols: ``WsServer`` accepts the first protocol the client offers
    that is in ``get_sub_protocols()``.
    """

    @abc.abstractmethod
    def get_sub_protocols(self) -> Sequence[str]:
        """The subprotocols this component speaks, e.g. ``["wamp"]``."""
