# -*- test-case-name: tests.hub.test_hub -*-
"""
What the hub tells about connections and itself: ``client_info`` (Swoole's
``getClientInfo``) and ``stats`` (Swoole's ``stats``), mixed into ``Hub``.

Per-connection traffic is read from the connection's protocol when asked
(``WsServerProtocol.traffic``), so answering costs the data path nothing.
With a backplane, ``client_info`` for another node's connection asks that
node, and ``stats`` sums every node's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from ..server.ids import node_of
from .names import ClientInfo
from .stats import traffic_of

if TYPE_CHECKING:
    from .backplane import Backplane
    from .hub import _Entry
    from .stats import ServerStats

__all__ = ["HubInfo"]


def _protocol_of(conn: Any) -> Any:
    # Imported here: the hub is imported by the WebSocket layer itself.
    from ..websocket.connection import protocol_of

    return protocol_of(conn)

_log = Logger(namespace="ratchetpy.hub")


class HubInfo:
    """``client_info`` and ``stats`` for ``Hub``."""

    if TYPE_CHECKING:
        counters: ServerStats
        backplane: Backplane | None
        _entries: dict[str, _Entry]
        _users: dict[str, Any]
        _channels: dict[str, Any]
        _clock: Any

        @property
        def node(self) -> str: ...

    def local_client_info(self, cid: str) -> ClientInfo | None:
        """``client_info`` for a connection of this process, at once."""
        entry = self._entries.get(cid) if isinstance(cid, str) else None
        if entry is None:
            return None
        conn = entry.conn
        protocol = _protocol_of(conn)
        traffic = traffic_of(protocol) if protocol is not None else None
        last = getattr(protocol, "last_activity", None)
        return ClientInfo(
            id=cid,
            node=self.node,
            remote_address=getattr(conn, "remote_address", None),
            route=entry.route,
            user=entry.user,
            channels=tuple(sorted(entry.channels)),
            connected_at=entry.connected_at,
            last_activity=_wall_time(protocol, last, self._clock()) if last is not None else entry.connected_at,
            messages_in=traffic.messages_in if traffic else 0,
            messages_out=traffic.messages_out if traffic else 0,
            bytes_in=traffic.bytes_in if traffic else 0,
            bytes_out=traffic.bytes_out if traffic else 0,
            buffered_bytes=int(getattr(conn, "buffered_amount", 0) or 0),
        )

    def client_info(self, cid: str) -> Deferred[ClientInfo | None]:
        """What is known of connection ``cid`` (Swoole's ``getClientInfo``); ``None`` if unknown."""
        backplane = self.backplane
        if backplane is not None and isinstance(cid, str) and cid not in self._entries:
            node = node_of(cid)
            if node is not None and node != self.node:
                return backplane.client_info(cid).addCallback(_client_info_from_dict)
        return succeed(self.local_client_info(cid))

    def local_stats(self) -> dict[str, Any]:
        """This process's ``stats()``, at once."""
        snapshot = self.counters.snapshot()
        snapshot["node"] = self.node
        snapshot["registered"] = len(self._entries)
        snapshot["users"] = len(self._users)
        snapshot["channels"] = len(self._channels)
        return snapshot

    def stats(self) -> Deferred[dict[str, Any]]:
        """
        Counters (Swoole's ``stats()``): open connections, accepted, closed
        by code, messages and bytes in and out, refusals by reason,
        backpressure events, pushes delivered and missed, registered
        connections, users and channels. With a backplane: every node's
        under ``"nodes"``, and the numbers summed over them.
        """
        if self.backplane is not None:
            return self.backplane.stats()
        return succeed(self.local_stats())


def _client_info_from_dict(data: dict[str, Any] | None) -> ClientInfo | None:
    if not isinstance(data, dict):
        return None
    try:
        data = dict(data)
        data["channels"] = tuple(data.get("channels", ()))
        return ClientInfo(**data)
    except TypeError:
        _log.warn("A node answered client_info with fields that do not fit: {data!r}", data=data)
        return None


def _wall_time(protocol: Any, reactor_seconds: float, now: float) -> float:
    # last_activity is kept in reactor time (a task clock in tests); shown
    # in the hub's clock, relative to now.
    reactor = getattr(getattr(protocol, "_server", None), "_reactor", None)
    seconds = getattr(reactor, "seconds", None)
    if seconds is None:
        return reactor_seconds
    return now - (float(seconds()) - reactor_seconds)
