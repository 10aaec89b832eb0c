# -*- test-case-name: tests.test_tap,tests.test_tap_push -*-
"""
The checks behind ``twistd ratchetpy``'s options, one feature at a time.

``read_config`` reads a ``--config`` ini file (flags given on the command
line win); ``check_numbers``, ``check_tls``, ``check_endpoint``,
``check_metrics``, ``check_push_api`` and ``build_routes`` check the
values and put them in the form ``makeService`` uses. Each mistake raises
``usage.UsageError`` with one line naming the flag and the fix.
"""

from __future__ import annotations

import configparser
import os
import re
from typing import Any

from twisted.python import usage

from ._tapphpws import PHPWS_KEYS, read_phpws_config
from ._tapsession import SESSION_FLAGS
from .app import DEFAULT_SHUTDOWN_TIMEOUT
from .builtins import BUILTINS, Chat, demo_page
from .exceptions import ConfigurationError, HubError, MetricsUnavailable
from .http.router import Route
from .hub.push_request import check_key
from .hub.pushapi import check_base_path
from .server.tls import tls_options
from .swoole.server import Server as SwooleServer
from .targets import builtin_for, demo_route, resolve_target
from .websocket.admission import DEFAULT_RETRY_AFTER
from .websocket.server import DEFAULT_MAX_MESSAGE_SIZE
from .wrapping import DEFAULT_KEEPALIVE

__all__ = [
    "CONFIG_KEYS",
    "PUSH_KEY_ENV",
    "read_config",
    "check_numbers",
    "check_tls",
    "check_endpoint",
    "check_metrics",
    "check_push_api",
    "build_routes",
    "check_chat_history",
]

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
    "redis",
    "workers",
    "chat-history",
    *PHPWS_KEYS,
    *SESSION_FLAGS,
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


def read_config(options: usage.Options, path: str, flag_given: set[str]) -> None:
    """
    Fill ``options`` from the ``[ratchetpy]`` section of the ini file
    ``path``: a value given on the command line wins (``flag_given`` names
    the boolean flags given there); certificate paths are relative to the file.
    phpWebSocketServer's own ini files (``websock.ini``, ``config.ini``) are
    read too (see ``ratchetpy.phpws.ini``).
    """
    if read_phpws_config(options, path):
        return
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
            if not options[name]:  # a flag on the command line wins
                separators = r"[\n,]" if key in ("origin", "block") else r"[\n]"
                values = [v.strip() for v in re.split(separators, value)]
                options[name] = [v for v in values if v]
        elif key in _BOOLEANS:
            if key not in flag_given:
                try:
                    options[key] = int(parser.getboolean(CONFIG_SECTION, raw_key))
                except ValueError as exc:
                    raise usage.UsageError(
                        f"--config {path}: {raw_key} must be true or false, not {value!r}"
                    ) from exc
        elif options[key] is None:
            if key in ("tls-cert", "tls-key"):
                value = os.path.join(base, os.path.expanduser(value.strip()))
            options[key] = value.strip()


def check_numbers(options: usage.Options) -> None:
    """Check the seconds, counts and sizes, and put the defaults in place of the unset ones."""
    options["keepalive"] = _seconds("--keepalive", options["keepalive"], DEFAULT_KEEPALIVE, zero_ok=True)
    options["shutdown-timeout"] = _seconds(
        "--shutdown-timeout", options["shutdown-timeout"], DEFAULT_SHUTDOWN_TIMEOUT, zero_ok=False
    )
    for flag in ("max-connections", "max-connections-per-ip"):
        options[flag] = _count(f"--{flag}", options[flag]) or None
    retry_after = _count("--retry-after", options["retry-after"], zero_ok=False)
    options["retry-after"] = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
    options["idle-timeout"] = _seconds("--idle-timeout", options["idle-timeout"], 0.0, zero_ok=True) or None
    raw = options["max-message-size"]
    if raw is None:
        options["max-message-size"] = DEFAULT_MAX_MESSAGE_SIZE
        return
    match = _SIZE.fullmatch(str(raw).strip())
    if not match:
        raise usage.UsageError(
            f"--max-message-size {raw!r}: give a number of bytes, e.g. 1048576, 64K or 1M (0 = unlimited)"
        )
    size = int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    options["max-message-size"] = size or None


def check_tls(options: usage.Options) -> None:
    """Check that ``--tls-key`` comes with ``--tls-cert`` and that both files load."""
    cert, key = options["tls-cert"], options["tls-key"]
    if key and not cert:
        raise usage.UsageError("--tls-key needs --tls-cert (the certificate or full chain PEM file)")
    if cert:
        try:
            tls_options(cert, key)
        except ConfigurationError as exc:
            raise usage.UsageError(f"--tls-cert/--tls-key: {exc}") from exc


def check_metrics(options: usage.Options) -> None:
    """Check ``--metrics`` and ``--metrics-listen`` (and that prometheus-client is installed)."""
    given = [f for f in ("metrics", "metrics-listen") if options[f] is not None]
    if not given:
        return
    try:
        from .hub.metrics import check_path
    except MetricsUnavailable:
        raise usage.UsageError(
            f"--{given[0]}: the prometheus-client package is not installed; "
            "pip install 'ratchetpy[metrics]'"
        ) from None
    if options["metrics"] is not None:
        options["metrics"] = options["metrics"].strip()
        try:
            check_path(options["metrics"])
        except ConfigurationError as exc:
            raise usage.UsageError(f"--metrics {options['metrics']}: {exc}") from exc
    if options["metrics-listen"] is not None:
        options["metrics-listen"] = options["metrics-listen"].strip()
        check_endpoint(
            options["metrics-listen"], "--metrics-listen", "tcp:9100:interface=127.0.0.1"
        )


def check_push_api(options: usage.Options, key_source: str) -> None:
    """
    Check ``--push-api``, its key and ``--push-listen``; ``key_source``
    names where a given ``push-key`` came from (the flag or the ini file).
    """
    path, listen = options["push-api"], options["push-listen"]
    if not path:
        if options["push-key"] or listen:
            given = "--push-key" if options["push-key"] else "--push-listen"
            raise usage.UsageError(
                f"{given} is set but --push-api is not: add --push-api /push to serve the "
                "publish API"
            )
        return
    try:
        options["push-api"] = path = check_base_path(path.strip())
    except ConfigurationError as exc:
        raise usage.UsageError(f"--push-api {path}: {exc}") from exc
    for routed, _ in options["route_components"]:
        if routed == path or routed.startswith(path + "/"):
            raise usage.UsageError(
                f"--push-api {path}: {routed} is a --route; give the publish API a path of its own"
            )
    key = options["push-key"] or os.environ.get(PUSH_KEY_ENV) or None
    source = key_source if options["push-key"] else PUSH_KEY_ENV
    if key is None:
        raise usage.UsageError(
            f"--push-api {path} needs a key: give --push-key KEY, push-key in the --config "
            f"file, or {PUSH_KEY_ENV} in the environment (generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    try:
        options["push-key"] = check_key(key.strip())
    except ConfigurationError as exc:
        raise usage.UsageError(f"{source}: {exc}") from exc
    for spec in listen:
        check_endpoint(spec, "--push-listen")


def build_routes(options: usage.Options) -> None:
    """
    Resolve every ``--route`` into ``options["route_components"]``, adding
    the demo page at ``/`` when the built-in chat is routed (unless
    ``--no-demo``).
    """
    if not options["routes"]:
        raise usage.UsageError(
            "no --route given: try --route /chat (built-ins: "
            f"{', '.join(sorted(BUILTINS))}) or --route /path=package.module:Name"
        )
    built: list[tuple[str, Any]] = []
    for spec in options["routes"]:
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
            target = builtin_for(path)
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
    if not options["no-demo"] and "/" not in paths:
        chat = demo_route(built)
        if chat is not None:
            built.append(("/", demo_page(chat)))
            options["demo"] = chat
    options["route_components"] = built


def check_chat_history(options: usage.Options) -> None:
    """Apply ``--chat-history N`` to every built-in chat route (after ``build_routes``)."""
    raw = options.get("chat-history")
    if raw is None:
        return
    if not _DIGITS.fullmatch(str(raw).strip()):
        raise usage.UsageError(
            f"--chat-history {raw!r}: give how many messages each room keeps, e.g. 50 (0 = off)"
        )
    size = int(str(raw).strip())
    if not size:
        return
    chats = [c for _, c in options["route_components"] if isinstance(c, Chat)]
    if not chats:
        raise usage.UsageError(
            f"--chat-history {size}: no built-in chat is routed; add --route /chat "
            "(or --route '/room/{name}=chat'), or drop --chat-history"
        )
    for chat in chats:
        try:
            chat.keep_history(size)
        except HubError as exc:
            raise usage.UsageError(f"--chat-history {size}: {exc}") from exc


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


def check_endpoint(
    spec: str,
    flag: str = "--listen",
    example: str = "tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem:certKey=cert.pem",
) -> None:
    """Check the endpoint description ``spec`` given to ``flag``, without binding it."""
    from twisted.internet.endpoints import serverFromString
    from twisted.internet.testing import MemoryReactor

    try:
        # Parsed against a reactor that binds nothing: only the syntax and
        # files (certificates) are checked here; binding happens on start.
        serverFromString(MemoryReactor(), spec)
    except Exception as exc:
        raise usage.UsageError(f"{flag} {spec}: {exc or type(exc).__name__}; e.g. {example}") from exc
