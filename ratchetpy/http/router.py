# -*- test-case-name: tests.http.test_router -*-
"""
``Router``: sends each request to the component of the route it matches.

Routes are matched as Ratchet's Router does with Symfony's matcher, and the
gates come in Ratchet's order:

1. path and Host: no route whose path pattern and host both match gives
   ``404 Not Found``;
2. method: a route that matches but does not allow the method gives
   ``405 Method Not Allowed`` with ``Allow`` (``HEAD`` counts as ``GET``,
   as in Symfony, so a WebSocket route answers it with the handshake's 405);
3. then the route's component: ``OriginCheck`` (403), ``WsServer``
   (400/426/505), or a plain HTTP controller.

Refusals are bare responses followed by a close, and each is logged with
what to change to make the request match.

Path patterns use Symfony's syntax: ``/chat/{room}`` captures one path
segment, ``{id<\\d+>}`` adds a requirement. Host patterns may capture too
(``{tenant}.example.com``). Captured values go to ``request.route_params``
and, for Ratchet compatibility, into ``request.query`` (query-string values
win over route values, as in Ratchet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote
from weakref import WeakKeyDictionary

from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import ConfigurationError
from ..interfaces import ConnectionInterface, check_component
from .interfaces import HttpServerInterface
from .request import Request
from .response import close_response

__all__ = ["Router", "Route", "NoOpHttpServerController", "compile_pattern"]

_log = Logger(namespace="ratchetpy.http")

_PARAM = re.compile(r"\{(\w+)(?:<([^>]*)>)?\}")


def compile_pattern(pattern: str, separator: str = "/") -> re.Pattern[str]:
    """
    Compile a Symfony-style ``pattern`` (``/chat/{room}``, ``{id<\\d+>}``)
    into a regular expression with one named group per parameter.

    A parameter without a requirement matches anything but ``separator``.

    Raises:
        ConfigurationError: a parameter name repeats or a requirement is
            not a valid regular expression.
    """
    parts: list[str] = []
    names: set[str] = set()
    position = 0
    for match in _PARAM.finditer(pattern):
        name, requirement = match.group(1), match.group(2)
        if name in names:
            raise ConfigurationError(f"parameter {{{name}}} appears twice in {pattern!r}")
        names.add(name)
        parts.append(re.escape(pattern[position : match.start()]))
        parts.append(f"(?P<{name}>{requirement or '[^' + re.escape(separator) + ']+'})")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    try:
        return re.compile("".join(parts))
    except re.error as exc:
        raise ConfigurationError(f"bad requirement in route pattern {pattern!r}: {exc}") from exc


class NoOpHttpServerController(HttpServerInterface):
    """Absorbs the events of a connection that was refused (Ratchet's class)."""

    def on_open(self, conn: ConnectionInterface, request: Request) -> None:
        pass

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> None:
        pass

    def on_close(self, conn: ConnectionInterface) -> None:
        pass

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        pass


_NO_OP = NoOpHttpServerController()


@dataclass
class Route:
    """
    One route: a path pattern, its component, and what it accepts.

    Attributes:
        path: the pattern, e.g. ``/chat/{room}``.
        controller: an ``HttpServerInterface`` (``WsServer``, ``OriginCheck``,
            a plain HTTP controller), or a class of one, instantiated for
            each connection (as Ratchet does for a class-name string).
        methods: the methods allowed (empty: any).
        host: a host pattern (``None``: any host), compared without the
            port and ignoring case.
    """

    path: str
    controller: Any
    methods: tuple[str, ...] = ("GET",)
    host: str | None = None
    _path_re: re.Pattern[str] = field(init=False, repr=False)
    _host_re: re.Pattern[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ConfigurationError(f"a route path must start with '/', not {self.path!r}")
        self.methods = tuple(m.upper() for m in self.methods)
        self._path_re = compile_pattern(self.path, "/")
        host = (self.host or "").strip().lower()
        if host in ("", "*"):
            self.host = None
            self._host_re = None
        else:
            self.host = host
            self._host_re = re.compile(compile_pattern(host, ".").pattern, re.IGNORECASE)

    def match_path(self, path: str) -> dict[str, str] | None:
        match = self._path_re.fullmatch(path)
        return None if match is None else match.groupdict()

    def match_host(self, host: str) -> dict[str, str] | None:
        if self._host_re is None:
            return {}
        match = self._host_re.fullmatch(host)
        return None if match is None else match.groupdict()

    def allows(self, method: str) -> bool:
        if not self.methods:
            return True
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)

    def describe(self) -> str:
        return self.path + (f" (host {self.host})" if self.host else "")


class Router(HttpServerInterface):
    """
    Route each request to a component by path, Host and method.

    Args:
        routes: initial routes; more can be added with ``add()``.
    """

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self.routes: list[Route] = []
        # Each connection's controller, kept here rather than on the
        # connection, where a component's own attributes could replace it.
        self._controllers: WeakKeyDictionary[ConnectionInterface, Any] = WeakKeyDictionary()
        for route in routes:
            self._add_route(route)

    def add(
        self,
        path: str,
        controller: Any,
        *,
        methods: Sequence[str] = ("GET",),
        host: str | None = None,
    ) -> Route:
        """Add a route; the first route that matches a request wins."""
        return self._add_route(Route(path, controller, tuple(methods), host))

    def _add_route(self, route: Route) -> Route:
        controller = route.controller
        if not isinstance(controller, type):
            check_component(
                controller, ("on_open", "on_message", "on_close", "on_error"), "Router"
            )
        self.routes.append(route)
        return route

    def match(self, request: Request) -> tuple[int, Route | None, dict[str, str]]:
        """
        Find the route for ``request``.

        Returns:
            ``(200, route, params)`` on a match; ``(405, None, {})`` when a
            route matches all but the method; ``(404, None, {})`` otherwise.
        """
        path = unquote(request.path) or "/"
        host = request.host
        allowed: list[str] = []
        for route in self.routes:
            params = route.match_path(path)
            if params is None:
                continue
            host_params = route.match_host(host)
            if host_params is None:
                continue
            if not route.allows(request.method):
                allowed.extend(m for m in route.methods if m not in allowed)
                continue
            return 200, route, {**host_params, **params}
        if allowed:
            return 405, None, {"allow": ", ".join(allowed)}
        return 404, None, {}

    # -- HttpServerInterface -----------------------------------------------

    def on_open(self, conn: ConnectionInterface, request: Request) -> Any:
        # Anything the peer sends after a refusal lands in the no-op.
        self._controllers[conn] = _NO_OP
        status, route, params = self.match(request)
        if status == 405:
            _log.info(
                "Refused {method} {path} from {peer} with 405: the route allows {allow} "
                "(WebSocket routes take GET only)",
                method=request.method,
                path=request.path,
                peer=conn.remote_address,
                allow=params["allow"],
            )
            close_response(conn, 405, [("Allow", params["allow"])], powered_by_first=True)
            return None
        if route is None:
            self._log_not_found(conn, request)
            close_response(conn, 404)
            return None
        controller = route.controller
        if isinstance(controller, type):
            controller = controller()
        request.route_params = dict(params)
        # Ratchet merges route parameters into the query; the query wins.
        request.query = {**params, **request.query}
        self._controllers[conn] = controller
        return controller.on_open(conn, request)

    def _log_not_found(self, conn: ConnectionInterface, request: Request) -> None:
        path = unquote(request.path) or "/"
        same_path = [r for r in self.routes if r.match_path(path) is not None]
        if same_path:
            hosts = sorted({r.host for r in same_path if r.host})
            fix = (
                f"the route serves Host {', '.join(hosts)} only: connect with that host "
                f"name (ws://{hosts[0]}:port{request.path}), or add {request.host or '<host>'!r} "
                "with App.route(..., http_host=...) / --http-host"
            )
        else:
            known = ", ".join(r.describe() for r in self.routes) or "none"
            fix = f"no route has this path (routes: {known}); paths match exactly, a trailing '/' included"
        _log.info(
            "Refused {method} {path} (Host {host!r}) from {peer} with 404: {fix}",
            method=request.method,
            path=request.path,
            host=request.host,
            peer=conn.remote_address,
            fix=fix,
        )

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        return self._controllers.get(conn, _NO_OP).on_message(conn, msg)

    def on_close(self, conn: ConnectionInterface) -> Any:
        controller = self._controllers.pop(conn, None)
        if controller is not None:
            return controller.on_close(conn)
        return None

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Any:
        controller = self._controllers.get(conn)
        if controller is not None:
            return controller.on_error(conn, exc)
        # Raised before a route was chosen: nothing above can handle it.
        _log.failure(
            "Error routing a request from {peer}", Failure(exc), peer=conn.remote_address
        )
        close_response(conn, 500)
        return None
