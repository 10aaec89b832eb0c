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

``Options`` parses and checks everything (each mistake is one line naming
the flag and the fix); ``makeService`` builds the ``App`` service, which
listens on start and closes every client with 1001 on stop.
"""

from __future__ import annotations

import configparser
import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger
from twisted.python import usage

from .app import DEFAULT_KEEPALIVE, DEFAULT_SHUTDOWN_TIMEOUT, App, is_wamp_component
from .builtins import BUILTINS, Chat, demo_endpoint, demo_page
from .exceptions import ComponentError, ConfigurationError, ListenError, MetricsUnavailable
from .http.interfaces import HttpServerInterface
from .http.origin import SAME_HOST
from .http.router import Route
from .hub.push_request import check_key
from .hub.pushapi import check_base_path
from .interfaces import check_component
from .server.blacklist import parse_network
from .server.tls import tls_listen_spec, tls_options
from .swoole.server import Server as SwooleServer
from .websocket.admission import DEFAULT_RETRY_AFTER
from .websocket.server import DEFAULT_MAX_MESSAGE_SIZE, WsServer

__all__ = ["Options", "makeService", "resolve_target", "DEFAULT_LISTEN", "CONFIG_KEYS"]

_log = Logger(namespace="ratchetpy.tap")

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"

CONFIG_SECTION = "ratchetpy"

CONFIG_KEYS = (
    "listen",
    "route",
    "origin",
    "block",
    "http-host",
    "keepalive",
    "max-message-size",
    "shutdown-timeout",
    "tls-cert",
    "tls-key",
    "quiet",
    "no-demo",
    "max-connections",
    "max-connections-per-ip",
    "retry-after",
    "idle-timeout",
    "idle-counts-pongs",
    "push-api",
    "push-key",
    "push-listen",
    "metrics",
    "metrics-listen",
)
"""Keys an ``--config`` ini file may set (in ``[ratchetpy]``), the flags' names."""

_LISTS = {
    "listen": "listen",
    "route": "routes",
    "origin": "origins",
    "block": "blocked",
    "push-listen": "push-listen",
}
_BOOLEANS = ("quiet", "no-demo", "idle-counts-pongs")
_DIGITS = re.compile(r"[0-9]+")

PUSH_KEY_ENV = "RATCHETPY_PUSH_KEY"
"""The environment variable holding the publish API key (``--push-key`` and ``push-key`` win)."""
_SIZE = re.compile(r"(\d+)\s*([kKmMgG]?)(?:i?[bB])?")


class Options(usage.Options):
    """Command-line options of ``twistd ratchetpy``."""

    synopsis = "[options]"
    longdesc = (
        "Serve WebSocket components, Ratchet style. '--route /chat' serves the built-in "
        "chat at /chat and a browser chat page at /; '--route /room/{name}=chat' gives one "
        "chat room per name, the page at / letting you pick the room. Routes name a component as "
        "PATH=package.module:Name (a class, an instance, or a factory), or a built-in: "
        f"{', '.join(sorted(BUILTINS))}. '--push-api /push' adds the HTTP publish API for "
        f"backends (key: --push-key, push-key in --config, or {PUSH_KEY_ENV})."
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
        ["push-key", None, None,
         f"The publish API key, 16 characters or more (better: push-key in --config, or "
         f"{PUSH_KEY_ENV} in the environment, which ps cannot show)."],
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

    def parseOptions(self, options: list[str] | None = None) -> None:
        # A mistake is reported as one line, without twistd's full usage text.
        try:
            super().parseOptions(options)  # type: ignore[no-untyped-call]  # Twisted's, unannotated
        except usage.UsageError as exc:
            raise SystemExit(f"twistd ratchetpy: error: {exc}") from None

    # -- checks ------------------------------------------------------------

    def postOptions(self) -> None:
        self._key_source = "--push-key" if self["push-key"] else f"push-key in {self['config']}"
        if self["config"]:
            self._read_config(self["config"])
        self._check_numbers()
        self._check_tls()
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
            _check_endpoint(spec)
        self._check_metrics()
        self["http-host"] = (self["http-host"] or "*").strip().lower()
        for entry in self["blocked"]:
            try:
                parse_network(entry)
            except ConfigurationError as exc:
                raise usage.UsageError(f"--block {entry}: {exc}") from exc
        self._build_routes()
        self._check_push_api()
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

    def _check_push_api(self) -> None:
        path, listen = self["push-api"], self["push-listen"]
        if not path:
            if self["push-key"] or listen:
                given = "--push-key" if self["push-key"] else "--push-listen"
                raise usage.UsageError(
                    f"{given} is set but --push-api is not: add --push-api /push to serve the "
                    "publish API"
                )
            return
        try:
            self["push-api"] = path = check_base_path(path.strip())
        except ConfigurationError as exc:
            raise usage.UsageError(f"--push-api {path}: {exc}") from exc
        for routed, _ in self["route_components"]:
            if routed == path or routed.startswith(path + "/"):
                raise usage.UsageError(
                    f"--push-api {path}: {routed} is a --route; give the publish API a path of its own"
                )
        key = self["push-key"] or os.environ.get(PUSH_KEY_ENV) or None
        source = self._key_source if self["push-key"] else PUSH_KEY_ENV
        if key is None:
            raise usage.UsageError(
                f"--push-api {path} needs a key: give --push-key KEY, push-key in the --config "
                f"file, or {PUSH_KEY_ENV} in the environment (generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        try:
            self["push-key"] = check_key(key.strip())
        except ConfigurationError as exc:
            raise usage.UsageError(f"{source}: {exc}") from exc
        for spec in listen:
            _check_endpoint(spec, "--push-listen")

    def _check_metrics(self) -> None:
        given = [f for f in ("metrics", "metrics-listen") if self[f] is not None]
        if not given:
            return
        try:
            from .hub.metrics import check_path
        except MetricsUnavailable:
            raise usage.UsageError(
                f"--{given[0]}: the prometheus-client package is not installed; "
                "pip install 'ratchetpy[metrics]'"
            ) from None
        if self["metrics"] is not None:
            self["metrics"] = self["metrics"].strip()
            try:
                check_path(self["metrics"])
            except ConfigurationError as exc:
                raise usage.UsageError(f"--metrics {self['metrics']}: {exc}") from exc
        if self["metrics-listen"] is not None:
            self["metrics-listen"] = self["metrics-listen"].strip()
            _check_endpoint(
                self["metrics-listen"], "--metrics-listen", "tcp:9100:interface=127.0.0.1"
            )

    def _read_config(self, path: str) -> None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except OSError as exc:
            raise usage.UsageError(f"--config {path}: cannot read it ({exc.strerror})") from exc
        except configparser.Error as exc:
            raise usage.UsageError(f"--config {path}: not a valid ini file: {exc}".replace("\n", " ")) from exc
        if not parser.has_section(CONFIG_SECTION):
            raise usage.UsageError(
                f"--config {path}: no [{CONFIG_SECTION}] section; put the settings under [{CONFIG_SECTION}]"
            )
        base = os.path.dirname(os.path.abspath(path))
        for raw_key, value in parser.items(CONFIG_SECTION):
            key = raw_key.replace("_", "-")
            if key not in CONFIG_KEYS:
                raise usage.UsageError(
                    f"--config {path}: unknown key {raw_key!r}; known keys: {', '.join(CONFIG_KEYS)}"
                )
            if key in _LISTS:
                name = _LISTS[key]
                if not self[name]:  # a flag on the command line wins
                    separators = r"[\n,]" if key in ("origin", "block") else r"[\n]"
                    values = [v.strip() for v in re.split(separators, value)]
                    self[name] = [v for v in values if v]
            elif key in _BOOLEANS:
                if key not in self._flag_given:
                    try:
                        self[key] = int(parser.getboolean(CONFIG_SECTION, raw_key))
                    except ValueError as exc:
                        raise usage.UsageError(
                            f"--config {path}: {raw_key} must be true or false, not {value!r}"
                        ) from exc
            elif self[key] is None:
                if key in ("tls-cert", "tls-key"):
                    value = os.path.join(base, os.path.expanduser(value.strip()))
                self[key] = value.strip()

    def _check_numbers(self) -> None:
        self["keepalive"] = _seconds("--keepalive", self["keepalive"], DEFAULT_KEEPALIVE, zero_ok=True)
        self["shutdown-timeout"] = _seconds(
            "--shutdown-timeout", self["shutdown-timeout"], DEFAULT_SHUTDOWN_TIMEOUT, zero_ok=False
        )
        for flag in ("max-connections", "max-connections-per-ip"):
            self[flag] = _count(f"--{flag}", self[flag]) or None
        retry_after = _count("--retry-after", self["retry-after"], zero_ok=False)
        self["retry-after"] = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
        self["idle-timeout"] = _seconds("--idle-timeout", self["idle-timeout"], 0.0, zero_ok=True) or None
        raw = self["max-message-size"]
        if raw is None:
            self["max-message-size"] = DEFAULT_MAX_MESSAGE_SIZE
            return
        match = _SIZE.fullmatch(str(raw).strip())
        if not match:
            raise usage.UsageError(
                f"--max-message-size {raw!r}: give a number of bytes, e.g. 1048576, 64K or 1M (0 = unlimited)"
            )
        size = int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
        self["max-message-size"] = size or None

    def _check_tls(self) -> None:
        cert, key = self["tls-cert"], self["tls-key"]
        if key and not cert:
            raise usage.UsageError("--tls-key needs --tls-cert (the certificate or full chain PEM file)")
        if cert:
            try:
                tls_options(cert, key)
            except ConfigurationError as exc:
                raise usage.UsageError(f"--tls-cert/--tls-key: {exc}") from exc

    def _build_routes(self) -> None:
        if not self["routes"]:
            raise usage.UsageError(
                "no --route given: try --route /chat (built-ins: "
                f"{', '.join(sorted(BUILTINS))}) or --route /path=package.module:Name"
            )
        built: list[tuple[str, Any]] = []
        for spec in self["routes"]:
            path, sep, target = spec.partition("=")
            path, target = path.strip(), target.strip()
            if not path.startswith("/"):
                raise usage.UsageError(
                    f"--route {spec}: the path must start with '/', e.g. --route /chat or /chat=pkg.mod:Chat"
                )
            if any(p == path for p, _ in built):
                raise usage.UsageError(f"--route {spec}: {path} is routed twice; give each path once")
            try:
                Route(path, None)
            except ConfigurationError as exc:
                raise usage.UsageError(f"--route {spec}: {exc}") from exc
            if not sep:
                target = _builtin_for(path)
                if target is None:
                    raise usage.UsageError(
                        f"--route {spec}: no built-in component named like this path (built-ins: "
                        f"{', '.join(sorted(BUILTINS))}); give one as {path}=package.module:Name"
                    )
            try:
                component = resolve_target(target)
            except ConfigurationError as exc:
                raise usage.UsageError(f"--route {spec}: {exc}") from exc
            if isinstance(component, SwooleServer):
                if "{" in path:
                    raise usage.UsageError(
                        f"--route {spec}: a Swoole server answers a plain path and everything "
                        "below it; give a path without parameters, e.g. --route /=module:server"
                    )
                if any(c is component for _, c in built):
                    raise usage.UsageError(f"--route {spec}: this Swoole server is routed twice; route it once")
            built.append((path, component))
        paths = {p for p, _ in built}
        if not self["no-demo"] and "/" not in paths:
            chat = demo_route(built)
            if chat is not None:
                built.append(("/", demo_page(chat)))
                self["demo"] = chat
        self["route_components"] = built


def demo_route(routes: list[tuple[str, Any]]) -> str | None:
    """
    The chat route the demo page at ``/`` talks to: the first route served
    by the built-in ``Chat`` whose path the page can fill in (no parameter,
    or one that accepts the default room, as ``/room/{name}``).
    """
    for path, component in routes:
        if isinstance(component, Chat) and demo_endpoint(path) is not None:
            return path
    return None


def _builtin_for(path: str) -> str | None:
    literal = [s for s in path.split("/") if s and "{" not in s]
    if literal and literal[-1].lower() in BUILTINS:
        return literal[-1].lower()
    return None


def _seconds(flag: str, raw: Any, default: float, zero_ok: bool) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if value < 0 or (value == 0 and not zero_ok) or value != value or value == float("inf"):
        need = "a number of seconds, 0 or more (0 = off)" if zero_ok else "a positive number of seconds"
        raise usage.UsageError(f"{flag} {raw!r}: give {need}")
    return value


def _count(flag: str, raw: Any, zero_ok: bool = True) -> int | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if not _DIGITS.fullmatch(text) or (not zero_ok and int(text) == 0):
        need = "a whole number, 0 or more (0 = no limit)" if zero_ok else "a whole number of seconds, 1 or more"
        raise usage.UsageError(f"{flag} {raw!r}: give {need}")
    return int(text)


def _check_endpoint(
    spec: str,
    flag: str = "--listen",
    example: str = "tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem:certKey=cert.pem",
) -> None:
    from twisted.internet.endpoints import serverFromString
    from twisted.internet.testing import MemoryReactor

    try:
        # Parsed against a reactor that binds nothing: only the syntax and
        # files (certificates) are checked here; binding happens on start.
        serverFromString(MemoryReactor(), spec)
    except Exception as exc:
        raise usage.UsageError(f"{flag} {spec}: {exc or type(exc).__name__}; e.g. {example}") from exc


def _is_routable(obj: Any) -> bool:
    return isinstance(obj, (HttpServerInterface, WsServer, SwooleServer)) or is_wamp_component(obj) or (
        callable(getattr(obj, "on_message", None))
    )


def _check_routable(obj: Any, name: str) -> Any:
    if isinstance(obj, (HttpServerInterface, WsServer)):
        return obj
    if isinstance(obj, SwooleServer):
        try:
            obj.check()
        except ConfigurationError as exc:
            raise ConfigurationError(f"{name} cannot run: {exc}") from exc
        return obj
    if is_wamp_component(obj):
        try:
            importlib.import_module("ratchetpy.wamp")
        except ImportError as exc:
            raise ConfigurationError(
                f"{name} is a WAMP application but ratchetpy.wamp is not available ({exc})"
            ) from exc
        check_component(obj, ("on_open", "on_close", "on_error", "on_call", "on_publish"), name)
        return obj
    try:
        check_component(obj, ("on_open", "on_message", "on_close", "on_error"), name)
    except ComponentError as exc:
        raise ConfigurationError(f"{name} is not a component: {exc}") from exc
    return obj


def resolve_target(target: str) -> Any:
    """
    Turn a route target into a component.

    ``target`` is a built-in name (``chat``, ``echo``) or
    ``package.module:Name`` (``Name`` may be dotted) naming a component
    class (instantiated with no arguments), a component instance, or a
    factory function returning one; or a Swoole-style server
    (``ratchetpy.swoole.Server``), served under the route's path. Modules are imported as ``python -m``
    would: installed packages and the current directory.

    Raises:
        ConfigurationError: it cannot be imported, or is not a component.
    """
    if target in BUILTINS:
        return BUILTINS[target]()
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"cannot read target {target!r}: write package.module:Name, or a built-in "
            f"({', '.join(sorted(BUILTINS))})"
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import module {module_name!r} ({exc}); check the name and that it is "
            "installed or in the current directory"
        ) from exc
    except Exception as exc:
        raise ConfigurationError(
            f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"module {module_name!r} has no {attr!r}") from None
    name = f"{module_name}:{attr}"
    if isinstance(obj, type) or (callable(obj) and not _is_routable(obj)):
        factory: Callable[[], Any] = obj
        try:
            obj = factory()
        except TypeError as exc:
            raise ConfigurationError(
                f"cannot create {name}() with no arguments ({exc}); route a class whose "
                "constructor takes none, an instance, or a factory function"
            ) from exc
        except ComponentError as exc:
            raise ConfigurationError(f"{name} is not a usable component: {exc}") from exc
        except Exception as exc:
            raise ConfigurationError(
                f"creating {name}() raised {type(exc).__name__}: {exc}"
            ) from exc
    return _check_routable(obj, name)


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


def _install_one_line_hook() -> None:
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if isinstance(value, ConfigurationError):
            print(f"twistd ratchetpy: error: {value}", file=sys.stderr)
        else:
            previous(kind, value, tb)

    sys.excepthook = hook


def makeService(options: Options, reactor: Any = None) -> App:
    """Build the service ``twistd ratchetpy`` runs from parsed ``options``."""
    origins: list[str] = list(options["origins"])
    app = _TwistdApp(
        options["http-host"],
        reactor=reactor,
        listen=list(options["listen"]),
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
    for entry in options["blocked"]:
        app.blacklist.block_address(entry)
    swoole: list[tuple[str, SwooleServer]] = []
    for path, component in options["route_components"]:
        if isinstance(component, SwooleServer):
            swoole.append((path, component))
        elif isinstance(component, HttpServerInterface) and path == "/" and options.get("demo"):
            app.route(path, component, ["*"])
        else:
            app.route(path, component, origins or [SAME_HOST])
    if options["push-api"]:
        app.push_api(options["push-api"], options["push-key"], listen=options["push-listen"] or None)
    # A Swoole server answers its path and everything below it: after the
    # exact routes, longest prefix first, so it shadows none of them.
    for path, server in sorted(swoole, key=lambda item: -len(item[0])):
        server.attach(app, path, origins or [SAME_HOST])
    if options.get("metrics") is not None:
        app.metrics(options["metrics"])
    if options.get("metrics-listen") is not None:
        app.metrics_listen(options["metrics-listen"])
    return app
