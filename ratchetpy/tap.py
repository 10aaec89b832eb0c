# -*- test-case-name: tests.test_tap -*-
"""
``twistd ratchetpy``: a ratchetpy server deployed with Twisted's daemon tool.

.. code-block:: sh

    twistd -n ratchetpy --route /chat                      # built-in chat + demo page at /
    twistd -n ratchetpy --route '/room/{name}=chat'        # a chat room per name, page at /
    twistd -n ratchetpy --route /chat=myapp.chat:Chat --listen tcp:8080:interface=0.0.0.0
    twistd -n ratchetpy --route /chat --tls-cert fullchain.pem --tls-key privkey.pem
    twistd -n ratchetpy --config /etc/ratchetpy.ini
    RATCHETPY_PUSH_KEY=... twistd -n ratchetpy --route /chat --push-api /push \\
        --push-listen tcp:8081:interface=127.0.0.1        # the publish API for backends
    twistd -n ratchetpy --route /chat --metrics-listen tcp:9100:interface=127.0.0.1
    twistd -n ratchetpy --route /chat --session-handler files:/var/lib/php/sessions \\
        --session-user-key name                      # greets the PHP site's logged-in user
    twistd -n ratchetpy --route /chat --workers 4 --redis redis://127.0.0.1:6379/0 \\
        --listen tcp:8080:interface=0.0.0.0          # 4 processes on one port, one hub

``Options`` parses and checks everything (each mistake is one line naming
the flag and the fix); ``makeService`` builds the ``App`` service, which
listens on start and closes every client with 1001 on stop. The checks of
each feature's flags and the ``--config`` reader are in
``ratchetpy._tapchecks`` (the session flags in ``ratchetpy._tapsession``); route targets are resolved by ``ratchetpy.targets``.

With ``--workers N`` (N > 1), ``makeService`` returns the parent instead: a
``WorkerSupervisor`` that binds the listening sockets and runs N workers,
each ``python -m twisted ratchetpy`` with the same options, building the
same ``App`` on the inherited sockets (``ratchetpy._tapworkers``). Only the
parent is twistd's (daemon, pidfile); workers run in the foreground under
it and log through its stdout or, when it daemonizes or logs to a file,
through the parent's log.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.logger import Logger
from twisted.python import usage

from ._tapchecks import (
    CONFIG_KEYS,
    PUSH_KEY_ENV,
    build_routes,
    check_chat_history,
    check_endpoint,
    check_metrics,
    check_numbers,
    check_push_api,
    check_tls,
    read_config,
)
from ._tapchecks import CONFIG_SECTION as CONFIG_SECTION  # re-exported: public here before
from ._tapphpws import PHPWS_OPTIONS, check_phpws, finish_phpws, route_phpws
from ._tapsession import LARAVEL_KEY_ENV, check_sessions
from ._tapworkers import (
    REDIS_URL_ENV,
    check_redis,
    check_workers,
    inherited_endpoints,
    offset_port,
    relay_wanted,
    worker_argv,
)
from .app import DEFAULT_KEEPALIVE, DEFAULT_SHUTDOWN_TIMEOUT, App
from .builtins import BUILTINS
from .exceptions import ConfigurationError, ListenError
from .http.interfaces import HttpServerInterface
from .http.origin import SAME_HOST
from .http.router import Route
from .phpws.server import PhpWsServer
from .server.blacklist import parse_network
from .server.tls import tls_listen_spec
from .server.workers import PARENT_ENV, WorkerSupervisor, worker_command
from .swoole.server import Server as SwooleServer
from .targets import demo_route as demo_route  # re-exported: documented here
from .targets import resolve_target
from .websocket.admission import DEFAULT_RETRY_AFTER
from .websocket.server import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["Options", "makeService", "resolve_target", "DEFAULT_LISTEN", "CONFIG_KEYS"]

_log = Logger(namespace="ratchetpy.tap")

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"

WORKER_GRACE_MARGIN = 5.0
"""Seconds the --workers parent waits beyond --shutdown-timeout for a worker to exit."""

_HIDDEN = ("inherit=", "worker-index=")


class Options(usage.Options):
    """Command-line options of ``twistd ratchetpy``."""

    synopsis = "[options]"
    longdesc = (
        "Serve WebSocket components, Ratchet style. '--route /chat' serves the built-in "
        "chat at /chat and a browser chat page at /; '--route /room/{name}=chat' gives one "
        "chat room per name, the page at / letting you pick the room. Routes name a component as "
        "PATH=package.module:Name (a class, an instance, or a factory), or a built-in: "
        f"{', '.join(sorted(BUILTINS))}. '--push-api /push' adds the HTTP publish API for "
        f"backends (key: --push-key, push-key in --config, or {PUSH_KEY_ENV}). '--workers N "
        "--redis URL' runs N processes on the same ports sharing one hub through Redis."
    )
    optParameters = [
        ["http-host", None, None,
         "The Host clients must use (others get 404, as Ratchet's App). [default: any]"],
        ["keepalive", None, None,
         f"Seconds between keepalive pings; 0 = off. [default: {DEFAULT_KEEPALIVE:g}]"],
        ["max-message-size", None, None,
         "Largest WebSocket message in bytes (suffix K or M); 0 = unlimited. "
         f"[default: {DEFAULT_MAX_MESSAGE_SIZE // 1024 // 1024}M]"],
        ["shutdown-timeout", None, None,
         "Seconds to wait for clients to close on stop. "
         f"[default: {DEFAULT_SHUTDOWN_TIMEOUT:g}]"],
        ["tls-cert", None, None,
         "Certificate (chain) PEM file: serve wss:// on every tcp: --listen."],
        ["tls-key", None, None, "Private key PEM file for --tls-cert."],
        ["max-connections", None, None,
         "Most WebSocket connections at once; more get 503 + Retry-After. 0 = no limit. "
         "[default: 0]"],
        ["max-connections-per-ip", None, None,
         "Most WebSocket connections at once from one IP address (behind a proxy: the "
         "proxy's); more get 503. 0 = no limit. [default: 0]"],
        ["retry-after", None, None,
         f"Retry-After seconds sent with those 503s. [default: {DEFAULT_RETRY_AFTER}]"],
        ["idle-timeout", None, None,
         "Close (1001) clients that sent no message for this many seconds; 0 = never. "
         "[default: 0]"],
        ["metrics", None, None,
         "Serve Prometheus metrics at this path on the --listen endpoints, e.g. /metrics "
         "(needs ratchetpy[metrics])."],
        ["metrics-listen", None, None,
         "Serve Prometheus metrics (only) at /metrics on this endpoint, e.g. "
         "tcp:9100:interface=127.0.0.1 (needs ratchetpy[metrics])."],
        ["config", "c", None,
         "An ini file with a [ratchetpy] section using these flags' names; flags win."],
        ["push-api", None, None,
         "Serve the HTTP publish API at this path (e.g. /push): POST JSON with "
         "'Authorization: Bearer KEY' to reach clients, channels and users."],
        ["chat-history", None, None,
         "Keep each built-in chat room's last N messages (5 minutes) so a page that "
         "reconnects gets what it missed; 0 = off. [default: 0]"],
        ["push-key", None, None,
         f"The publish API key, 16 characters or more (better: push-key in --config, or "
         f"{PUSH_KEY_ENV} in the environment, which ps cannot show)."],
        ["redis", None, None,
         "Redis URL making the hub (push, channels, the chat, presence, stats) span every "
         "process using it, e.g. redis://127.0.0.1:6379/0?prefix=chat:, or a Redis Cluster: "
         "redis+cluster://HOST:PORT,HOST:PORT (with a password: "
         f"better redis in --config, or {REDIS_URL_ENV} in the environment, which ps cannot show)."],
        # sessions (ratchetpy._tapsession)
        ["session-handler", None, None,
         "Give each connection the PHP site's session (conn.session) from this store: "
         "files:/var/lib/php/sessions, redis://127.0.0.1:6379/0 or memcached:127.0.0.1:11211."],
        ["session-name", None, None,
         "The session cookie's name (PHP's session.name). [default: PHPSESSID; with "
         "--laravel-key: laravel_session]"],
        ["session-serializer", None, None,
         "PHP's session.serialize_handler: php, php_binary or php_serialize. [default: detected]"],
        ["session-gc-maxlifetime", None, None,
         "Seconds after which an unused session file counts as expired (PHP's "
         "session.gc_maxlifetime). [default: 1440; with --laravel-key: 7200]"],
        ["session-user-key", None, None,
         "The session key naming the logged-in user: the built-in chat's welcome carries it "
         "as \"user\" and binds the connection to that user in the hub, e.g. name."],
        ["laravel-key", None, None,
         "Laravel's APP_KEY (base64:...), to read Laravel's encrypted session cookie (better: "
         f"laravel-key in --config, or {LARAVEL_KEY_ENV} in the environment, which ps cannot show)."],
        ["laravel-cipher", None, None,
         "The Laravel app's config/app.php 'cipher': aes-128-cbc, aes-256-cbc, aes-128-gcm or "
         "aes-256-gcm. [default: aes-256-cbc]"],
        ["workers", None, None,
         "Run N server processes on the same --listen ports (or 'auto': one per CPU); a "
         "parent restarts any that dies and stops them all on SIGTERM. Needs --redis. "
         "[default: 1]"],
        *PHPWS_OPTIONS,
        # Hidden (see getUsage): what the --workers parent gives each worker.
        ["inherit", None, None, "FD=SPEC,...: listening sockets inherited from the parent."],
        ["worker-index", None, None, "This worker's number, from the parent."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted's, unannotated
        self["listen"] = []
        self["routes"] = []
        self["origins"] = []
        self["blocked"] = []
        self["push-listen"] = []
        self["quiet"] = 0
        self["no-demo"] = 0
        self["idle-counts-pongs"] = 0
        self._flag_given: set[str] = set()
        self.raw_argv: list[str] = []

    def opt_listen(self, description: str) -> None:
        """Twisted endpoint to listen on (repeatable), e.g. tcp:8080:interface=0.0.0.0 or ssl:8443:privateKey=key.pem:certKey=cert.pem; tcp:, tcp6:, ssl: and unix: listen with a backlog of 4096 unless they give backlog=N [default: tcp:8080:interface=127.0.0.1]"""
        self["listen"].append(description)

    def opt_route(self, route: str) -> None:
        """PATH[=TARGET] to serve (repeatable): /chat, /echo, /x=package.module:Name"""
        self["routes"].append(route)

    def opt_origin(self, origin: str) -> None:
        """Allowed Origin host (repeatable; '*' = any). [default: pages on the Host the client connected to, and clients that send no Origin]"""
        self["origins"].extend(o.strip() for o in origin.split(",") if o.strip())

    def opt_block(self, address: str) -> None:
        """Refuse connections from this address or CIDR range (repeatable), e.g. 10.0.0.0/8"""
        self["blocked"].extend(a.strip() for a in address.split(",") if a.strip())

    def opt_push_listen(self, description: str) -> None:
        """Endpoint on which the publish API alone answers (repeatable), e.g. tcp:8081:interface=127.0.0.1 [default: the API answers beside the routes on every --listen]"""
        self["push-listen"].append(description)

    def opt_quiet(self) -> None:
        """Do not log each WebSocket's open and close."""
        self["quiet"] = 1
        self._flag_given.add("quiet")

    opt_q = opt_quiet

    def opt_no_demo(self) -> None:
        """Do not serve the demo chat page at / for the built-in chat."""
        self["no-demo"] = 1
        self._flag_given.add("no-demo")

    def opt_idle_counts_pongs(self) -> None:
        """Count keepalive pongs as activity for --idle-timeout (browsers pong by themselves)."""
        self["idle-counts-pongs"] = 1
        self._flag_given.add("idle-counts-pongs")

    def getUsage(self, width: int | None = None) -> str:
        # The worker flags are the parent's business, not the user's.
        hidden = [opt for opt in self.longOpt if opt in _HIDDEN]
        self.longOpt = [opt for opt in self.longOpt if opt not in _HIDDEN]
        try:
            return str(super().getUsage(width))
        finally:
            self.longOpt += hidden

    def parseOptions(self, options: list[str] | None = None) -> None:
        # Kept for --workers: each worker runs with these same options.
        self.raw_argv = list(sys.argv[1:] if options is None else options)
        # A mistake is reported as one line, without twistd's full usage text.
        try:
            super().parseOptions(options)  # type: ignore[no-untyped-call]  # Twisted's, unannotated
        except usage.UsageError as exc:
            raise SystemExit(f"twistd ratchetpy: error: {exc}") from None

    # -- checks (each feature's are in ratchetpy._tapchecks) ---------------

    def postOptions(self) -> None:
        self._key_source = "--push-key" if self["push-key"] else f"push-key in {self['config']}"
        redis_source = "--redis" if self["redis"] else f"redis in {self['config']}"
        laravel_source = "--laravel-key" if self["laravel-key"] else f"laravel-key in {self['config']}"
        if self["config"]:
            read_config(self, self["config"], self._flag_given)
        check_redis(self, redis_source)
        check_numbers(self)
        check_tls(self)
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        if self["tls-cert"]:
            converted = [tls_listen_spec(s, self["tls-cert"], self["tls-key"]) for s in self["listen"]]
            if converted == self["listen"] and not any(s.startswith("tcp:") for s in self["listen"]):
                raise usage.UsageError(
                    "--tls-cert applies to tcp: --listen endpoints and there is none; "
                    "drop --tls-cert or use --listen tcp:PORT"
                )
            self["listen"] = converted
        for spec in self["listen"]:
            check_endpoint(spec)
        check_metrics(self)
        self["http-host"] = (self["http-host"] or "*").strip().lower()
        for entry in self["blocked"]:
            try:
                parse_network(entry)
            except ConfigurationError as exc:
                raise usage.UsageError(f"--block {entry}: {exc}") from exc
        build_routes(self)
        check_phpws(self)
        check_chat_history(self)
        check_sessions(self, laravel_source)
        check_push_api(self, self._key_source)
        path = self["metrics"]
        taken = [
            p for p, _ in self["route_components"]
            if path is not None and Route(p, None).match_path(path) is not None
        ]
        if taken:
            raise usage.UsageError(
                f"--metrics {path}: the route {taken[0]} already serves this path; "
                "give the metrics another path"
            )
        check_workers(self)


class _TwistdApp(App):
    """
    ``App`` whose start failures end twistd with one line, not a traceback,
    and whose second SIGTERM/SIGINT during a graceful stop drops every
    connection at once (Twisted's own handler would log a traceback for
    stopping a reactor that is already stopping).
    """

    def startService(self) -> None:
        super().startService()
        from .server._run import install_stop_signals

        # After the reactor's own handlers are in place (it runs by now).
        self.reactor.callWhenRunning(install_stop_signals, self.reactor, self.drop_connections)

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except ListenError:
            # Raised on (not SystemExit): twistd reports exceptions from here
            # to its launcher when daemonizing, and would wait forever for
            # any other ending. The hook prints it as one line at exit.
            _install_one_line_hook()
            raise


class _WorkerApp(_TwistdApp):
    """
    A worker of ``--workers``: the same App on the parent's sockets, which
    stops on the parent's SIGTERM only (a Ctrl-C in a terminal reaches the
    whole process group; the parent forwards it) and stops on its own,
    gracefully, when the parent is gone (checked every ``PARENT_CHECK``
    seconds).
    """

    PARENT_CHECK = 1.0

    def __init__(self, *args: Any, worker_index: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_index = worker_index
        parent = os.environ.get(PARENT_ENV, "")
        self.parent_pid = int(parent) if parent.isdigit() else os.getppid()
        self._watch: Any = None

    def startService(self) -> None:
        super().startService()
        import signal

        from twisted.internet import task

        # After install_stop_signals (callWhenRunning calls run in order).
        self.reactor.callWhenRunning(signal.signal, signal.SIGINT, signal.SIG_IGN)
        self._watch = task.LoopingCall(self._check_parent)
        self._watch.clock = self.reactor
        self._watch.start(self.PARENT_CHECK, now=False)
        _log.info(
            "Worker {index} (pid {pid}, node {node}) serving the parent's sockets",
            index=self.worker_index,
            pid=os.getpid(),
            node=self.hub.node,
        )

    def _check_parent(self) -> None:
        if os.getppid() == self.parent_pid:
            return
        _log.warn(
            "Worker {index}: the --workers parent (pid {parent}) is gone; stopping",
            index=self.worker_index,
            parent=self.parent_pid,
        )
        self._watch.stop()
        self._watch = None
        self.reactor.stop()

    def stopService(self) -> Any:
        if self._watch is not None and self._watch.running:
            self._watch.stop()
        self._watch = None
        return super().stopService()


class _TwistdSupervisor(WorkerSupervisor):
    """
    The ``--workers`` parent under twistd: a socket it cannot bind ends
    twistd with one line; the first SIGTERM/SIGINT stops every worker
    gracefully (twistd's handler stops the reactor, which stops this
    service), a second one is sent on to the workers, which then drop
    their connections at once.
    """

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except ListenError:
            _install_one_line_hook()  # see _TwistdApp.privilegedStartService
            raise

    def startService(self) -> None:
        super().startService()
        from .server._run import install_stop_signals

        self.reactor.callWhenRunning(install_stop_signals, self.reactor, self.forward_again)

    def forward_again(self) -> None:
        """Send SIGTERM again to every worker (each then drops its connections now)."""
        import signal

        for worker in list(self.workers.values()):
            self._signal(worker, signal.SIGTERM)


def _install_one_line_hook() -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if isinstance(value, ConfigurationError):
            print(f"twistd ratchetpy: error: {value}", file=sys.stderr)
        else:
            previous(kind, value, tb)

    sys.excepthook = hook


def makeService(options: Options, reactor: Any = None) -> App | WorkerSupervisor:
    """
    Build the service ``twistd ratchetpy`` runs from parsed ``options``:
    the ``App``, or with ``--workers N`` (N > 1) the parent of N workers.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    if options["workers"] > 1:
        return _supervisor(options, reactor)
    origins: list[str] = list(options["origins"])
    inherited: dict[str, int] = options["inherited"]
    listen = inherited_endpoints(options["listen"], inherited, reactor)
    settings: dict[str, Any] = dict(
        reactor=reactor,
        listen=listen,
        keepalive=options["keepalive"],
        max_message_size=options["max-message-size"],
        shutdown_timeout=options["shutdown-timeout"],
        log_connections=not options["quiet"],
        max_connections=options["max-connections"],
        max_connections_per_ip=options["max-connections-per-ip"],
        retry_after=options["retry-after"],
        idle_timeout=options["idle-timeout"],
        idle_counts_pongs=bool(options["idle-counts-pongs"]),
        # With no --origin: browsers must come from a page on this host; other
        # clients (which send no Origin) are let through.
        allow_missing_origin=not origins,
    )
    app: App
    if options["inherit"] is not None:
        app = _WorkerApp(options["http-host"], worker_index=options["worker-index"], **settings)
    else:
        app = _TwistdApp(options["http-host"], **settings)
    if options["redis"] is not None:
        app.use_redis(options["redis"])
    for entry in options["blocked"]:
        app.blacklist.block_address(entry)
    swoole: list[tuple[str, SwooleServer]] = []
    for path, component in options["route_components"]:
        if isinstance(component, SwooleServer):
            swoole.append((path, component))
        elif isinstance(component, PhpWsServer):
            route_phpws(app, options, path, component)
        elif isinstance(component, HttpServerInterface) and path == "/" and options.get("demo"):
            app.route(path, component, ["*"])
        else:
            app.route(path, component, origins or [SAME_HOST], session=options.get("session"))
    if options["push-api"]:
        push_listen = inherited_endpoints(options["push-listen"], inherited, reactor)
        app.push_api(options["push-api"], options["push-key"], listen=push_listen or None)
    # A Swoole server answers its path and everything below it: after the
    # exact routes, longest prefix first, so it shadows none of them.
    for path, server in sorted(swoole, key=lambda item: -len(item[0])):
        server.attach(app, path, origins or [SAME_HOST])
    if options.get("metrics") is not None:
        app.metrics(options["metrics"])
    if options.get("metrics-listen") is not None:
        spec = options["metrics-listen"]
        if options["inherit"] is not None:
            spec = offset_port(spec, options["worker-index"])  # one port per worker
        app.metrics_listen(spec)
    finish_phpws(app, options)
    return app


def _supervisor(options: Options, reactor: Any) -> WorkerSupervisor:
    relay = relay_wanted(options)
    argv = worker_command(
        worker_argv(options.raw_argv), ["--log-format=json" if relay else "--log-format=text"]
    )
    return _TwistdSupervisor(
        argv,
        [*options["listen"], *options["push-listen"]],
        options["workers"],
        reactor,
        grace=options["shutdown-timeout"] + WORKER_GRACE_MARGIN,
        relay_logs=relay,
    )
