"""
``Backplane``: what a hub needs from whatever connects it to other
processes (``RedisBackplane``; without one the hub is in-process only).

The hub tells its backplane when local interest changes (a channel's
first local member joined, a user's last local connection left, ...) and
hands it the part of each operation that concerns other nodes. The
backplane calls the hub back to deliver what other nodes sent
(``Hub.deliver_channel``, ``deliver_user``, ``deliver_relayed``, ``send``,
``local_disconnect``, ``local_client_info``, ``local_stats``).

Every Deferred a backplane returns fires, and never fails: when the other
nodes cannot be reached, a count is 0, a bool ``False``, a question
``None`` or this node's own answer, and the backplane logs and counts the
failure. That is what keeps an outage of Redis from reaching components.
The one exception is ``history``, a read a caller must know failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from ..websocket.broadcast import PreparedMessage
    from .history import HistoryPolicy, HistoryResult, StreamPosition
    from .names import Member

__all__ = ["Backplane"]


class Backplane(Protocol):
    """The cross-process part of a hub (see the module docs)."""

    # -- local interest ----------------------------------------------------

    def joined(self, channel: str, cid: str, user: str | None, first: bool) -> None:
        """``cid`` joined ``channel`` here (``first``: the first local member)."""

    def left(self, channel: str, cid: str, last: bool) -> None:
        """``cid`` left ``channel`` here (``last``: no local member is left)."""

    def bound(self, user: str, cid: str, first: bool) -> None:
        """``cid`` was bound to ``user`` here (``first``: the user's first local connection)."""

    def unbound(self, user: str, cid: str, last: bool) -> None:
        """``cid`` is no longer bound to ``user`` here."""

    def node_subscribed(self, channel: str) -> None:
        """The first receiver of ``channel`` here (``Hub.subscribe_channel``)."""

    def node_unsubscribed(self, channel: str) -> None:
        """The last receiver of ``channel`` here is gone."""

    # -- operations on other nodes -----------------------------------------

    def relay(self, channel: str, prepared: PreparedMessage, meta: dict[str, Any]) -> None:
        """Hand ``prepared`` and ``meta`` to ``channel``'s receivers on other nodes."""

    def publish(
        self, channel: str, prepared: PreparedMessage, exclude: frozenset[str], count: bool
    ) -> Deferred[int]:
        """Deliver to ``channel``'s members on other nodes; with ``count``, fire with how many."""

    def push_user(
        self, user: str, prepared: PreparedMessage, exclude: frozenset[str], count: bool
    ) -> Deferred[int]:
        """Deliver to ``user``'s connections on other nodes."""

    def push(self, cid: str, prepared: PreparedMessage) -> Deferred[bool]:
        """Deliver to the connection ``cid`` of another node."""

    def disconnect(self, cid: str, code: int, reason: str) -> Deferred[bool]:
        """Close the connection ``cid`` of another node."""

    def client_info(self, cid: str) -> Deferred[dict[str, Any] | None]:
        """``client_info`` of a connection of another node, as a dict."""

    def members(self, channel: str) -> Deferred[list[Member]]:
        """Presence in ``channel`` on every node."""

    def member_count(self, channel: str) -> Deferred[int]:
        """How many connections are in ``channel`` on every node."""

    def connections_of(self, user: str) -> Deferred[list[str]]:
        """Ids of ``user``'s connections on every node."""

    def stats(self) -> Deferred[dict[str, Any]]:
        """Stats of every node, with totals."""

    # -- history (channels with a HistoryPolicy) ---------------------------

    def publish_stored(
        self,
        channel: str,
        prepared: PreparedMessage,
        exclude: frozenset[str],
        count: bool,
        policy: HistoryPolicy,
    ) -> Deferred[tuple[int, StreamPosition | None]]:
        """
        Store the publication in ``channel``'s stream and deliver it on
        every node, this one included (``Hub.deliver_channel`` with the
        ``Publication``), in stream order. Fires with (how many it reached
        if ``count``, else 0; its position, or ``None`` if it could not be
        stored, when only this node's members got it).
        """

    def history(
        self,
        channel: str,
        since: StreamPosition | None,
        limit: int | None,
        policy: HistoryPolicy,
    ) -> Deferred[HistoryResult]:
        """Read ``channel``'s stream (``Hub.history``); unlike the rest, fails when the store cannot answer."""
