# -*- test-case-name: tests.phpws.test_memory,tests.phpws.test_wire -*-
"""
``PhpWsServer``: a route speaking phpWebSocketServer's protocol, so its
browser client (``socketWebClient.js``) and PHP clients (``websocketPhp``)
work unchanged. ``twistd -n ratchetpy --route /web=phpws --route /php=phpws``.

What a client sees:

- the handshake needs an ``Origin`` header (else ``400``); ``Client-Type:
  php`` (any case) makes a PHP-type client, anything else a browser-type
  one; ``Ident: <name>`` binds the client to hub user ``<name>``;
- after the 101, checks that end in a TCP close: an ``Origin`` not in
  ``allowed_origins`` (silent), a request-target that is not exactly the
  route's path (``{"opcode":"close"}``), ``max_clients`` / ``max_per_ip``
  (``{"opcode":"close","error":"Too many connections"}`` / ``"Too many
  connections from: <ip>"``), a PHP-type client from an address outside
  ``php_allowed`` (silent), a failed ``jsauth`` session check
  (``{"opcode":"close","error":"Not authorized"}``);
- then ``{"opcode":"ready","uuid":<conn.id>}``: at once for browsers, for
  PHP-type clients in a write of its own ``php_gap`` seconds after the 101
  (with TCP_NODELAY), and every later frame to them spaced the same way;
- one ``{"opcode":"next","fyi":""}`` after each data message (see
  ``ratchetpy.phpws.resource``); ``quit``, invalid JSON and empty messages
  close TCP without a close frame;
- pings (``ping_interval``) to browser-type clients only, payload
  ``{"opcode":"PING"}``, dropping any whose previous ping went unanswered.

The uuid is the connection id (``<node>.<counter>.<secret>``), not
phpWebSocketServer's ``<uuid4>.<hmac>``: its clients only store it and
send it back, so they treat it as opaque.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import HubError
from ..http.interfaces import HttpServerInterface
from ..http.request import Request
from ..http.response import close_response
from ..interfaces import ConnectionInterface
from ..websocket.server import WsServer
from .clients import (
    BROWSER,
    BROWSERS_CHANNEL,
    PHP,
    Pacer,
    PhpWsClient,
    PhpWsClients,
    _address,
    _inside,
    client_ip,
    clients_for,
    set_no_delay,
)
from .packets import NEXT, InvalidPacket, close_packet, decode_packet, ready_packet
from .resource import DefaultResource, PhpWsResource
from .settings import PhpWsSettings

if TYPE_CHECKING:
    from ..hub import Hub

__all__ = ["PhpWsServer", "MAX_MESSAGE_SIZE"]

_log = Logger(namespace="ratchetpy.phpws")

MAX_MESSAGE_SIZE = 5 * 1024 * 1024
"""phpWebSocketServer's per-client buffer: larger messages close the connection."""

_SILENT = ""


class _PongingWsServer(WsServer):
    """A ``WsServer`` whose protocol tells the component of each pong."""

    def _build_protocol_class(self, factory: Any) -> Any:
        cls: Any = super()._build_protocol_class(factory)
        handler = self.component
        stock = cls.onPong

        def onPong(protocol: Any, payload: bytes) -> None:
            stock(protocol, payload)
            handler.on_pong(protocol.conn, payload)

        # The class is this server's own (see WsServer._build_protocol_class).
        cls.onPong = onPong
        return cls


class PhpWsServer(HttpServerInterface):
    """
    One phpws route (see the module docstring).

    Args:
        resource: the ``PhpWsResource`` serving it (default: the stock
            opcodes, :class:`DefaultResource`).
        settings: admission, pings and pacing, shared by every phpws route
            of the hub (the first route's apply).
        catch_all: answer every request with the 101, then
            ``{"opcode":"close"}`` (``twistd ratchetpy`` routes one after
            all others, so unknown paths get what phpWebSocketServer sends).
        max_message_size: the largest message in bytes (over it: closed).
        log_connections: log each connection's open and close.
    """

    def __init__(
        self,
        resource: PhpWsResource | None = None,
        *,
        settings: PhpWsSettings | None = None,
        catch_all: bool = False,
        max_message_size: int | None = MAX_MESSAGE_SIZE,
        log_connections: bool = True,
    ) -> None:
        self.resource = resource if resource is not None else DefaultResource()
        if not isinstance(self.resource, PhpWsResource):
            raise TypeError(f"resource must be a PhpWsResource, not {type(self.resource).__name__}")
        self.resource.attach(self)
        self.settings = settings if settings is not None else PhpWsSettings()
        self.catch_all = catch_all
        self._handler = _Handler(self)
        # Subprotocols and permessage-deflate are declined, as phpWebSocketServer does.
        self.component = _PongingWsServer(
            self._handler,
            max_message_size=max_message_size,
            strict_sub_protocols=False,
            register=False,
            log_connections=log_connections,
        )

    @property
    def hub(self) -> Hub:
        return self.component.hub

    @property
    def clients(self) -> PhpWsClients:
        """The phpws clients of this route's hub (every phpws route of it)."""
        return clients_for(self.component.hub, self.settings)

    # -- HttpServerInterface ---------------------------------------------------

    def on_open(self, conn: ConnectionInterface, request: Request) -> Any:
        if not request.headers.get("origin", "").strip():
            _log.info(
                "phpws: refused {method} {target} from {peer} with 400: no Origin header "
                "(phpWebSocketServer requires one; its PHP client sends Origin: http://<host>)",
                method=request.method,
                target=request.target,
                peer=conn.remote_address,
            )
            close_response(conn, 400, refusal="no_origin")
            return None
        return self.component.on_open(conn, request)

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        return self.component.on_message(conn, msg)

    def on_close(self, conn: ConnectionInterface) -> Any:
        return self.component.on_close(conn)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Any:
        return self.component.on_error(conn, exc)


class _Handler:
    """The message component inside a ``PhpWsServer``'s ``WsServer``."""

    def __init__(self, server: PhpWsServer) -> None:
        self.server = server

    # -- admission ---------------------------------------------------------------

    def _refusal(self, client: PhpWsClient, conn: ConnectionInterface, request: Request) -> tuple[str, str] | None:
        """``(packet text or _SILENT, log reason)`` for a client to turn away, else ``None``."""
        server = self.server
        clients = server.clients
        settings = clients.settings
        origin = request.headers.get("origin", "").strip()
        if settings.allowed_origins and origin not in settings.allowed_origins:
            return _SILENT, f"Origin {origin!r} is not one of the allowed origins (exact match; add it to --phpws-origins)"
        target_ok = (
            not server.catch_all
            and "?" not in request.target
            and request.target == unquote(request.path)
        )
        if not target_ok:
            return close_packet(), (
                f"unknown resource {request.target!r} (resources are matched exactly: no query, "
                "no trailing '/', same case)"
            )
        if settings.max_clients is not None and len(clients) + 1 > settings.max_clients:
            return close_packet("Too many connections"), f"max clients ({settings.max_clients}) reached (--phpws-max-clients)"
        if (
            settings.max_per_ip is not None
            and not client.is_php
            and clients.browsers_from(client.ip) + 1 > settings.max_per_ip
        ):
            return close_packet(f"Too many connections from: {client.ip}"), (
                f"max browser clients per IP ({settings.max_per_ip}) reached (--phpws-max-per-ip)"
            )
        if client.is_php and not self._php_allowed(client, conn):
            return _SILENT, (
                f"PHP-type client from {client.ip}, which is not allowed (allow it with "
                "--phpws-php-allow)"
            )
        if settings.jsauth is not None:
            why = settings.jsauth.check(request)
            if why is not None:
                return close_packet("Not authorized"), f"session check failed: {why}"
        return None

    def _php_allowed(self, client: PhpWsClient, conn: ConnectionInterface) -> bool:
        address = _address(client.ip)
        if address is None:
            return True  # a UNIX socket: local by nature
        allowed = self.server.clients.settings.php_allowed
        if allowed:
            return _inside(address, allowed)
        if address.is_loopback:
            return True
        try:
            own = _address(str(conn.transport.getHost().host))
        except AttributeError:
            own = None
        return own is not None and own == address

    # -- message component ---------------------------------------------------------

    def on_open(self, conn: ConnectionInterface) -> None:
        server = self.server
        settings = server.clients.settings
        request: Request = conn.http_request
        headers = request.headers
        reactor = conn.reactor
        is_php = headers.get("client-type", "").strip().lower() == "php"
        client = PhpWsClient(
            uuid=str(conn.id),
            client_type=PHP if is_php else BROWSER,
            ident=headers.get("ident", "").strip(),
            ip=client_ip(conn.remote_address, headers.get_all("x-forwarded-for"), settings.trusted_proxies),
            resource=request.target,
            headers={name.lower(): value for name, value in headers.raw_items()},
            time_created=float(reactor.seconds()),
            conn=conn,
        )
        if is_php:
            set_no_delay(conn)
            client.pacer = Pacer(conn, reactor, settings.php_gap)
        refusal = self._refusal(client, conn, request)
        if refusal is not None:
            packet, why = refusal
            _log.info(
                "phpws: closing {type} client from {ip} on {target}: {why}",
                type=client.client_type,
                ip=client.ip,
                target=request.target,
                why=why,
            )
            if packet:
                client.send(packet)
            client.drop()
            return
        clients = server.clients
        clients.add(client, reactor)
        hub = server.hub
        hub.register(client.view)
        if not client.is_php:
            # Broadcasts from other processes reach it through this channel.
            hub.join(client.view, BROWSERS_CHANNEL)
        if client.ident:
            try:
                hub.bind(client.view, client.ident)
            except HubError as exc:
                _log.info(
                    "phpws: client {uuid}'s Ident cannot be a hub user ({error}); feedback by "
                    "ident still reaches it, the publish API's user does not",
                    uuid=client.uuid,
                    error=exc,
                )
        client.send(ready_packet(client.uuid))
        self._call(client, "on_open", client.uuid)

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> None:
        client = self.server.clients.get(str(conn.id))
        if client is None or client.closed:
            return
        try:
            packet = decode_packet(msg)
        except InvalidPacket as exc:
            _log.info(
                "phpws: closing client {uuid} from {ip}: it sent {why} (every message must be one "
                "JSON packet)",
                uuid=client.uuid,
                ip=client.ip,
                why=exc,
            )
            client.drop()
            return
        if isinstance(packet, dict) and packet.get("opcode") == "quit":
            client.drop()
            return
        text = msg if isinstance(msg, str) else bytes(msg).decode("utf-8")
        result = self._call(client, "on_data", client.uuid, text)
        if isinstance(result, Deferred):
            result.addErrback(self._failed, client)
            result.addBoth(lambda _: client.send(NEXT))
            return
        client.send(NEXT)

    def on_close(self, conn: ConnectionInterface) -> None:
        client = self.server.clients.remove(str(conn.id))
        if client is None:
            return  # turned away on open: the resource never saw it
        client.closed = True
        if client.pacer is not None:
            # Its paced view is opaque to the hub's own cleanup.
            self.server.hub.unregister(client.uuid)
        self._call(client, "on_close", client.uuid)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        client = self.server.clients.get(str(conn.id))
        _log.failure(
            "phpws: error on client {uuid}; closing it", Failure(exc), uuid=getattr(conn, "id", None)
        )
        if client is not None:
            self._call(client, "on_error", client.uuid, exc)
            client.drop()

    def on_pong(self, conn: ConnectionInterface, payload: bytes) -> None:
        self.server.clients.pong(str(conn.id))

    # -- calling the resource --------------------------------------------------------

    def _call(self, client: PhpWsClient, name: str, *args: Any) -> Any:
        try:
            return getattr(self.server.resource, name)(*args)
        except Exception as exc:  # noqa: BLE001 - a resource's bug must not break the protocol
            self._failed(Failure(exc), client, name)
            return None

    def _failed(self, failure: Failure, client: PhpWsClient, name: str = "on_data") -> None:
        _log.failure(
            "phpws: {resource}.{name} failed for client {uuid}",
            failure,
            resource=type(self.server.resource).__name__,
            name=name,
            uuid=client.uuid,
        )
        if name != "on_error":
            exc = failure.value
            if isinstance(exc, Exception):
                try:
                    self.server.resource.on_error(client.uuid, exc)
                except Exception:  # noqa: BLE001 - logged; nothing more to do
                    _log.failure("phpws: on_error failed too")

