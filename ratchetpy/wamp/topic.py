# -*- test-case-name: tests.wamp.test_wamp_topic -*-
"""
``Topic`` (a channel and its subscribers) and ``TopicManager`` (the layer
that turns topic URIs into ``Topic`` objects and keeps subscriptions).

With a hub backplane (Redis), topics span processes: see
``ratchetpy.wamp.cluster``.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from ..interfaces import ConnectionInterface, check_component
from ..websocket import broadcast as _broadcast
from ..websocket.broadcast import PreparedMessage, deliver, prepare
from ..websocket.interfaces import WsServerInterface
from ._json import encode
from ._messages import MSG_EVENT
from .cluster import (
    DEFAULT_CHANNEL_PREFIX,
    channel_name,
    check_channel_prefix,
    read_meta,
    relay_meta,
)
from .connection import WampConnection
from .interfaces import WAMP_METHODS, HandlerResult, WampServerInterface
from .limits import DEFAULT_MAX_SUBSCRIPTIONS, check_limit, refuse

if TYPE_CHECKING:
    from ..hub import Hub

__all__ = ["Topic", "TopicManager"]

_log = Logger(namespace="ratchetpy.wamp")

_NONE: frozenset[str] = frozenset()


def _session_ids(name: str, items: Iterable[Any]) -> frozenset[str]:
    if isinstance(items, (str, bytes)):
        raise TypeError(f"{name} must be a list of session ids, not a single {type(items).__name__}")
    ids = set()
    for item in items:
        sid = getattr(item, "session_id", None)
        ids.add(sid if sid is not None else str(item))
    return frozenset(ids)


class Topic:
    """
    A topic (channel) and the connections subscribed to it.

    ``str(topic)`` and ``topic.id`` are its URI; ``len(topic)`` counts its
    subscribers and iterating yields them (``WampConnection`` objects).
    Topics compare by identity; ``WampServer`` gives one ``Topic`` object
    per URI for as long as anything (a subscriber or your code) holds it.

    Args:
        topic_id: the URI.
        manager: the ``TopicManager`` that made it; through its hub, a
            broadcast reaches other processes (none for a bare ``Topic``).
    """

    __slots__ = ("_id", "_subscribers", "_manager", "__weakref__")

    def __init__(self, topic_id: str, manager: TopicManager | None = None) -> None:
        self._id = str(topic_id)
        # subscriber -> the connection to frame for (its WsConnection)
        self._subscribers: dict[ConnectionInterface, ConnectionInterface] = {}
        self._manager = manager

    @property
    def id(self) -> str:
        """The topic's URI."""
        return self._id

    def get_id(self) -> str:
        """The topic's URI (Ratchet's ``getId()``)."""
        return self._id

    def __str__(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"<Topic {self._id!r} {len(self._subscribers)} subscribers>"

    def broadcast(
        self, msg: Any, exclude: Iterable[Any] = (), eligible: Iterable[Any] = ()
    ) -> Topic:
        """
        Send ``msg`` as an EVENT of this topic to its subscribers.

        Args:
            msg: any JSON value.
            exclude: session ids (or connections) not to send to.
            eligible: if not empty, the only session ids (or connections)
                to send to.

        The event is encoded and framed once for all subscribers; closing
        connections are skipped. With a hub backplane (Redis), the same
        text also goes to this topic's subscribers on the other nodes,
        once per node, ``exclude`` and ``eligible`` applying there too
        (see ``ratchetpy.wamp.cluster``). Returns the topic, for chaining.
        """
        manager = self._manager
        if manager is not None:
            hub = manager.hub
            if hub is not None and hub.backplane is not None:
                self._broadcast_across(hub, manager, msg, exclude, eligible)
                return self
        subscribers = self._subscribers
        if not subscribers:
            return self
        targets: Iterable[ConnectionInterface]
        if exclude or eligible:
            targets = self._targets(
                _session_ids("exclude", exclude), _session_ids("eligible", eligible)
            )
            if not targets:
                return self
        else:
            targets = list(subscribers.values())
        _broadcast(targets, encode([MSG_EVENT, self._id, msg]))
        return self

    def _targets(self, excluded: frozenset[str], allowed: frozenset[str]) -> list[ConnectionInterface]:
        return [
            target
            for conn, target in self._subscribers.items()
            if getattr(conn, "session_id", None) not in excluded
            and (not allowed or getattr(conn, "session_id", None) in allowed)
        ]

    def _broadcast_across(
        self, hub: Hub, manager: TopicManager, msg: Any, exclude: Iterable[Any], eligible: Iterable[Any]
    ) -> None:
        # broadcast() with a backplane: here, then the other nodes.
        excluded = allowed = _NONE
        if exclude or eligible:
            excluded = _session_ids("exclude", exclude)
            allowed = _session_ids("eligible", eligible)
        prepared = prepare(encode([MSG_EVENT, self._id, msg]))
        subscribers = self._subscribers
        if subscribers:
            if excluded or allowed:
                deliver(self._targets(excluded, allowed), prepared)
            else:
                deliver(list(subscribers.values()), prepared)
        if allowed and self._all_here(allowed):
            return  # session ids are unique: no other node holds an eligible one
        hub.relay(manager.channel_of(self._id), prepared, relay_meta(excluded, allowed))

    def _all_here(self, sessions: frozenset[str]) -> bool:
        here = sum(1 for conn in self._subscribers if getattr(conn, "session_id", None) in sessions)
        return here >= len(sessions)

    def _deliver_relayed(self, prepared: PreparedMessage, meta: Mapping[str, Any]) -> int:
        # The hub receiver of this topic: an EVENT another node broadcast.
        filters = read_meta(meta)
        if filters is None:
            _log.warn(
                "Dropped an EVENT for topic {topic!r} relayed with malformed exclude/eligible "
                "lists: {meta!r}. Is another program publishing on the hub's relay channels?",
                topic=self._id,
                meta=dict(meta),
            )
            return 0
        excluded, allowed = filters
        if excluded or allowed:
            return deliver(self._targets(excluded, allowed), prepared)
        return deliver(list(self._subscribers.values()), prepared)

    def has(self, conn: ConnectionInterface) -> bool:
        """True if ``conn`` is subscribed."""
        return conn in self._subscribers

    __contains__ = has

    def add(self, conn: ConnectionInterface) -> Topic:
        """Subscribe ``conn`` (no-op if it already is)."""
        if conn not in self._subscribers:
            target = conn.get_connection() if isinstance(conn, WampConnection) else conn
            self._subscribers[conn] = target
        return self

    def remove(self, conn: ConnectionInterface) -> Topic:
        """Unsubscribe ``conn`` (no-op if it is not subscribed)."""
        self._subscribers.pop(conn, None)
        return self

    def __iter__(self) -> Iterator[ConnectionInterface]:
        return iter(list(self._subscribers))

    def __len__(self) -> int:
        return len(self._subscribers)

    def count(self) -> int:
        """The number of subscribers (Ratchet's ``count()``)."""
        return len(self._subscribers)

    def __bool__(self) -> bool:
        # A topic is a thing, not a container to test for emptiness by accident.
        return True


class TopicManager(WampServerInterface, WsServerInterface):
    """
    Turns topic URIs into ``Topic`` objects for ``app`` and keeps each
    connection's subscriptions (Ratchet's ``TopicManager``).

    A repeated SUBSCRIBE is ignored; an UNSUBSCRIBE of a topic the client
    is not subscribed to is ignored. When a connection closes, ``app``
    hears ``on_close`` first (its synchronous part, if it is async), then
    the connection leaves all its topics. Each handler's return value (an
    awaitable, for async handlers) is passed back to the caller.

    Args:
        app: the WAMP application (receives ``Topic`` objects).
        max_subscriptions: most topics one connection may be subscribed to
            at once (``None``: no limit). A SUBSCRIBE over it closes the
            connection with 1008; the log names the option.
        channel_prefix: the prefix of the hub channels its topics ride on
            across processes (``"wamp:"``; see ``ratchetpy.wamp.cluster``).

    Attributes:
        hub: the ``Hub`` its topics span processes through: the one of the
            ``WsServer`` serving it (``use_hub``), else that of the first
            connection to open; ``None`` until then.

    Unlike Ratchet, a topic whose last subscriber left is not replaced by a
    new object on the next subscribe while your code still holds the old
    one: Ratchet's Push tutorial keeps ``Topic`` objects in a dict, and in
    PHP an entry can go stale (a broadcast to it then reaches nobody).
    Here the manager holds topics with subscribers strongly and all others
    weakly, so there is one ``Topic`` per URI while anything refers to it,
    and unused topics are freed (Ratchet keeps every topic ever called or
    published to).
    """

    def __init__(
        self,
        app: Any,
        *,
        max_subscriptions: int | None = DEFAULT_MAX_SUBSCRIPTIONS,
        channel_prefix: str = DEFAULT_CHANNEL_PREFIX,
    ) -> None:
        check_component(app, WAMP_METHODS, "WampServer")
        self.app = app
        self.max_subscriptions = check_limit("max_subscriptions", max_subscriptions)
        self.channel_prefix = check_channel_prefix(channel_prefix)
        self.hub: Hub | None = None
        self._live: dict[str, Topic] = {}
        self._known: weakref.WeakValueDictionary[str, Topic] = weakref.WeakValueDictionary()
        # URI -> hub channel, for the live topics subscribed on ``hub``
        self._channels: dict[str, str] = {}

    def get_topic(self, uri: str) -> Topic:
        """The ``Topic`` for ``uri``, created if none exists."""
        topic = self._live.get(uri) or self._known.get(uri)
        if topic is None:
            topic = self._known[uri] = Topic(uri, self)
        return topic

    # -- the hub: topics across processes ------------------------------------

    def use_hub(self, hub: Hub | None) -> None:
        """
        Let topics span processes through ``hub`` (a ``WsServer`` calls
        this with its own): its node subscriptions move there.
        """
        if hub is self.hub:
            return
        live = list(self._live.values())
        for topic_obj in live:
            self._unwatch(topic_obj)
        self.hub = hub
        for topic_obj in live:
            self._watch(topic_obj)

    def channel_of(self, uri: str) -> str:
        """The hub channel of the topic ``uri`` (see ``ratchetpy.wamp.cluster``)."""
        return self._channels.get(uri) or channel_name(self.channel_prefix, uri)

    def _watch(self, topic_obj: Topic) -> None:
        # The topic has its first local subscriber: hear other nodes' EVENTs.
        hub = self.hub
        if hub is not None:
            name = channel_name(self.channel_prefix, topic_obj._id)
            self._channels[topic_obj._id] = name
            hub.subscribe_channel(name, topic_obj._deliver_relayed)

    def _unwatch(self, topic_obj: Topic) -> None:
        name = self._channels.pop(topic_obj._id, None)
        if name is not None and self.hub is not None:
            self.hub.unsubscribe_channel(name, topic_obj._deliver_relayed)

    def get(self, uri: str) -> Topic | None:
        """The ``Topic`` for ``uri`` if it has subscribers, else ``None``."""
        return self._live.get(uri)

    @property
    def topics(self) -> dict[str, Topic]:
        """A snapshot of the topics that have subscribers, by URI."""
        return dict(self._live)

    def get_sub_protocols(self) -> Sequence[str]:
        get = getattr(self.app, "get_sub_protocols", None)
        return list(get()) if get is not None else []

    # The handlers below pass the application's return value (an awaitable
    # for async handlers) back up, so the layers above can wait for it.

    def on_open(self, conn: ConnectionInterface) -> HandlerResult:
        if self.hub is None:
            self._find_hub(conn)
        result: HandlerResult = self.app.on_open(conn)
        return result

    def _find_hub(self, conn: ConnectionInterface) -> None:
        # Served without WampServer (ServerProtocol(TopicManager(app))): the
        # hub of the WebSocket server, as its connections know it.
        from ..hub import Hub

        hub = getattr(conn, "hub", None)
        if isinstance(hub, Hub):
            self.use_hub(hub)

    def on_call(self, conn: WampConnection, id: Any, topic: Any, params: Any) -> HandlerResult:
        result: HandlerResult = self.app.on_call(conn, id, self.get_topic(topic), params)
        return result

    def on_subscribe(self, conn: WampConnection, topic: Any) -> HandlerResult:
        topic_obj = self.get_topic(topic)
        subscriptions = conn.wamp.subscriptions
        if topic_obj in subscriptions:
            return None
        limit = self.max_subscriptions
        if limit is not None and len(subscriptions) >= limit:
            refuse(conn, "the number of subscriptions", "max_subscriptions", limit, limit + 1)
            return None
        topic_obj.add(conn)
        subscriptions.add(topic_obj)
        if self._live.get(topic_obj.id) is not topic_obj:
            self._live[topic_obj.id] = topic_obj
            self._watch(topic_obj)
        result: HandlerResult = self.app.on_subscribe(conn, topic_obj)
        return result

    def on_unsubscribe(self, conn: WampConnection, topic: Any) -> HandlerResult:
        topic_obj = self._live.get(topic)
        if topic_obj is None or topic_obj not in conn.wamp.subscriptions:
            return None
        self._leave(topic_obj, conn)
        result: HandlerResult = self.app.on_unsubscribe(conn, topic_obj)
        return result

    def on_publish(
        self,
        conn: WampConnection,
        topic: Any,
        event: Any,
        exclude: list[Any],
        eligible: list[Any],
    ) -> HandlerResult:
        topic_obj = self.get_topic(topic)
        result: HandlerResult = self.app.on_publish(conn, topic_obj, event, exclude, eligible)
        return result

    def on_close(self, conn: ConnectionInterface) -> HandlerResult:
        try:
            result: HandlerResult = self.app.on_close(conn)
        finally:
            self._leave_all(conn)
        return result

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> HandlerResult:
        result: HandlerResult = self.app.on_error(conn, exc)
        return result

    def _leave(self, topic_obj: Topic, conn: WampConnection) -> None:
        conn.wamp.subscriptions.discard(topic_obj)
        topic_obj.remove(conn)
        if not len(topic_obj) and self._live.get(topic_obj.id) is topic_obj:
            del self._live[topic_obj.id]
            self._unwatch(topic_obj)

    def _leave_all(self, conn: ConnectionInterface) -> None:
        # ``conn`` is a WampConnection (``on_close`` must accept any connection).
        # One pass, linear in the connection's subscriptions: the set is
        # emptied once at the end instead of discarding topic by topic.
        subscriptions = conn.wamp.subscriptions
        live = self._live
        topic_obj: Topic
        for topic_obj in subscriptions:
            subscribers = topic_obj._subscribers
            subscribers.pop(conn, None)
            if not subscribers and live.get(topic_obj._id) is topic_obj:
                del live[topic_obj._id]
                self._unwatch(topic_obj)
        subscriptions.clear()
