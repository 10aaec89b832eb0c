# -*- test-case-name: tests.hub.test_hub -*-
"""
``Hub``: every registered connection by id, users, channels and presence,
and push to any of them from anywhere in the process.

.. code-block:: python

    hub = app.hub                      # or conn.hub inside a component
    hub.register(conn)                 # automatic with App.route(..., hub=True)
    hub.bind(conn, "alice")            # a user may have many tabs
    hub.join(conn, "room:lobby")       # left automatically on close
    yield hub.push(conn_id, "only you")            # Deferred[bool]
    yield hub.push_user("alice", "every tab")      # Deferred[int]
    yield hub.publish("room:lobby", "all", exclude=[conn.id])

The operations a second process could answer (``push``, ``push_user``,
``publish``, ``disconnect``, ``members``, ``connections_of``,
``client_info``, ``stats``) return Deferreds: with the in-process hub they
have already fired when returned; with a backplane spanning processes
(Redis) they fire once the other nodes have had their say. The local
questions (``get``, ``exists``, ``send``, ``channels_of``, ``user_of``)
answer at once.

Nothing a client can trigger raises from the hub: an unknown or closing id
is ``False`` (or 0 recipients), and a connection that goes away leaves
every channel and its user on its own. Programming mistakes (a channel
that is not a string, a message that is neither ``str`` nor ``bytes``)
raise ``HubError`` at once, naming the fix.

Swoole and phpWebSocketServer names, side by side:

=============================  =================================  ==========================
ratchetpy ``Hub``              Swoole ``Server``                  phpWebSocketServer
=============================  =================================  ==========================
``push(id, msg)``              ``push($fd, $data)``               ``feedback`` to a uuid
``send(id, msg)`` (local)      ``push`` (same worker)
``exists(id)``                 ``exist($fd)``
``is_established(id)``         ``isEstablished($fd)``
``disconnect(id, code, rsn)``  ``disconnect($fd, $code, $rsn)``
``connections`` / ``ids()``    ``$server->connections``
``client_info(id)``            ``getClientInfo($fd)``
``stats()``                    ``stats()``
``bind(conn, user)``           ``bind($fd, $uid)``                ``ident`` of a PHP client
``publish(channel, msg)``      (loop over fds)                    ``broadcast``
=============================  =================================  ==========================
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from .._lost_hooks import on_lost
from ..exceptions import HubError
from ..interfaces import ConnectionInterface
from ..server.ids import node_id, node_of
from ..websocket.broadcast import PreparedMessage, deliver, prepare
from .channel_history import ChannelHistoryMixin
from .history import Publication
from .info import HubInfo
from .names import MAX_NAME_LENGTH, ClientInfo, Member, check_name
from .relay import NodeSubscriptions, Receiver
from .stats import ServerStats

if TYPE_CHECKING:
    from .backplane import Backplane

__all__ = ["Hub", "HubError", "ClientInfo", "Member", "MAX_NAME_LENGTH", "check_name"]

_log = Logger(namespace="ratchetpy.hub")

@dataclass(eq=False)
class _Entry:
    conn: ConnectionInterface
    route: str | None
    connected_at: float
    user: str | None = None
    channels: set[str] = field(default_factory=set)


def _ids(exclude: Iterable[str | ConnectionInterface] | None) -> frozenset[str]:
    if not exclude:
        return frozenset()
    if isinstance(exclude, (str, ConnectionInterface)):
        exclude = [exclude]
    return frozenset(item if isinstance(item, str) else str(item.id) for item in exclude)


class Hub(NodeSubscriptions, ChannelHistoryMixin, HubInfo):
    """
    Connections by id, users, channels and presence for one server; and
    node subscriptions (``subscribe_channel``, ``relay``: see
    ``ratchetpy.hub.relay``), which carry WAMP topics across processes.

    Args:
        stats: the counters this hub reports in ``stats()`` (a new
            ``ServerStats`` by default; ``App`` shares one between its
            routes and its listening ports).
        clock: a function returning the current Unix time (tests pass a
            task clock's ``seconds``).

    Attributes:
        backplane: what connects this hub to other processes (a
            ``RedisBackplane``), or ``None``: in-process only.
    """

    def __init__(self, *, stats: ServerStats | None = None, clock: Any = None) -> None:
        self.counters = stats if stats is not None else ServerStats()
        self.backplane: Backplane | None = None
        self._clock = clock or time.time
        self._entries: dict[str, _Entry] = {}
        self._users: dict[str, dict[str, ConnectionInterface]] = {}
        self._channels: dict[str, dict[str, ConnectionInterface]] = {}
        self._receivers: dict[str, list[Receiver]] = {}
        self._init_history()

    @property
    def node(self) -> str:
        """This process's node id (the first part of every connection id here)."""
        return node_id()

    # -- registry ----------------------------------------------------------

    def register(self, conn: ConnectionInterface, route: str | None = None) -> bool:
        """
        Make ``conn`` reachable by its id; it is unregistered on its own
        when it closes (after the component's ``on_close``, so that can
        still read its channels and user).

        Returns:
            ``False`` if the connection is already closing (nothing done).
        """
        cid = str(conn.id)
        entry = self._entries.get(cid)
        if entry is not None:
            return True
        if getattr(conn, "closing", False):
            return False
        if route is None:
            request = getattr(conn, "http_request", None)
            route = getattr(request, "path", None)
        self._entries[cid] = _Entry(conn, route, self._clock())
        on_lost(conn, lambda: self.unregister(cid))
        return True

    def unregister(self, conn: ConnectionInterface | str) -> None:
        """Forget a connection: leave its channels, unbind its user. Idempotent."""
        cid = conn if isinstance(conn, str) else str(conn.id)
        entry = self._entries.pop(cid, None)
        if entry is None:
            return
        backplane = self.backplane
        for channel in entry.channels:
            self.positioned.discard(channel, cid)
            last = self._drop(self._channels, channel, cid)
            if backplane is not None:
                backplane.left(channel, cid, last)
        if entry.user is not None:
            last = self._drop(self._users, entry.user, cid)
            if backplane is not None:
                backplane.unbound(entry.user, cid, last)

    @staticmethod
    def _drop(index: dict[str, dict[str, ConnectionInterface]], key: str, cid: str) -> bool:
        # True when no local member is left under ``key``.
        members = index.get(key)
        if members is None:
            return True
        members.pop(cid, None)
        if not members:
            del index[key]
            return True
        return False

    def _entry(self, conn: ConnectionInterface | str) -> _Entry | None:
        cid = conn if isinstance(conn, str) else str(conn.id)
        return self._entries.get(cid)

    def _require(self, conn: ConnectionInterface) -> _Entry | None:
        entry = self._entry(conn)
        if entry is None and self.register(conn):
            entry = self._entry(conn)
        return entry

    def get(self, cid: str) -> ConnectionInterface | None:
        """The registered connection with this id in this process, or ``None``."""
        entry = self._entries.get(cid) if isinstance(cid, str) else None
        return entry.conn if entry is not None else None

    def exists(self, cid: str) -> bool:
        """True if this process holds a registered connection with this id (Swoole's ``exist``)."""
        return self.get(cid) is not None

    def is_established(self, cid: str) -> bool:
        """True if that connection is open for messages (Swoole's ``isEstablished``)."""
        conn = self.get(cid)
        return conn is not None and not getattr(conn, "closing", False)

    def ids(self) -> list[str]:
        """Ids of the registered connections in this process."""
        return list(self._entries)

    @property
    def connections(self) -> list[ConnectionInterface]:
        """The registered connections in this process (Swoole's ``$server->connections``)."""
        return [entry.conn for entry in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ConnectionInterface]:
        return iter(self.connections)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._entries
        cid = getattr(item, "id", None)
        return isinstance(cid, str) and self._entries.get(cid) is not None

    # -- push --------------------------------------------------------------

    def send(self, cid: str, message: str | bytes | PreparedMessage) -> bool:
        """
        Send ``message`` to the connection ``cid`` of this process.

        ``str`` goes as text, ``bytes`` as binary. Returns ``False``, and
        sends nothing, for an id this process does not hold or one that
        is closing; never raises for a bad id.
        """
        prepared = prepare(message)
        conn = self.get(cid)
        if conn is None or getattr(conn, "closing", False):
            self.counters.pushed(missed=1)
            return False
        sent = deliver((conn,), prepared)
        self.counters.pushed(delivered=sent, missed=1 - sent)
        return bool(sent)

    def push(self, cid: str, message: str | bytes | PreparedMessage) -> Deferred[bool]:
        """
        Send ``message`` to the connection ``cid``, wherever it is.

        Returns:
            A Deferred firing ``True`` if it was delivered, ``False`` for
            an unknown or closing id. It never fails for a bad id.
        """
        backplane = self.backplane
        if backplane is None or not isinstance(cid, str) or cid in self._entries:
            return succeed(self.send(cid, message))
        node = node_of(cid)
        if node is None or node == self.node:
            return succeed(self.send(cid, message))

        def counted(delivered: bool) -> bool:
            self.counters.pushed(delivered=int(delivered), missed=int(not delivered))
            return delivered

        return backplane.push(cid, prepare(message)).addCallback(counted)

    def disconnect(self, cid: str, code: int = 1000, reason: str = "") -> Deferred[bool]:
        """
        Close the connection ``cid`` with ``code`` and ``reason`` (Swoole's
        ``disconnect``). Fires ``False`` for an unknown or closing id.

        Raises:
            HubError: ``code`` is not a code a server may send.
        """
        from ..websocket.frames import is_valid_close_code

        if not isinstance(code, int) or not is_valid_close_code(code):
            raise HubError(f"invalid close code {code!r}: use 1000-1003, 1007-1014 or 3000-4999")
        backplane = self.backplane
        if backplane is not None and isinstance(cid, str) and cid not in self._entries:
            node = node_of(cid)
            if node is not None and node != self.node:
                return backplane.disconnect(cid, code, reason)
        return succeed(self.local_disconnect(cid, code, reason))

    def local_disconnect(self, cid: str, code: int = 1000, reason: str = "") -> bool:
        """``disconnect`` for a connection of this process, at once."""
        conn = self.get(cid)
        if conn is None or getattr(conn, "closing", False):
            return False
        conn.close(code, reason)
        return True

    # -- users -------------------------------------------------------------

    def bind(self, conn: ConnectionInterface, user: str | int) -> None:
        """
        Bind ``conn`` to ``user`` (registering it if needed). A user may
        have any number of connections (tabs, devices). Binding a
        connection bound to another user moves it, with a log line.
        """
        name = check_name("user", user)
        entry = self._require(conn)
        if entry is None:
            return  # closing: nothing to bind
        if entry.user == name:
            return
        cid = str(conn.id)
        if entry.user is not None:
            _log.info(
                "Connection {id} was bound to user {old!r}; now bound to {new!r}",
                id=cid,
                old=entry.user,
                new=name,
            )
            self.unbind(cid)
        entry.user = name
        connections = self._users.setdefault(name, {})
        connections[cid] = entry.conn
        if self.backplane is not None:
            self.backplane.bound(name, cid, len(connections) == 1)

    def unbind(self, conn: ConnectionInterface | str) -> None:
        """Remove the user binding of ``conn``, if any."""
        entry = self._entry(conn)
        if entry is not None and entry.user is not None:
            cid = str(entry.conn.id)
            user, entry.user = entry.user, None
            last = self._drop(self._users, user, cid)
            if self.backplane is not None:
                self.backplane.unbound(user, cid, last)

    def user_of(self, conn: ConnectionInterface | str) -> str | None:
        """The user bound to a connection of this process, or ``None``."""
        entry = self._entry(conn)
        return entry.user if entry is not None else None

    def push_user(
        self,
        user: str | int,
        message: str | bytes | PreparedMessage,
        exclude: Iterable[str | ConnectionInterface] | None = None,
    ) -> Deferred[int]:
        """
        Send ``message`` to every connection of ``user`` (every tab gets a
        copy), framed once. Fires with how many it went to (0 for a user
        with no connection).
        """
        name = check_name("user", user)
        prepared, excluded = prepare(message), _ids(exclude)
        local = self.deliver_user(name, prepared, excluded)
        backplane = self.backplane
        remote = (
            backplane.push_user(name, prepared, excluded, True)
            if backplane is not None
            else succeed(0)
        )

        def counted(count: int) -> int:
            total = local + count
            self.counters.pushed(delivered=total, missed=0 if total else 1)
            return total

        return remote.addCallback(counted)

    def deliver_user(
        self, user: str, prepared: PreparedMessage, exclude: frozenset[str] = frozenset()
    ) -> int:
        """Deliver to ``user``'s connections in this process; how many it went to."""
        return self._fan_out(self._users.get(user), prepared, exclude)

    def users(self) -> list[str]:
        """Users with at least one connection in this process."""
        return list(self._users)

    def local_connections_of(self, user: str) -> list[str]:
        """Ids of ``user``'s connections in this process."""
        return list(self._users.get(user, ()))

    def connections_of(self, user: str | int) -> Deferred[list[str]]:
        """Ids of the open connections bound to ``user``."""
        name = check_name("user", user)
        if self.backplane is not None:
            return self.backplane.connections_of(name)
        return succeed(list(self._users.get(name, ())))

    # -- channels ----------------------------------------------------------

    def join(self, conn: ConnectionInterface, channel: str) -> None:
        """Add ``conn`` to ``channel`` (registering it if needed); left on close."""
        name = check_name("channel", channel)
        entry = self._require(conn)
        if entry is None:
            return
        if name in entry.channels:
            return
        entry.channels.add(name)
        members = self._channels.setdefault(name, {})
        cid = str(conn.id)
        members[cid] = entry.conn
        if self.backplane is not None:
            self.backplane.joined(name, cid, entry.user, len(members) == 1)

    def leave(self, conn: ConnectionInterface, channel: str) -> None:
        """Remove ``conn`` from ``channel``; nothing if it was not in it."""
        name = check_name("channel", channel)
        entry = self._entry(conn)
        if entry is not None and name in entry.channels:
            entry.channels.discard(name)
            cid = str(conn.id)
            self.positioned.discard(name, cid)
            last = self._drop(self._channels, name, cid)
            if self.backplane is not None:
                self.backplane.left(name, cid, last)

    def channels_of(self, conn: ConnectionInterface | str) -> set[str]:
        """The channels a connection of this process is in."""
        entry = self._entry(conn)
        return set(entry.channels) if entry is not None else set()

    def channels(self) -> list[str]:
        """Channels with at least one member in this process."""
        return list(self._channels)

    def publish(
        self,
        channel: str,
        message: str | bytes | PreparedMessage,
        exclude: Iterable[str | ConnectionInterface] | None = None,
        *,
        count: bool = True,
    ) -> Deferred[int]:
        """
        Send ``message`` to every member of ``channel`` except ``exclude``
        (ids or connections), framed once per node; closing members are
        skipped and the backpressure policy applies to each. Fires with how
        many it went to.

        With a backplane, other nodes report how many they delivered to
        (waiting at most the backplane's ack timeout); ``count=False``
        skips those reports (the built-in chat and WAMP do) and fires with
        this node's deliveries alone, at once.

        On a channel with history (``enable_history``) the message is
        stored first and gets the stream's next offset; with the Redis
        backplane every node, this one too, then delivers it as Redis
        hands it over, in stream order (``count=False`` fires with 0).
        """
        name = check_name("channel", channel)
        prepared, excluded = prepare(message), _ids(exclude)
        policy = self.history_policy(name)
        if policy is not None:  # stored first, then delivered with its position
            stored = self._publish_stored(name, prepared, excluded, count, policy)
            return stored.addCallback(lambda answer: answer[0])
        local = self.deliver_channel(name, prepared, excluded)
        if self.backplane is None:
            return succeed(local)
        remote = self.backplane.publish(name, prepared, excluded, count)
        return remote.addCallback(lambda n: local + n)

    def deliver_channel(
        self,
        channel: str,
        prepared: PreparedMessage,
        exclude: frozenset[str] = frozenset(),
        publication: Publication | None = None,
    ) -> int:
        """
        Deliver to ``channel``'s members in this process; how many it went
        to. ``publication`` (with its stream position) is what positioned
        members receive (``join_positioned``).
        """
        positioned, exclude = self._deliver_positioned(channel, prepared, exclude, publication)
        return positioned + self._fan_out(self._channels.get(channel), prepared, exclude)

    def members(self, channel: str) -> Deferred[list[Member]]:
        """Presence: the connections in ``channel``, with their users."""
        name = check_name("channel", channel)
        if self.backplane is not None:
            return self.backplane.members(name)
        return succeed(self.local_members(name))

    def local_members(self, channel: str) -> list[Member]:
        """Presence in ``channel`` in this process."""
        members = self._channels.get(channel, {})
        return [Member(cid, self.user_of(cid)) for cid in members]

    def member_count(self, channel: str) -> Deferred[int]:
        """How many connections are in ``channel``."""
        name = check_name("channel", channel)
        if self.backplane is not None:
            return self.backplane.member_count(name)
        return succeed(len(self._channels.get(name, ())))

    @staticmethod
    def _fan_out(
        members: dict[str, ConnectionInterface] | None,
        prepared: PreparedMessage,
        exclude: frozenset[str],
    ) -> int:
        if not members:
            return 0
        if exclude:
            targets: Iterable[ConnectionInterface] = [
                conn for cid, conn in members.items() if cid not in exclude
            ]
        else:
            # A copy: a send can close a connection, which leaves the channel.
            targets = list(members.values())
        return deliver(targets, prepared)
