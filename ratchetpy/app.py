# -*- test-case-name: tests.test_app -*-
"""
``App``: Ratchet's facade. Routes, origin checks and keepalive in a few lines.

.. code-block:: python

    app = App("localhost", 8080)
    app.route("/chat", Chat(), ["*"])
    app.route("/echo", EchoServer(), ["*"])
    app.run()

The stack is ``IoServer → HttpServer → Router → [OriginCheck] → WsServer →
component``, as in Ratchet, and the gates answer in Ratchet's order: an
unknown path or a ``Host`` that is not ``http_host`` gets 404, a method
other than GET 405, an ``Origin`` host not allowed 403, then the WebSocket
handshake checks (400/426/505).

``app.blacklist`` is an ``IpBlackList`` at the bottom of the stack:
``app.blacklist.block_address("10.0.0.0/8")``.

``App`` is a Twisted service too (``app.setServiceParent(application)``):
starting it listens; stopping it stops listening, closes every WebSocket
with 1001 (Going Away), waits for the closing handshakes (up to
``shutdown_timeout``), and drops what is left.

``app.use_redis("redis://127.0.0.1:6379/0")`` makes ``app.hub`` one hub
across every process using that Redis (``ratchetpy._appredis``).

``app.metrics("/metrics")`` serves Prometheus metrics beside the routes,
``app.metrics_listen("tcp:9100:interface=127.0.0.1")`` on a port of their
own (see ``ratchetpy.hub.metrics``; needs ``ratchetpy[metrics]``). Those
methods are ``ratchetpy._appmetrics``'s; how routed components are wrapped is
``ratchetpy.wrapping``'s, and the endpoints' details ``ratchetpy._appendpoints``'s.

Unlike Ratchet, ``App`` opens no second port: Ratchet's Flash socket policy
server on 8843 (843) is retired, since no browser runs Flash any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from ._appendpoints import app_endpoint, describe, listen_error
from ._appmetrics import AppMetrics
from ._appredis import AppRedis

# ListenError is defined in .exceptions; re-exported here, where it used to live.
from .exceptions import ConfigurationError, ListenError
from .http.origin import SAME_HOST, OriginCheck
from .http.router import Route, Router
from .http.server import HttpServer
from .hub import Hub
from .hub.pushapi import DEFAULT_BODY_TIMEOUT, DEFAULT_HUB_TIMEOUT, DEFAULT_MAX_BODY, PushApi
from .server.blacklist import IpBlackList
from .server.io import IoServer
from .websocket.admission import DEFAULT_RETRY_AFTER, Admission
from .websocket.server import DEFAULT_MAX_MESSAGE_SIZE, WsServer

# Defined in .wrapping; re-exported here, where they used to live.
from .wrapping import DEFAULT_KEEPALIVE as DEFAULT_KEEPALIVE
from .wrapping import is_wamp_component, wrap_component, wraps_component

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

    from .hub.redis_backplane import RedisBackplane

__all__ = ["App", "ListenError", "wrap_component", "is_wamp_component"]

_log = Logger(namespace="ratchetpy.app")

DEFAULT_SHUTDOWN_TIMEOUT = 10.0
"""Seconds a graceful stop waits for clients to answer the 1001 close."""


def _default_reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class App(AppMetrics, AppRedis, Service):
    """
    A routed WebSocket server, Ratchet's ``Ratchet\\App``.

    Args:
        http_host: the host name clients connect with (the ``Host`` header
            must match it, ignoring port and case, or the request gets 404;
            ``"*"`` matches any host). Also the default allowed origin.
        port: the TCP port.
        address: the interface to bind (``"0.0.0.0"`` for all IPv4).
        reactor: the reactor (the global one by default).
        tls: serve wss://: ``{"local_cert": "cert.pem", "local_pk": "key.pem"}``
            (Ratchet's context keys; ``cert``/``key`` work too), or a Twisted
            TLS context factory such as ``CertificateOptions``.
        listen: endpoint descriptions (``"tcp:8080:interface=127.0.0.1"``,
            ``"ssl:8443:privateKey=key.pem:certKey=cert.pem"``) or endpoints,
            used instead of ``port``/``address``/``tls``.
        keepalive: seconds between pings on wrapped message components
            (0 turns it off).
        max_message_size: the WebSocket message limit for wrapped components.
        shutdown_timeout: seconds a stop waits for closing handshakes.
        log_connections: log each WebSocket's open and close at info level.
        allow_missing_origin: let requests without an ``Origin`` header
            (non-browser clients) through routes that check origins;
            Ratchet refuses them with 403.
        max_connections: most WebSocket connections at once over all
            routes; over it a handshake gets ``503`` + ``Retry-After``
            (``None``, default: no limit).
        max_connections_per_ip: the same per client IP address (``None``,
            default: no limit). Behind a reverse proxy this is the proxy's.
        retry_after: the ``Retry-After`` seconds of those 503s.
        idle_timeout: close (1001) clients of wrapped components that sent
            no message for this many seconds (``None``, default: never).
        idle_counts_pongs: count keepalive pongs as activity.

    Attributes:
        hub: the ``Hub`` every route shares: connection ids, push, users,
            channels, presence and ``stats()`` (``conn.hub`` in a component).
        admission: the ``Admission`` every route's ``WsServer`` counts in,
            so the connection limits are the whole ``App``'s.
        servers: one ``IoServer`` per listening endpoint.
        metrics_servers: the ``IoServer`` of each ``metrics_listen``; they
            start and stop with the App.
        backplane: the ``RedisBackplane`` of ``use_redis``, or ``None``
            (the hub is this process's only).
        session_providers: the ``SessionProvider`` of each
            ``route(..., session=...)``; their stores are disconnected on stop.
    """

    def __init__(
        self,
        http_host: str = "localhost",
        port: int = 8080,
        address: str = "127.0.0.1",
        reactor: Any = None,
        tls: Any = None,
        *,
        listen: Sequence[str | IStreamServerEndpoint] | None = None,
        keepalive: float = DEFAULT_KEEPALIVE,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        log_connections: bool = True,
        allow_missing_origin: bool = False,
        max_connections: int | None = None,
        max_connections_per_ip: int | None = None,
        retry_after: int = DEFAULT_RETRY_AFTER,
        idle_timeout: float | None = None,
        idle_counts_pongs: bool = False,
    ) -> None:
        self.http_host = (http_host or "*").lower()
        self.port = port
        self.address = address
        self.reactor = reactor if reactor is not None else _default_reactor()
        self.keepalive = keepalive
        self.max_message_size = max_message_size
        self.shutdown_timeout = shutdown_timeout
        self.log_connections = log_connections
        self.allow_missing_origin = allow_missing_origin
        self.hub = Hub()
        self.admission = Admission(
            max_connections, max_connections_per_ip, retry_after=retry_after
        )
        if idle_timeout is not None and (
            isinstance(idle_timeout, bool)
            or not isinstance(idle_timeout, (int, float))
            or not 0 < idle_timeout < float("inf")
        ):
            raise ConfigurationError(
                f"idle_timeout must be a positive number of seconds or None, not {idle_timeout!r}"
            )
        self.idle_timeout = idle_timeout
        self.idle_counts_pongs = idle_counts_pongs
        self.router = Router()
        self.http = HttpServer(self.router)
        # Closest to IoServer, as Ratchet advises; empty unless you block.
        self.blacklist = IpBlackList(self.http)
        self.ws_servers: list[WsServer] = []
        self.session_providers: list[Any] = []
        if listen is None:
            listen = [app_endpoint(self.reactor, port, address, tls)]
        elif not listen:
            raise ConfigurationError("App(listen=...) needs at least one endpoint")
        self.servers = [
            IoServer(
                self.blacklist,
                spec,
                self.reactor,
                shutdown_timeout=shutdown_timeout,
                stats=self.hub.counters,
            )
            for spec in listen
        ]
        self.metrics_servers: list[IoServer] = []
        self._metrics_registry: CollectorRegistry | None = None
        self.backplane: RedisBackplane | None = None

    # -- Ratchet's API -----------------------------------------------------

    @property
    def routes(self) -> Router:
        """The router (Ratchet's ``$app->routes``)."""
        return self.router

    @property
    def loop(self) -> Any:
        """The reactor, under Ratchet's name."""
        return self.reactor

    def route(
        self,
        path: str,
        component: Any,
        allowed_origins: Iterable[str] | None = None,
        http_host: str | None = None,
        *,
        hub: bool | None = None,
        session: Any = None,
    ) -> Any:
        """
        Serve ``component`` at ``path`` (Ratchet's ``App::route``).

        Args:
            path: a path pattern, e.g. ``/chat`` or ``/chat/{room}``.
            component: a message component, a WAMP application, or an
                ``HttpServerInterface`` (see :func:`wrap_component`).
            allowed_origins: Origin hosts allowed; empty or ``None`` means
                ``[http_host]`` (same-site only, as Ratchet); ``["*"]``
                allows every origin, including clients that send none.
            http_host: the Host this route answers (default: the App's).
            hub: register every connection of this route with ``app.hub``
                so it can be reached by ``conn.id`` from anywhere (default:
                the component's ``register_with_hub`` attribute, which the
                built-in chat sets).
            session: give each connection ``conn.session``, the PHP site's
                session, through a ``SessionProvider`` between the origin
                check and the ``WsServer``: a session handler
                (``FilesHandler(...)``), a description
                (``"files:/var/lib/php/sessions"``, ``"redis://..."``,
                ``"memcached:HOST:PORT"``), or a dict of ``SessionProvider``
                arguments (``{"handler": ..., "options": {"name": "SID"},
                "serializer": "php", "laravel_key": ...}``). See
                ``ratchetpy.session``.

        Returns:
            The component as routed (``WsServer``, or ``OriginCheck`` or
            ``SessionProvider`` around it).
        """
        host = (http_host or self.http_host).lower()
        origins = list(allowed_origins or ())
        if not origins:
            # Ratchet's same-site default; with any Host, the page's own host.
            origins = [host] if host != "*" else [SAME_HOST]
        decorated = wrap_component(
            component,
            keepalive=self.keepalive,
            max_message_size=self.max_message_size,
            log_connections=self.log_connections,
            hub=self.hub,
            register=hub,
            admission=self.admission,
            idle_timeout=self.idle_timeout,
            idle_counts_pongs=self.idle_counts_pongs,
        )
        self._collect_ws_servers(decorated)
        if hub is not None:
            for ws in self.ws_servers:
                if wraps_component(decorated, ws):
                    ws.register = bool(hub)
        if session is not None:
            decorated = self._session_provider(decorated, session)
        if "*" not in origins:
            decorated = OriginCheck(
                decorated, origins, allow_missing=self.allow_missing_origin
            )
        self.router.add(path, decorated, methods=("GET",), host=host)
        _log.info(
            "Route {path} -> {name} (Host {host}; origins {origins})",
            path=path,
            name=type(component).__name__,
            host="any" if host == "*" else host,
            origins=", ".join(origins) if "*" not in origins else "any",
        )
        return decorated

    def push_api(
        self,
        path: str,
        key: str | None,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        hub_timeout: float = DEFAULT_HUB_TIMEOUT,
        http_host: str | None = None,
        listen: Sequence[str | IStreamServerEndpoint] | None = None,
    ) -> PushApi:
        """
        Serve the HTTP publish API for ``app.hub`` under ``path``.

        ``POST path`` with ``Authorization: Bearer <key>`` and a JSON body
        ``{"channel"|"client"|"user": ..., "data": ...}`` (or a list of
        them) delivers to the hub's connections; ``GET path/stats`` and
        ``GET path/channels/NAME`` read. See ``ratchetpy.hub.pushapi``.

        Args:
            path: the base path, e.g. ``/push``.
            key: the bearer key, at least 16 characters (e.g.
                ``secrets.token_urlsafe(32)``).
            max_body: the largest body accepted (413 beyond), in bytes.
            body_timeout: seconds a client has to send its body (408).
            hub_timeout: seconds the hub has to answer (503).
            http_host: the Host the API answers (default: any, since
                backends often connect by IP address).
            listen: endpoints on which the API alone answers (e.g.
                ``["tcp:8081:interface=127.0.0.1"]``), instead of beside
                the routes on every endpoint of the App. The WebSocket
                routes do not answer there, and ``app.blacklist`` does
                not apply there (keep these endpoints private).

        Returns:
            The ``PushApi``.

        Raises:
            ConfigurationError: no key or a key under 16 characters, a bad
                path or limit, or a path already routed; the message names
                the fix.
        """
        api = PushApi(
            self.hub,
            key,
            path=path,
            max_body=max_body,
            body_timeout=body_timeout,
            hub_timeout=hub_timeout,
        )
        taken = [r.path for r in self.router.routes if r.path == api.path or r.path.startswith(api.path + "/")]
        if taken:
            raise ConfigurationError(
                f"the publish API path {api.path} is already routed ({taken[0]}); give it a path of its own"
            )
        host = (http_host or "*").lower()
        if listen is None:
            self.router.add(api.route_pattern, api, methods=(), host=host)
            where = "on every endpoint"
        else:
            if isinstance(listen, str) or not listen:
                raise ConfigurationError(
                    "push_api(listen=...) takes a list of endpoints, e.g. ['tcp:8081:interface=127.0.0.1']"
                )
            router = Router([Route(api.route_pattern, api, (), host)])
            servers = [
                IoServer(
                    HttpServer(router),
                    spec,
                    self.reactor,
                    shutdown_timeout=self.shutdown_timeout,
                    stats=self.hub.counters,
                )
                for spec in listen
            ]
            self.servers.extend(servers)
            if self.running:
                for server in servers:
                    server.listen().addErrback(self._listen_failed, server)
            where = "on its own endpoints only"
        _log.info(
            "Publish API at {path} ({where}; Host {host}; max body {max_body} bytes)",
            path=api.path,
            where=where,
            host="any" if host == "*" else host,
            max_body=max_body,
        )
        return api

    def _session_provider(self, component: Any, session: Any) -> Any:
        from .session.provider import SessionProvider

        if isinstance(session, dict):
            settings = dict(session)
            handler = settings.pop("handler", None)
            if handler is None:
                raise ConfigurationError(
                    "route(session={...}) needs a 'handler', e.g. 'files:/var/lib/php/sessions'"
                )
        else:
            handler, settings = session, {}
        settings.setdefault("reactor", self.reactor)
        provider = SessionProvider(component, handler, **settings)
        self.session_providers.append(provider)
        return provider

    def _collect_ws_servers(self, component: Any) -> None:
        # Follow .component links down (OriginCheck → WsServer, ...).
        seen = 0
        while component is not None and seen < 16:
            if isinstance(component, WsServer) and component not in self.ws_servers:
                component.use_hub(self.hub)
                component.use_admission(self.admission)
                self.ws_servers.append(component)
            component = getattr(component, "component", None)
            seen += 1

    # -- running (the metrics methods: ratchetpy._appmetrics) ---------------

    def _listeners(self) -> list[IoServer]:
        return [*self.servers, *self.metrics_servers]

    def run(self) -> None:
        """
        Listen and run the reactor until stopped.

        Ctrl-C or SIGTERM stop gracefully (WebSocket clients get 1001 and
        ``shutdown_timeout`` seconds to answer); a second signal during the
        stop drops every connection at once.
        """
        from .server._run import begin_logging, run_service

        begin_logging()
        try:
            self.privilegedStartService()
        except ListenError as exc:
            raise SystemExit(f"ratchetpy: {exc}") from None
        run_service(self, self.reactor, self.drop_connections)

    # -- service -----------------------------------------------------------

    def privilegedStartService(self) -> None:
        """Bind every endpoint now (before twistd drops privileges)."""
        Service.privilegedStartService(self)
        failures: list[tuple[IoServer, Failure]] = []
        for server in self._listeners():
            server.listen().addErrback(lambda f, s: failures.append((s, f)), server)
        if failures:
            for server in self._listeners():
                if server.port is not None:
                    server.stopService()
            server, failure = failures[0]
            raise listen_error(server.endpoint, failure, metrics=server in self.metrics_servers)

    def startService(self) -> None:
        if not self.running:
            Service.startService(self)
        # Connected (or connecting) before the first client can arrive.
        self._start_backplane()
        for server in self._listeners():
            if server._listening is None:
                server.listen().addErrback(self._listen_failed, server)

    def _listen_failed(self, failure: Failure, server: IoServer) -> None:
        _log.error(
            "Cannot listen on {endpoint}: {error}",
            endpoint=describe(server.endpoint),
            error=failure.getErrorMessage(),
        )

    def stopService(self) -> Deferred[Any]:
        """
        Stop listening, close every connection (WebSocket: 1001), wait up to
        ``shutdown_timeout``, then drop the rest. Finishes within
        ``shutdown_timeout`` plus a second, whatever components and peers do
        (plus, with ``use_redis``, a second or so to disconnect from Redis:
        after the connections, so their last publishes still cross).
        """
        Service.stopService(self)
        self.admission.flush()
        count = sum(server.connection_count for server in self.servers)
        stops = [maybeDeferred(server.stopService) for server in self._listeners()]

        def done(results: list[Any]) -> Any:
            if count:
                _log.info("Stopped: all connections closed")
            # After the connections: their sessions no longer load.
            return DeferredList(
                [maybeDeferred(p.stop) for p in self.session_providers], consumeErrors=True
            )

        return DeferredList(stops, consumeErrors=True).addCallback(done).addCallback(self._stop_backplane)

    def drop_connections(self) -> None:
        """Drop every open connection now (a second SIGTERM during a stop)."""
        for server in self._listeners():
            server.drop_connections()

