# -*- test-case-name: tests.swoole.test_server -*-
"""
``Server``: Swoole's ``WebSocket\\Server`` API on ratchetpy's stack.

.. code-block:: python

    server = Server("0.0.0.0", 9501)

    @server.on("open")
    def on_open(server, request):
        server.push(request.fd, "welcome")

    @server.on("message")
    def on_message(server, frame):
        server.push(frame.fd, "hello, " + frame.data + " !")

    server.start()

The server runs in an ``App`` (its own, built by ``start()``; or one you
give ``attach()``, as ``twistd ratchetpy --route /=module:server`` does),
so it has App's stack, hub, TLS and graceful stop. Connections are
registered with the App's hub on open: ``push``/``exist``/``disconnect``
take the connection's id, ``request.fd``/``frame.fd`` (a string here;
Swoole's ``$fd`` is an int). Those connection-facing methods are
``ratchetpy.swoole.connections``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from .._handlers import as_deferred, stop_reactor
from ..app import App
from ..exceptions import ConfigurationError
from ..http.origin import OriginCheck
from ..websocket.server import DEFAULT_MAX_MESSAGE_SIZE, WsServer
from .connections import Connections
from .events import (
    EVENTS,
    NOT_SUPPORTED_EVENTS,
    Dispatcher,
    Events,
    PrefixRoute,
)
from .settings import Settings, parameters_of
from .tasks import Tasks, reactor_only
from .timers import Timers

__all__ = ["Server", "EVENTS"]

_log = Logger(namespace="ratchetpy.swoole")

_F = TypeVar("_F", bound=Callable[..., Any])


def _default_reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class Server(Connections):
    """
    A Swoole-style WebSocket server (``Swoole\\WebSocket\\Server``).

    Args:
        host: the address to listen on (Swoole's default ``"0.0.0.0"``: every
            IPv4 interface).
        port: the TCP port (Swoole's 9501).
        reactor: the reactor (the global one by default, imported only when
            first needed).
        **settings: Swoole settings, as ``set()`` takes them.

    Raises:
        ConfigurationError: a setting cannot be used (see ``set``).
    """

    def __init__(
        self, host: str = "0.0.0.0", port: int = 9501, *, reactor: Any = None, **settings: Any
    ) -> None:
        self.host = host
        self.port = port
        self._reactor = reactor
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._settings = Settings()
        self.timers = Timers(lambda: self.reactor)
        self._app: App | None = None
        self._attached: App | None = None
        self._ws: WsServer | None = None
        self.tasks = Tasks(self, lambda: self.reactor, self._handler)
        self._requests = 0
        self._start_time = 0.0
        self._trigger: Any = None
        self._stopped = False
        self._runs_reactor = False
        if settings:
            self.set(settings)

    # -- configuration -----------------------------------------------------

    @property
    def reactor(self) -> Any:
        """The reactor the server runs on."""
        if self._reactor is None:
            self._reactor = self._attached.reactor if self._attached is not None else _default_reactor()
        return self._reactor

    @property
    def setting(self) -> dict[str, Any]:
        """The settings given to ``set()`` (Swoole's ``$server->setting``)."""
        return dict(self._settings.given)

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """
        Register ``handler`` for ``event``; without ``handler``, a decorator.

        Handlers may be ``async def`` or return a Deferred; the events of
        one connection then wait for it, in order. See ``EVENTS`` for each
        handler's arguments.

        Raises:
            ConfigurationError: an unknown or unsupported event, or a
                handler that is not callable.
        """
        name = event.lower() if isinstance(event, str) else ""
        if name not in EVENTS:
            if name in NOT_SUPPORTED_EVENTS:
                raise ConfigurationError(f"event {event!r} is not supported: {NOT_SUPPORTED_EVENTS[name]}")
            raise ConfigurationError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        if handler is None:

            def register(fn: _F) -> _F:
                self.on(event, fn)
                return fn

            return register
        if not callable(handler):
            raise ConfigurationError(f"on({event!r}, handler): the handler must be callable, not {handler!r}")
        self._handlers[name] = handler
        return True

    def _handler(self, event: str) -> Callable[..., Any] | None:
        return self._handlers.get(event)

    def set(self, settings: Mapping[str, Any]) -> bool:
        """
        Apply Swoole settings (``$server->set([...])``); call it before
        ``start()``. All of them or none are applied.

        Raises:
            ConfigurationError: the server already runs, or a setting is
                unknown, does not apply here, is not supported by this
                version, or has a bad value; the message says which.
        """
        if self._attached is not None:
            raise ConfigurationError("set() must come before start(): the server already runs")
        self._settings.update(settings, parameters_of(App), parameters_of(WsServer))
        return True

    def check(self) -> None:
        """
        Raise ``ConfigurationError`` if the server cannot run: it needs a
        ``message`` handler, as Swoole does.
        """
        if "message" not in self._handlers:
            raise ConfigurationError(
                "a Swoole server needs a 'message' handler: @server.on('message') def "
                "on_message(server, frame): ..."
            )

    # -- running -----------------------------------------------------------

    @property
    def app(self) -> App:
        """
        The ``App`` this server runs in: the one given to ``attach()``, or
        its own (listening on ``host``:``port``, built on first use).
        """
        if self._attached is not None:
            return self._attached
        self.check()
        settings = self._settings
        options: dict[str, Any] = dict(settings.app_options)
        if settings.cert:
            options["tls"] = {"local_cert": settings.cert, "local_pk": settings.key}
        if settings.shutdown_timeout is not None:
            options["shutdown_timeout"] = settings.shutdown_timeout
        app = App("*", self.port, self.host, self._reactor, allow_missing_origin=True, **options)
        self._app = app
        self.attach(app)
        return app

    def attach(self, app: App, path: str = "/", allowed_origins: list[str] | None = None) -> Dispatcher:
        """
        Serve this server through ``app``, for ``path`` and every path
        below it (WebSocket upgrades and, with a ``request`` handler, plain
        HTTP of any method). ``twistd ratchetpy --route PATH=module:server``
        calls this.

        Args:
            app: the App; its hub, keepalive and size limit apply unless
                ``set()`` gave others.
            path: the path prefix.
            allowed_origins: Origin hosts WebSocket clients may come from
                (the ``allowed_origins`` setting wins; ``None``: any).

        Raises:
            ConfigurationError: already attached, no ``message`` handler,
                or a path with parameters.
        """
        if self._attached is not None:
            raise ConfigurationError("this Swoole server already runs: serve it from one place")
        self.check()
        settings = self._settings
        size = settings.max_message_size if settings.max_message_size is not None else app.max_message_size
        options: dict[str, Any] = dict(settings.ws_options)
        if settings.max_buffered_bytes is not None:
            options["max_buffered_bytes"] = settings.max_buffered_bytes
        ws = WsServer(
            Events(self, settings.sub_protocol),
            max_message_size=size,
            strict_sub_protocols=False,
            compression=settings.compression,
            log_connections=app.log_connections if settings.log_connections is None else settings.log_connections,
            hub=app.hub,
            register=True,
            **options,
        )
        ws.enable_keep_alive(app.keepalive if settings.keepalive is None else settings.keepalive)
        origins = settings.allowed_origins if settings.allowed_origins is not None else allowed_origins
        entry: Any = ws
        if origins and "*" not in origins:
            entry = OriginCheck(ws, origins, allow_missing=app.allow_missing_origin)
        dispatcher = Dispatcher(self, entry, settings.max_message_size or DEFAULT_MAX_MESSAGE_SIZE)
        route = PrefixRoute(path, dispatcher, (), app.http_host)
        app.router.routes.append(route)
        app.ws_servers.append(ws)
        self._attached, self._ws = app, ws
        if app is not self._app:
            self._warn_unused(app)
        reactor = self.reactor
        if settings.thread_pool_size:
            reactor.suggestThreadPoolSize(settings.thread_pool_size)
        self._start_time = time.time()
        self._stopped = False
        self._trigger = reactor.addSystemEventTrigger("before", "shutdown", self._reactor_stopping)
        reactor.callWhenRunning(self._started)
        _log.info("Swoole server: WebSocket and HTTP under {path}", path=route.describe())
        return dispatcher

    def _warn_unused(self, app: App) -> None:
        unused = sorted(set(self._settings.listen_keys))
        if unused:
            _log.warn(
                "Swoole settings {keys} apply to the listening side, which {app!r} owns here: "
                "they are ignored (under twistd use --tls-cert/--tls-key and --shutdown-timeout)",
                keys=", ".join(unused),
                app=app,
            )

    def start(self) -> bool:
        """
        Listen on ``host``:``port`` and run the reactor until the process is
        stopped (SIGTERM/Ctrl-C stop gracefully, as ``App.run()``) or
        ``shutdown()`` is called. Returns ``True`` once stopped.
        """
        app = self.app
        self._runs_reactor = True
        try:
            app.run()
        finally:
            self._runs_reactor = False
        return True

    def shutdown(self) -> Deferred[Any]:
        """
        Stop: clear the timers, call the ``shutdown`` handler, then stop
        gracefully (clients get 1001); when ``start()`` runs the reactor, it
        stops too and ``start()`` returns.

        Returns:
            A Deferred firing once the server's own App has stopped (at once
            when the server runs in an App it does not own).
        """
        self._stopping()
        if self._runs_reactor:
            stop_reactor(self.reactor)
            return succeed(None)
        if self._app is not None and self._app.running:
            return self._app.stopService()
        return succeed(None)

    def _started(self) -> None:
        self._call_lifecycle("start", self)
        self._call_lifecycle("workerstart", self, 0)

    def _reactor_stopping(self) -> None:
        self._trigger = None  # firing now: removing it would warn
        self._stopping()

    def _stopping(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        trigger, self._trigger = self._trigger, None
        if trigger is not None:
            self.reactor.removeSystemEventTrigger(trigger)
        self.timers.clear_all()
        self._call_lifecycle("shutdown", self)

    def _call_lifecycle(self, event: str, *args: Any) -> None:
        handler = self._handlers.get(event)
        if handler is None:
            return
        try:
            d = as_deferred(handler(*args))
        except Exception:  # noqa: BLE001 - logged: a lifecycle handler never stops the server
            _log.failure("The {event!r} handler raised", event=event)
            return
        if d is not None:
            d.addErrback(lambda f: _log.failure("The {event!r} handler failed", f, event=event))

    # -- connections: inherited from Connections (ratchetpy.swoole.connections)

    # -- timers and tasks --------------------------------------------------

    def tick(self, ms: float, fn: Callable[..., Any], *args: Any) -> int:
        """
        Call ``fn`` every ``ms`` **milliseconds** (Swoole's unit); ``fn``
        gets the timer id first if it takes one more argument than
        ``args``. Returns the timer id. See ``ratchetpy.swoole.timers``.
        """
        reactor_only("tick")
        return self.timers.tick(ms, fn, *args)

    def after(self, ms: float, fn: Callable[..., Any], *args: Any) -> int:
        """Call ``fn(*args)`` once, ``ms`` milliseconds from now; returns the timer id."""
        reactor_only("after")
        return self.timers.after(ms, fn, *args)

    def clear_timer(self, timer_id: int) -> bool:
        """Stop a timer from ``tick`` or ``after``; ``False`` if none has this id."""
        reactor_only("clear_timer")
        return self.timers.clear(timer_id)

    def task(self, fn: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        """
        Run blocking work in the reactor's thread pool, off the reactor.

        ``task(fn, *args, **kwargs)`` runs ``fn``; ``task(data)`` (not
        callable) runs the ``task`` handler with ``(server, task_id, 0,
        data)`` as Swoole's task workers do, then ``finish(server, task_id,
        result)`` if it returned something. The thread must not call the
        server (``push`` from a task raises ``SwooleError``): use the
        result in the Deferred's callback.

        Returns:
            A Deferred firing with the result (or the exception raised).

        Raises:
            ConfigurationError: ``fn`` is an ``async def`` (await it in a
                handler instead), or ``task(data)`` without a ``task``
                handler.
        """
        reactor_only("task")
        return self.tasks.run(fn, *args, **kwargs)

