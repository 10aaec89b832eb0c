# -*- test-case-name: tests.test_tap -*-
"""
Route targets of ``twistd ratchetpy --route PATH=TARGET``.

``resolve_target`` turns a built-in name (``chat``, ``echo``) or
``package.module:Name`` into something ``App`` can route (a component, a
WAMP application, an HTTP controller, a ``WsServer`` or a Swoole-style
server), checked before anything listens; ``demo_route`` picks the chat
route the demo page at ``/`` talks to.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from .builtins import BUILTINS, Chat, demo_endpoint
from .exceptions import ComponentError, ConfigurationError
from .http.interfaces import HttpServerInterface
from .interfaces import check_component
from .phpws.resource import PhpWsResource
from .phpws.server import PhpWsServer
from .swoole.server import Server as SwooleServer
from .websocket.server import WsServer
from .wrapping import is_wamp_component

__all__ = ["resolve_target", "demo_route", "builtin_for"]


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


def builtin_for(path: str) -> str | None:
    """The built-in a ``--route`` with no target serves: its last literal segment's (``/chat``: ``chat``), if any."""
    literal = [s for s in path.split("/") if s and "{" not in s]
    if literal and literal[-1].lower() in BUILTINS:
        return literal[-1].lower()
    return None


def _is_routable(obj: Any) -> bool:
    return isinstance(obj, (HttpServerInterface, WsServer, SwooleServer, PhpWsResource)) or is_wamp_component(obj) or (
        callable(getattr(obj, "on_message", None))
    )


def _check_routable(obj: Any, name: str) -> Any:
    if isinstance(obj, (HttpServerInterface, WsServer)):
        return obj
    if isinstance(obj, PhpWsResource):
        # A phpWebSocketServer-style resource class: served in the phpws mode.
        return PhpWsServer(obj)
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
    (``ratchetpy.swoole.Server``), served under the route's path; or a
    ``ratchetpy.phpws.PhpWsResource`` (class or instance), served in the
    phpWebSocketServer-compatible mode. Modules are imported as ``python -m``
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
