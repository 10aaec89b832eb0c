# -*- test-case-name: tests.phpws.test_memory -*-
"""
The clients of the phpws routes of one hub, in connection order.

phpWebSocketServer keeps one client list for all its resources (``/``,
``/web``, ``/php``): a broadcast or a feedback crosses them. Here that list
is a :class:`PhpWsClients` per ``Hub`` (``clients_for(hub)``), so every
phpws route of an ``App`` shares it, as they share the hub.

Each client's uuid is its ``conn.id`` and its ``Ident`` is a user bound in
the hub, so ``hub.push(uuid, ...)`` and the publish API's
``{"client": uuid}`` / ``{"user": ident}`` reach the same clients as
phpws ``feedback``. Frames to PHP-type clients go through a
:class:`Pacer`: their client reads one frame per read and drops whatever
else came in that read.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..exceptions import HubError
from ..interfaces import ConnectionInterface
from ..server.ids import node_of
from ..websocket.broadcast import prepare
from ..websocket.connection import protocol_of
from .packets import PING_PAYLOAD, php_json_encode
from .settings import Network, PhpWsSettings

if TYPE_CHECKING:
    from ..hub import Hub

__all__ = ["PhpWsClient", "PhpWsClients", "Pacer", "clients_for", "client_ip", "drop_connection"]

_log = Logger(namespace="ratchetpy.phpws")

MAX_PACED_BYTES = 4 * 1024 * 1024
"""What may wait to be paced out to one PHP-type client before it is dropped
(the server's default ``max_buffered_bytes``)."""

PHP = "php"
BROWSER = "websocket"

BROWSERS_CHANNEL = "phpws:browsers"
"""The hub channel every browser-type client joins: broadcasts cross processes through it."""


def drop_connection(conn: ConnectionInterface) -> None:
    """Close the TCP connection without a WebSocket close frame (as phpWebSocketServer does)."""
    protocol = protocol_of(conn)
    transport = getattr(protocol, "transport", None)
    if transport is not None:
        transport.loseConnection()


def set_no_delay(conn: ConnectionInterface) -> None:
    """Turn Nagle off on ``conn``'s TCP socket (through TLS too), if it has one."""
    transport: Any = getattr(protocol_of(conn), "transport", None)
    for _ in range(4):
        if transport is None:
            return
        set_it = getattr(transport, "setTcpNoDelay", None)
        if callable(set_it):
            try:
                set_it(True)
            except OSError:
                pass  # not a TCP socket after all (UNIX): nothing to do
            return
        transport = getattr(transport, "transport", None)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _inside(address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_ip(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """
    The client's IP: the first ``X-Forwarded-For`` entry when the peer is a
    trusted proxy and the entry is an IP address, else the peer's address.
    """
    address = _address(peer)
    if address is not None and forwarded_for and _inside(address, trusted):
        first = _address(forwarded_for[0].split(",")[0])
        if first is not None:
            return str(first)
    return str(address) if address is not None else peer


class Pacer:
    """
    Writes text frames to one connection at least ``gap`` seconds apart,
    the first one ``gap`` seconds after creation (after the 101), in order.
    ``close_after()`` drops the connection once the queue is written.
    """

    def __init__(
        self, conn: ConnectionInterface, reactor: Any, gap: float, max_bytes: int = MAX_PACED_BYTES
    ) -> None:
        self._conn = conn
        self._reactor = reactor
        self._gap = gap
        self._max_bytes = max_bytes
        self._queue: deque[str | bytes] = deque()
        self._queued_bytes = 0
        self._due = float(reactor.seconds()) + gap
        self._call: Any = None
        self._closing = False

    def send(self, data: str | bytes) -> None:
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        if self._queued_bytes + size > self._max_bytes and self._queue:
            # Frames to a PHP-type client leave one per gap; a sender faster
            # than that (a browser flooding feedback at its ident) must not
            # grow this queue without end. Same rule as the server's
            # overflow_policy "close": the slow reader goes, memory stays bounded.
            _log.warn(
                "phpws: PHP-type client {uuid}: over {limit} bytes wait to be paced out to it "
                "({count} frames); dropping it (it reads one frame per --phpws-php-gap)",
                uuid=getattr(self._conn, "id", None),
                limit=self._max_bytes,
                count=len(self._queue),
            )
            self.cancel()
            drop_connection(self._conn)
            return
        self._queue.append(data)
        self._queued_bytes += size
        self._pump()

    def close_after(self) -> None:
        self._closing = True
        self._pump()

    def cancel(self) -> None:
        """Forget what is queued (the connection is gone)."""
        self._queue.clear()
        self._queued_bytes = 0
        self._closing = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _pump(self) -> None:
        if self._call is not None:
            return
        if not self._queue:
            if self._closing:
                self._closing = False
                drop_connection(self._conn)
            return
        now = float(self._reactor.seconds())
        if now < self._due:
            self._call = self._reactor.callLater(self._due - now, self._fire)
            return
        data = self._queue.popleft()
        self._queued_bytes -= len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        self._conn.send(data)
        self._due = now + self._gap
        if self._queue or self._closing:
            self._call = self._reactor.callLater(self._gap, self._fire)

    def _fire(self) -> None:
        self._call = None
        self._pump()


class _PacedView:
    """
    A PHP-type client as the hub sees it: whatever is pushed to it (by
    ``hub.push``, the publish API) is paced. Deliberately not a connection
    decorator, so the hub's fast fan-out cannot write past the pacer; the
    handler unregisters it from the hub on close.
    """

    def __init__(self, wrapped: ConnectionInterface, client: PhpWsClient) -> None:
        self.__dict__["_wrapped"] = wrapped
        self.__dict__["_client"] = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_wrapped"], name)

    def send(self, data: str | bytes) -> _PacedView:
        self.__dict__["_client"].send(data)
        return self

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.__dict__["_wrapped"].close(code, reason)

    def get_connection(self) -> ConnectionInterface:
        return self.__dict__["_wrapped"]  # type: ignore[no-any-return]


@dataclass(eq=False)
class PhpWsClient:
    """
    One client of the phpws routes (phpWebSocketServer's ``Clients[id]``).

    Attributes:
        uuid: its id (``conn.id``), sent to it in ``ready``.
        client_type: ``"php"`` (``Client-Type: php``) or ``"websocket"``.
        ident: its ``Ident`` header (``""`` if none), bound as its hub user.
        ip: its address (from ``X-Forwarded-For`` through trusted proxies).
        resource: the path it connected to.
        headers: its request headers, lower-case names.
        time_created: reactor seconds when it connected.
        expect_pong: a ping was sent and its pong has not come back.
    """

    uuid: str
    client_type: str
    ident: str
    ip: str
    resource: str
    headers: dict[str, str]
    time_created: float
    conn: ConnectionInterface = field(repr=False)
    pacer: Pacer | None = field(default=None, repr=False)
    expect_pong: bool = False
    closed: bool = False

    @property
    def is_php(self) -> bool:
        return self.client_type == PHP

    @property
    def view(self) -> Any:
        """The connection as registered in the hub (paced for PHP-type clients)."""
        if self.pacer is None:
            return self.conn
        view = self.__dict__.get("_view")
        if view is None:
            view = self.__dict__["_view"] = _PacedView(self.conn, self)
        return view

    def send(self, data: str | bytes) -> None:
        """Send one message (paced for PHP-type clients); nothing once closed."""
        if self.closed:
            return
        if self.pacer is not None:
            self.pacer.send(data)
        else:
            self.conn.send(data)

    def drop(self) -> None:
        """Close TCP once what was sent is written, without a close frame."""
        if self.closed:
            return
        self.closed = True
        if self.pacer is not None:
            self.pacer.close_after()
        else:
            drop_connection(self.conn)


class PhpWsClients:
    """
    The phpws clients of one hub, in connection order, with the routing of
    ``feedback`` and ``broadcast`` and the browser pings.
    """

    def __init__(self, settings: PhpWsSettings) -> None:
        # No reference to the hub: it keys this registry weakly (clients_for).
        self.settings = settings
        self._clients: dict[str, PhpWsClient] = {}
        self._pinger: LoopingCall | None = None
        self.reactor: Any = None

    def __iter__(self) -> Iterator[PhpWsClient]:
        return iter(list(self._clients.values()))

    def __len__(self) -> int:
        return len(self._clients)

    def __contains__(self, uuid: object) -> bool:
        return uuid in self._clients

    def __getitem__(self, uuid: str) -> PhpWsClient:
        return self._clients[uuid]

    def get(self, uuid: str) -> PhpWsClient | None:
        return self._clients.get(uuid)

    def browsers_from(self, ip: str) -> int:
        """How many browser-type clients are connected from ``ip``."""
        return sum(1 for c in self._clients.values() if not c.is_php and c.ip == ip)

    def add(self, client: PhpWsClient, reactor: Any) -> None:
        self.reactor = reactor
        self._clients[client.uuid] = client
        self._start_pings()

    def remove(self, uuid: str) -> PhpWsClient | None:
        client = self._clients.pop(uuid, None)
        if client is not None and client.pacer is not None:
            client.pacer.cancel()
        if not any(not c.is_php for c in self._clients.values()):
            self._stop_pings()
        return client

    # -- routing -----------------------------------------------------------

    def find_feedback_target(self, packet: dict[str, Any]) -> PhpWsClient | None:
        """
        The first client, in connection order, that is a browser whose uuid
        is ``packet["uuid"]``, or whose ident is ``packet["ident"]`` (not
        empty); ``None`` if none is.
        """
        uuid = packet.get("uuid")
        ident = packet.get("ident")
        ident_text = "" if ident is None or ident is False else str(ident)
        for client in self._clients.values():
            if client.closed:
                continue
            if uuid is not None and client.uuid == uuid and not client.is_php:
                return client
            if ident_text and client.ident == ident_text:
                return client
        return None

    def feedback(self, packet: dict[str, Any], hub: Hub | None = None) -> bool:
        """
        Send ``packet``, re-encoded, to its target (see ``find_feedback_target``).

        With a ``hub`` spanning processes (``--workers``/``--redis``) and no
        target here, the packet goes on to the connection named by its uuid
        on another node, or to the first of its ident's connections on
        other nodes.

        Returns:
            Whether a client here got it, or it was handed to another node.
        """
        text = php_json_encode(packet)
        target = self.find_feedback_target(packet)
        if target is not None:
            target.send(text)
            return True
        if hub is None or hub.backplane is None:
            return False
        uuid = packet.get("uuid")
        if isinstance(uuid, str) and node_of(uuid) not in (None, hub.node):
            hub.push(uuid, text)
            return True
        ident = packet.get("ident")
        if isinstance(ident, (str, int)) and not isinstance(ident, bool) and str(ident):
            try:
                found = hub.connections_of(str(ident))
            except HubError:
                return False

            def first_remote(ids: list[str]) -> None:
                remote = [cid for cid in ids if node_of(cid) != hub.node]
                if remote:
                    hub.push(remote[0], text)

            found.addCallback(first_remote).addErrback(
                lambda f: _log.warn("phpws: feedback by ident across nodes failed ({error})", error=f.getErrorMessage())
            )
            return True
        return False

    def broadcast(self, sender: str | None, text: str, hub: Hub | None = None) -> int:
        """
        Send ``text`` as it is to every browser-type client but ``sender``;
        return how many here got it. With a ``hub`` spanning processes, the
        browsers of the other nodes get it too.
        """
        count = 0
        for client in self._clients.values():
            if client.is_php or client.closed or client.uuid == sender:
                continue
            client.send(text)
            count += 1
        if hub is not None and hub.backplane is not None:
            # The backplane delivers on the other nodes only: this one's
            # browsers were served above, in connection order.
            sent = hub.backplane.publish(
                BROWSERS_CHANNEL, prepare(text), frozenset([sender] if sender else []), False
            )
            sent.addErrback(
                lambda f: _log.warn("phpws: broadcast to other nodes failed ({error})", error=f.getErrorMessage())
            )
        return count

    # -- pings ---------------------------------------------------------------

    def pong(self, uuid: str) -> None:
        client = self._clients.get(uuid)
        if client is not None:
            client.expect_pong = False

    def _start_pings(self) -> None:
        interval = self.settings.ping_interval
        if not interval or self._pinger is not None or self.reactor is None:
            return
        self._pinger = LoopingCall(self._ping_round)
        self._pinger.clock = self.reactor
        self._pinger.start(interval, now=False)

    def _stop_pings(self) -> None:
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        self._pinger = None

    def _ping_round(self) -> None:
        for client in list(self._clients.values()):
            if client.is_php or client.closed:
                continue  # PHP clients would read a ping as their reply
            if client.expect_pong:
                _log.info(
                    "phpws: dropping browser client {uuid} from {ip}: no pong to the ping "
                    "{interval:g} s ago",
                    uuid=client.uuid,
                    ip=client.ip,
                    interval=self.settings.ping_interval,
                )
                client.drop()
                continue
            protocol: Any = protocol_of(client.conn)
            if protocol is not None:
                client.expect_pong = True
                protocol.sendPing(PING_PAYLOAD)


_REGISTRIES: WeakKeyDictionary[Any, PhpWsClients] = WeakKeyDictionary()


def clients_for(hub: Hub, settings: PhpWsSettings | None = None) -> PhpWsClients:
    """
    The phpws clients of ``hub`` (created with ``settings`` the first time;
    the routes of one server should share one ``PhpWsSettings``).
    """
    registry = _REGISTRIES.get(hub)
    if registry is None:
        registry = _REGISTRIES[hub] = PhpWsClients(settings or PhpWsSettings())
    elif settings is not None and registry.settings != settings:
        _log.warn(
            "phpws: routes on one hub were given different settings; the first route's apply "
            "to all (give every phpws route the same PhpWsSettings)"
        )
    return registry
