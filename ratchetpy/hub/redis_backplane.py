# -*- test-case-name: tests.hub.test_redis_backplane -*-
"""
``RedisBackplane``: one hub across processes and hosts, through Redis.

.. code-block:: python

    app = App("chat.example.com", 8080)
    app.use_redis("redis://127.0.0.1:6379/0")     # or RedisBackplane(app.hub, url, reactor)

Every node (process) keeps its own connections; Redis carries what one
node does for another (see ``ratchetpy.hub.envelope`` for every channel,
key and field):

- a channel publication goes once to each node with a member in that
  channel: a node subscribes to the channel's Redis channel while it has a
  local member, and unsubscribes after the last (``PUBSUB NUMSUB`` shows
  only the interested nodes); each node frames the message once for its
  own members;
- a push to a connection goes to the node named in its id (``conn.id``
  starts with the node), on that node's own Redis channel;
- a push to a user goes to the nodes holding one of the user's connections;
- a relay (``Hub.relay``: how a WAMP ``Topic.broadcast`` reaches other
  processes) goes once to each node with a receiver for that channel
  (``Hub.subscribe_channel``), fire and forget;
- presence lives in Redis, each entry with an expiry that its node
  refreshes every third of ``presence_ttl``: a node that dies drops out of
  every channel within ``presence_ttl`` seconds, without anyone asking it.
  Expiry times come from Redis's own clock (``TIME`` in the scripts), so
  hosts need not agree on the time.

Answers from other nodes (how many a publish reached, whether a push was
delivered, ``client_info``) come back on the asking node's Redis channel,
matched by a request id, waiting at most ``ack_timeout``.

Failure modes, and what happens (the logging and counting of failures is
``ratchetpy.hub.redis_outage``):

- **Redis down or unreachable.** WebSocket clients stay connected and
  local delivery goes on. Cross-node operations fail fast (the client does
  not queue while disconnected): a publish reaches this node's members
  only, a push to another node's connection is ``False``, presence and
  stats answer with this node's own view. The first failure of an outage
  is logged, once; every one is counted in ``counters``. Nothing waits on
  Redis in the reactor.
- **Redis comes back.** The client reconnects with jittered backoff, the
  subscriber subscribes again to every channel in batches, and this node
  writes its presence again at once (``on_reconnect``).
- **A node dies.** Its Redis subscriptions vanish with its connection, so
  a push to one of its ids finds no subscriber and answers ``False`` at
  once (PUBLISH's reply is 0); its presence expires within
  ``presence_ttl``.
- **A node hangs** (alive to Redis, not answering): pushes and counted
  publishes to it wait ``ack_timeout``, then answer with what arrived.
- **A malformed message** on a hub channel: counted, logged (at most once
  a minute) and dropped.
- **A command times out.** It may still have run (Redis was slow, not
  down): only idempotent writes are retried, which is all presence does.
- **A subscriber too slow for Redis** (a paused or overloaded node): Redis
  closes its pub/sub connection at ``client-output-buffer-limit pubsub``;
  the node reconnects and subscribes again like after an outage.
- **A Redis Cluster** (``redis+cluster://`` or ``?cluster=1``): commands
  go to the primary owning each key's slot (``RedisClusterClient``) and
  every channel, the node channels included, is a shard channel
  (SPUBLISH/SSUBSCRIBE on the slot's owner, ``ClusterSubscriber``), so
  PUBLISH's count of receivers stays exact. What happens when slots move
  or a primary dies is written next to the code that handles it
  (``ratchetpy.redis.cluster``, ``ratchetpy.redis.cluster_pubsub``) and in
  ``docs/scaling-cluster.md``.
- **A plain URL pointed at a Redis Cluster node** (MOVED/ASK/CROSSSLOT/
  CLUSTERDOWN replies): said once, at error level: "this is a Redis
  Cluster node: use redis+cluster://HOST:PORT".
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet import defer, task
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..redis.cluster import CommandClient
from ..redis.connections import AnySubscriber, connections
from ..redis.url import RedisConfig
from ..server.ids import node_of
from ..websocket.broadcast import PreparedMessage, prepare
from .answers import Answers, Question
from .envelope import Envelope, EnvelopeError, Names
from .redis_history import RedisHistory
from .redis_outage import OutageMixin
from .redis_presence import PresenceMixin

if TYPE_CHECKING:
    from .history import HistoryPolicy, HistoryResult, StreamPosition
    from .hub import Hub

__all__ = ["RedisBackplane", "DEFAULT_PRESENCE_TTL", "DEFAULT_ACK_TIMEOUT"]

_log = Logger(namespace="ratchetpy.hub.redis")

DEFAULT_PRESENCE_TTL = 30.0
"""Seconds a node's presence entries live unless refreshed (every third of it)."""

DEFAULT_ACK_TIMEOUT = 2.0
"""Seconds to wait for other nodes' answers (push delivered, publish counts)."""

_MALFORMED_LOG_INTERVAL = 60.0


class RedisBackplane(OutageMixin, PresenceMixin, MultiService):
    """
    The Redis implementation of ``ratchetpy.hub.backplane.Backplane``; a
    Twisted service (its Redis connections start and stop with it).

    Args:
        hub: the hub to span processes with (``hub.backplane`` is set).
        config: a ``redis://`` / ``rediss://`` URL or a ``RedisConfig``;
            its ``prefix`` (default ``ratchetpy:``) keeps apps apart.
        reactor: the reactor.
        presence_ttl: seconds before a dead node's presence expires.
        ack_timeout: seconds to wait for other nodes' answers.
        sharded: use sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7) for
            channels and users (always on for a Redis Cluster config, where
            the node channels are shard channels too).

    Attributes:
        counters: ``published``, ``received``, ``delivered_remote``,
            ``failures``, ``malformed``, ``timeouts`` (answers that did not
            all arrive in time); with history (``redis_history``):
            ``stored``, ``recovered`` (read back to fill a gap), ``resets``.
    """

    def __init__(
        self,
        hub: Hub,
        config: str | RedisConfig,
        reactor: Any,
        *,
        presence_ttl: float = DEFAULT_PRESENCE_TTL,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        sharded: bool = False,
        client: CommandClient | None = None,
        subscriber: AnySubscriber | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted's, unannotated
        if isinstance(config, str):
            config = RedisConfig.from_url(config)
        self.hub = hub
        self.reactor = reactor
        self.config = config
        self.names = Names(config.prefix or "ratchetpy:")
        self.presence_ttl = float(presence_ttl)
        self.ack_timeout = float(ack_timeout)
        self.cluster = config.cluster
        self.sharded = sharded or config.cluster
        self.client, self.subscriber = connections(
            config, reactor, on_reconnect=self._reconnected, on_disconnect=self._disconnected,
            client=client, subscriber=subscriber,
        )  # fmt: skip
        self.client.on_usable = self._client_usable
        self.client.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.subscriber.setServiceParent(self)  # type: ignore[no-untyped-call]
        self.counters: Counter[str] = Counter()
        self.answers = Answers(reactor, self.ack_timeout, self._answers_timed_out)
        self._refresher: task.LoopingCall | None = None
        self._outage_logged = False
        self._outage_since = 0.0
        self._cluster_logged = False
        self._last_malformed_log = -_MALFORMED_LOG_INTERVAL
        self.history_store = RedisHistory(self)
        hub.backplane = self

    @property
    def node(self) -> str:
        return self.hub.node

    # -- service -------------------------------------------------------------

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        # In a cluster a classic PUBLISH counts only one cluster node's
        # subscribers: the node channel is a shard channel there, so "no
        # receiver" still means "that node is gone".
        self.subscriber.subscribe(
            self.names.node(self.node), self._on_node_message, sharded=self.cluster
        ).addErrback(self._failed("subscribing to this node's channel", False))
        # Channels and users that already have local members (a backplane
        # added to a running hub).
        for channel in self.hub.channels():
            self._subscribe(self.names.channel(channel), self._on_channel_message)
            self.history_store.subscribed(channel)
        for user in self.hub.users():
            self._subscribe(self.names.user(user), self._on_user_message)
        for channel in self.hub.node_channels():
            self._subscribe(self.names.relay(channel), self._on_relay_message)
        self._refresher = task.LoopingCall(self.refresh)
        self._refresher.clock = self.reactor
        # The first refresh runs once the client is usable (on_usable).
        self._refresher.start(self.presence_ttl / 3, now=False)

    def stopService(self) -> defer.Deferred[None]:
        if self._refresher is not None and self._refresher.running:
            self._refresher.stop()
        self.history_store.stop()
        self.answers.settle_all()
        # Best effort: take this node's presence out now rather than at expiry.
        cleanup = self._remove_own_presence()
        cleanup.addBoth(lambda _: MultiService.stopService(self))
        return cleanup

    # -- subscriptions -------------------------------------------------------

    def _subscribe(self, name: str, callback: Any) -> None:
        self.subscriber.subscribe(name, callback, sharded=self.sharded).addErrback(
            self._failed(f"subscribing to {name}", False)
        )

    def _unsubscribe(self, name: str, callback: Any) -> None:
        try:
            d = self.subscriber.unsubscribe(name, callback, sharded=self.sharded)
        except ValueError:
            return  # never subscribed (the service had not started)
        d.addErrback(self._failed(f"unsubscribing from {name}", False))

    def _publish(self, name: str, envelope: Envelope) -> defer.Deferred[int]:
        self.counters["published"] += 1
        data = envelope.encode()
        if self.sharded and (self.cluster or not name.startswith(self.names.node(""))):
            return self.client.spublish(name, data)
        return self.client.publish(name, data)

    # -- Backplane: local interest -----------------------------------------------

    def joined(self, channel: str, cid: str, user: str | None, first: bool) -> None:
        if first and self.running:
            self._subscribe(self.names.channel(channel), self._on_channel_message)
            self.history_store.subscribed(channel)
        self._write_presence(self.names.presence(channel), [(cid, self._member_value(user))])

    def left(self, channel: str, cid: str, last: bool) -> None:
        if last and self.running:
            self._unsubscribe(self.names.channel(channel), self._on_channel_message)
        if last:
            self.history_store.forget(channel)
        self._delete_presence(self.names.presence(channel), cid)

    def bound(self, user: str, cid: str, first: bool) -> None:
        if first and self.running:
            self._subscribe(self.names.user(user), self._on_user_message)
        self._write_presence(self.names.user_presence(user), [(cid, self.node)])
        value = self._member_value(user)
        for channel in self.hub.channels_of(cid):
            self._write_presence(self.names.presence(channel), [(cid, value)])

    def unbound(self, user: str, cid: str, last: bool) -> None:
        if last and self.running:
            self._unsubscribe(self.names.user(user), self._on_user_message)
        self._delete_presence(self.names.user_presence(user), cid)
        value = self._member_value(None)
        for channel in self.hub.channels_of(cid):
            self._write_presence(self.names.presence(channel), [(cid, value)])

    # -- Backplane: node subscriptions (relays; WAMP topics) -------------------

    def node_subscribed(self, channel: str) -> None:
        if self.running:
            self._subscribe(self.names.relay(channel), self._on_relay_message)

    def node_unsubscribed(self, channel: str) -> None:
        if self.running:
            self._unsubscribe(self.names.relay(channel), self._on_relay_message)

    def relay(self, channel: str, prepared: PreparedMessage, meta: dict[str, Any]) -> None:
        # Fire and forget, like an uncounted publish: WAMP has no delivery
        # report to give its publisher.
        header: dict[str, Any] = {"c": channel, "o": prepared.opcode}
        if meta:
            header["m"] = meta
        envelope = Envelope("rel", self.node, header, prepared.payload)
        self._publish(self.names.relay(channel), envelope).addErrback(
            self._failed(f"relaying to {channel!r}", 0)
        )

    def _on_relay_message(self, channel: bytes, data: bytes) -> None:
        envelope = self._decode(data)
        # This node hears its own relays while it has receivers: they were
        # delivered here already.
        if envelope is None or envelope.node == self.node or envelope.kind != "rel":
            return
        self.counters["received"] += 1
        try:
            prepared = prepare(envelope.message())
        except EnvelopeError:
            self.counters["malformed"] += 1
            return
        meta = envelope.header.get("m", {})
        delivered = self.hub.deliver_relayed(str(envelope.header.get("c")), prepared, meta)
        self.counters["delivered_remote"] += delivered

    # -- Backplane: operations -------------------------------------------------

    def _fan_out(
        self, name: str, kind: str, target: str, prepared: PreparedMessage, exclude: frozenset[str], count: bool, own: bool
    ) -> defer.Deferred[int]:
        header: dict[str, Any] = {"c": target, "o": prepared.opcode}
        if exclude:
            header["x"] = sorted(exclude)
        if not count:
            self._publish(name, Envelope(kind, self.node, header, prepared.payload)).addErrback(
                self._failed(f"publishing to {target!r}", 0)
            )
            return defer.succeed(0)
        rid, request = self.answers.open(sum)
        header["r"] = rid
        sent = self._publish(name, Envelope(kind, self.node, header, prepared.payload))
        # This node hears its own publications while it has members: not an answer.
        return self._await_answers(
            sent, request, lambda receivers: max(0, receivers - (1 if own else 0)), f"publishing to {target!r}"
        )

    def _await_answers(
        self, sent: defer.Deferred[int], request: Question, expected: Any, what: str
    ) -> defer.Deferred[Any]:
        """``request``'s answer: ``expected(receivers)`` answers are awaited once
        PUBLISH says how many nodes heard it; a failed PUBLISH settles it at once."""

        def reached(receivers: int) -> None:
            request.expected = expected(receivers)
            request.check()

        def failed(failure: Failure) -> None:
            self._failed(what, None)(failure)
            request.settle()

        sent.addCallbacks(reached, failed)
        return request.deferred

    def publish(
        self, channel: str, prepared: PreparedMessage, exclude: frozenset[str], count: bool
    ) -> defer.Deferred[int]:
        own = self.subscriber.is_subscribed(self.names.channel(channel), sharded=self.sharded)
        return self._fan_out(self.names.channel(channel), "pub", channel, prepared, exclude, count, own)

    def push_user(
        self, user: str, prepared: PreparedMessage, exclude: frozenset[str], count: bool
    ) -> defer.Deferred[int]:
        own = self.subscriber.is_subscribed(self.names.user(user), sharded=self.sharded)
        return self._fan_out(self.names.user(user), "user", user, prepared, exclude, count, own)

    def _ask_node(self, cid: str, kind: str, header: dict[str, Any], payload: bytes, default: Any) -> defer.Deferred[Any]:
        node = node_of(cid)
        if node is None:
            return defer.succeed(default)
        rid, request = self.answers.open(lambda answers: answers[0] if answers else default)
        header = {"id": cid, "r": rid, **header}
        sent = self._publish(self.names.node(node), Envelope(kind, self.node, header, payload))
        # 0 receivers: no node listens on that channel (it is gone): answer now.
        return self._await_answers(sent, request, lambda receivers: 1 if receivers else 0, f"{kind} to node {node}")

    def publish_stored(
        self,
        channel: str,
        prepared: PreparedMessage,
        exclude: frozenset[str],
        count: bool,
        policy: HistoryPolicy,
    ) -> defer.Deferred[tuple[int, StreamPosition | None]]:
        return self.history_store.publish_stored(channel, prepared, exclude, count, policy)

    def history(
        self, channel: str, since: StreamPosition | None, limit: int | None, policy: HistoryPolicy
    ) -> defer.Deferred[HistoryResult]:
        return self.history_store.read(channel, since, limit, policy)

    def push(self, cid: str, prepared: PreparedMessage) -> defer.Deferred[bool]:
        d = self._ask_node(cid, "push", {"o": prepared.opcode}, prepared.payload, False)
        return d.addCallback(bool)

    def disconnect(self, cid: str, code: int, reason: str) -> defer.Deferred[bool]:
        d = self._ask_node(cid, "disc", {"code": code, "reason": reason}, b"", False)
        return d.addCallback(bool)

    def client_info(self, cid: str) -> defer.Deferred[dict[str, Any] | None]:
        d = self._ask_node(cid, "info", {}, b"", None)
        return d.addCallback(lambda info: info if isinstance(info, dict) else None)

    def _answers_timed_out(self) -> None:
        self.counters["timeouts"] += 1

    # -- inbound ---------------------------------------------------------------

    def _decode(self, data: bytes) -> Envelope | None:
        try:
            return Envelope.decode(data)
        except EnvelopeError as exc:
            self.counters["malformed"] += 1
            now = self.reactor.seconds()
            if now - self._last_malformed_log >= _MALFORMED_LOG_INTERVAL:
                self._last_malformed_log = now
                _log.warn(
                    "Redis backplane: dropped a malformed message ({error}); {count} so far. "
                    "Is another program publishing on the hub's Redis channels (prefix {prefix!r})?",
                    error=str(exc),
                    count=self.counters["malformed"],
                    prefix=self.names.prefix,
                )
            return None

    def _reply(self, envelope: Envelope, answer: Any) -> None:
        rid = envelope.header.get("r")
        if rid is None:
            return
        reply = Envelope("ack", self.node, {"r": rid, "d": answer})
        self._publish(self.names.node(envelope.node), reply).addErrback(
            self._failed(f"answering node {envelope.node}", None)
        )

    def _on_channel_message(self, channel: bytes, data: bytes) -> None:
        envelope = self._decode(data)
        if envelope is None or envelope.kind != "pub":
            return
        if "off" in envelope.header:  # stored: every node delivers it, this one too
            self.history_store.received(envelope)
            return
        self._deliver_fanned_out(envelope, self.hub.deliver_channel)

    def _on_user_message(self, channel: bytes, data: bytes) -> None:
        envelope = self._decode(data)
        if envelope is not None and envelope.kind == "user":
            self._deliver_fanned_out(envelope, self.hub.deliver_user)

    def _deliver_fanned_out(self, envelope: Envelope, deliver: Any) -> None:
        # A publication or user push from another node: deliver here, answer the count.
        if envelope.node == self.node:
            return  # delivered locally before it was published
        self.counters["received"] += 1
        try:
            prepared = prepare(envelope.message())
        except EnvelopeError:
            self.counters["malformed"] += 1
            return
        delivered = deliver(str(envelope.header.get("c")), prepared, envelope.exclude)
        self.counters["delivered_remote"] += delivered
        self._reply(envelope, delivered)

    def _on_node_message(self, channel: bytes, data: bytes) -> None:
        envelope = self._decode(data)
        if envelope is None:
            return
        self.counters["received"] += 1
        kind, header = envelope.kind, envelope.header
        if kind == "ack":
            request = self.answers.get(str(header.get("r")))
            if request is not None:
                request.answers.append(header.get("d"))
                request.check()
            return
        cid = header.get("id")
        if not isinstance(cid, str):
            self.counters["malformed"] += 1
            return
        if kind == "push":
            try:
                answer: Any = self.hub.send(cid, envelope.message())
            except EnvelopeError:
                self.counters["malformed"] += 1
                answer = False
        elif kind == "disc":
            code = header.get("code")
            reason = header.get("reason", "")
            try:
                answer = self.hub.local_disconnect(cid, int(code), str(reason))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                answer = False
        elif kind == "info":
            info = self.hub.local_client_info(cid)
            answer = info.as_dict() if info is not None else None
        else:
            self.counters["malformed"] += 1
            return
        self._reply(envelope, answer)
