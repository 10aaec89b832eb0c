"""
The hub: connection ids, push to one client from anywhere, users, channels
and presence (see ``ratchetpy.hub.hub``), channel history and recovery
(``ratchetpy.hub.history``, ``ratchetpy.hub.recovery``), the counters
behind ``stats()`` and the metrics (``ratchetpy.hub.stats``), and the HTTP
publish API for backends (``ratchetpy.hub.pushapi``).
"""

from .history import HistoryPolicy, HistoryResult, Publication, StreamPosition
from .hub import ClientInfo, Hub, HubError, Member
from .pushapi import PushApi
from .recovery import JsonPositions, PositionFormat
from .stats import ServerStats, Traffic

__all__ = [
    "Hub",
    "HubError",
    "ClientInfo",
    "Member",
    "ServerStats",
    "Traffic",
    "PushApi",
    "HistoryPolicy",
    "HistoryResult",
    "Publication",
    "StreamPosition",
    "JsonPositions",
    "PositionFormat",
]
