"""
The hub: connection ids, push to one client from anywhere, users, channels
and presence (see ``ratchetpy.hub.hub``), and the counters behind
``stats()`` and the metrics (``ratchetpy.hub.stats``).
"""

from .hub import ClientInfo, Hub, HubError, Member
from .stats import ServerStats, Traffic

__all__ = ["Hub", "HubError", "ClientInfo", "Member", "ServerStats", "Traffic"]
