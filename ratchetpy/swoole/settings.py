# -*- test-case-name: tests.swoole.test_settings -*-
"""
``server.set({...})``: Swoole's setting names, mapped to ratchetpy's options.

Each Swoole setting that has a counterpart here is accepted under its
Swoole name and checked at once; one that cannot apply (worker processes,
coroutine hooks, daemon options twistd owns) or that nobody knows is
refused with a ``ConfigurationError`` naming the setting and what to do
instead. ``SETTINGS`` lists what is accepted, ``NOT_APPLICABLE`` what is
refused and why.

``max_conn``/``max_connection``, ``max_connections_per_ip`` and the
heartbeat pair map to options named ``max_connections``,
``max_connections_per_ip`` and ``idle_timeout``; they are passed to
``WsServer`` or ``App`` when the installed version takes them, and refused
as "not supported in this version" otherwise.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["Settings", "SETTINGS", "NOT_APPLICABLE", "PASS_THROUGH", "parameters_of"]

_ONE_PROCESS = (
    "ratchetpy serves every connection from one process and one reactor; remove it "
    "(for more cores run one process per core behind a load balancer, see docs/scaling.md)"
)
_TWISTD = (
    "run the server under twistd for that: twistd --pidfile=run.pid --logfile=server.log "
    "ratchetpy --route /=yourmodule:server; remove it here"
)
_COROUTINES = "handlers may be 'async def' (they can await Deferreds) instead; remove it"
_TASKS = "task() runs functions in the reactor's thread pool (size: task_worker_num); remove it"
_FRAMES = (
    "ratchetpy answers pings and runs the closing handshake itself and does not hand "
    "control frames to handlers in this version; remove it"
)

NOT_APPLICABLE: dict[str, str] = {
    "worker_num": _ONE_PROCESS,
    "reactor_num": _ONE_PROCESS,
    "dispatch_mode": _ONE_PROCESS,
    "dispatch_func": _ONE_PROCESS,
    "max_request": _ONE_PROCESS,
    "reload_async": _ONE_PROCESS,
    "enable_coroutine": _COROUTINES,
    "hook_flags": _COROUTINES,
    "task_enable_coroutine": _COROUTINES,
    "max_coroutine": _COROUTINES,
    "task_ipc_mode": _TASKS,
    "task_max_request": _TASKS,
    "task_tmpdir": _TASKS,
    "task_use_object": _TASKS,
    "daemonize": _TWISTD,
    "pid_file": _TWISTD,
    "log_file": _TWISTD,
    "log_level": _TWISTD,
    "log_rotation": _TWISTD,
    "log_date_format": _TWISTD,
    "user": _TWISTD,
    "group": _TWISTD,
    "chroot": _TWISTD,
    "open_websocket_close_frame": _FRAMES,
    "open_websocket_ping_frame": _FRAMES,
    "open_websocket_pong_frame": _FRAMES,
    "open_http2_protocol": "HTTP/2 is not served; remove it",
    "buffer_output_size": (
        "what the server sends is not limited per message; socket_buffer_size bounds what "
        "one client may leave unread"
    ),
}
"""Swoole settings refused, with the reason given in the error."""

PASS_THROUGH: dict[str, tuple[str, ...]] = {
    "max_connections": ("App", "WsServer"),
    "max_connections_per_ip": ("App", "WsServer"),
    "idle_timeout": ("WsServer", "App"),
}
"""Options handed on to ``App``/``WsServer`` if they take them, in order of preference."""


def parameters_of(*callables: Callable[..., Any]) -> frozenset[str]:
    """The keyword names the callables accept (for ``Settings.update``)."""
    names: set[str] = set()
    for function in callables:
        names.update(inspect.signature(function).parameters)
    return frozenset(names)


@dataclass
class Settings:
    """
    What ``server.set()`` was given, as ratchetpy options.

    ``None`` means "not set": the ``App`` the server runs in decides
    (its ``keepalive``, ``max_message_size``, ...).
    """

    max_message_size: int | None = None
    compression: str | None = None
    cert: str | None = None
    key: str | None = None
    keepalive: float | None = None
    log_connections: bool | None = None
    shutdown_timeout: float | None = None
    max_buffered_bytes: int | None = None
    sub_protocol: str | None = None
    allowed_origins: list[str] | None = None
    thread_pool_size: int | None = None
    heartbeat_check_interval: float | None = None
    app_options: dict[str, Any] = field(default_factory=dict)
    ws_options: dict[str, Any] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    listen_keys: list[str] = field(default_factory=list)
    """Settings given that belong to the listening side (the App): TLS, limits, stop."""

    def update(
        self,
        options: Mapping[str, Any],
        app_parameters: Iterable[str],
        ws_parameters: Iterable[str],
    ) -> None:
        """
        Check and record Swoole settings; all or nothing.

        Args:
            options: setting name to value, as PHP's ``$server->set([...])``.
            app_parameters: keyword names ``App`` takes (pass-through check).
            ws_parameters: keyword names ``WsServer`` takes.

        Raises:
            ConfigurationError: a setting is unknown, not applicable, not
                supported by this version, or has a bad value.
        """
        if not isinstance(options, Mapping):
            raise ConfigurationError(
                f"set() takes a dict of Swoole settings, e.g. set({{'max_conn': 1000}}), "
                f"not {type(options).__name__}"
            )
        targets = {"App": frozenset(app_parameters), "WsServer": frozenset(ws_parameters)}
        # Checked on a copy, so a bad setting leaves nothing half applied.
        staged = copy.deepcopy(self)
        for key, value in options.items():
            if not isinstance(key, str):
                raise ConfigurationError(f"setting names are strings, not {key!r}")
            apply = SETTINGS.get(key)
            if apply is None:
                if key in NOT_APPLICABLE:
                    raise ConfigurationError(f"setting {key!r} does not apply: {NOT_APPLICABLE[key]}")
                raise ConfigurationError(
                    f"unknown setting {key!r}; supported: {', '.join(sorted(SETTINGS))}"
                )
            apply(staged, key, value, targets)
            staged.given[key] = value
        if staged.key and not staged.cert:
            raise ConfigurationError("ssl_key_file needs ssl_cert_file (the certificate or full chain PEM file)")
        if staged.heartbeat_check_interval and "idle_timeout" not in staged.app_options | staged.ws_options:
            # Swoole's rule: an idle time not set is twice the check interval.
            _pass_through(staged, "heartbeat_check_interval", "idle_timeout",
                          2 * staged.heartbeat_check_interval, targets)
        self.__dict__.update(staged.__dict__)


# -- checks ---------------------------------------------------------------


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"setting {key!r} must be a positive int, not {value!r}")
    return value


def _seconds(key: str, value: Any, zero_ok: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        need = "a number of seconds, 0 or more" if zero_ok else "a positive number of seconds"
        raise ConfigurationError(f"setting {key!r} must be {need}, not {value!r}")
    return float(value)


def _flag(key: str, value: Any) -> bool:
    # PHP code writes true/false or 1/0.
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    raise ConfigurationError(f"setting {key!r} must be true or false, not {value!r}")


def _path(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"setting {key!r} must be a file path, not {value!r}")
    return value


def _pass_through(
    settings: Settings, key: str, option: str, value: Any, targets: dict[str, frozenset[str]]
) -> None:
    for target in PASS_THROUGH[option]:
        if option in targets[target]:
            if target == "App":
                settings.app_options[option] = value
                settings.listen_keys.append(key)
            else:
                settings.ws_options[option] = value
            return
    raise ConfigurationError(
        f"setting {key!r} is not supported in this version of ratchetpy (neither App nor "
        f"WsServer takes {option}=); remove it, or upgrade ratchetpy"
    )


# -- the table --------------------------------------------------------------

_Apply = Callable[[Settings, str, Any, dict[str, frozenset[str]]], None]


def _max_connections(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    _pass_through(s, key, "max_connections", _positive_int(key, value), targets)


def _per_ip(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    _pass_through(s, key, "max_connections_per_ip", _positive_int(key, value), targets)


def _idle(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    _pass_through(s, key, "idle_timeout", _seconds(key, value), targets)


def _check_interval(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.heartbeat_check_interval = _seconds(key, value)


def _compression(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.compression = "deflate" if _flag(key, value) else None


def _cert(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.cert = _path(key, value)
    s.listen_keys.append(key)


def _key(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.key = _path(key, value)
    s.listen_keys.append(key)


def _package_max_length(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.max_message_size = _positive_int(key, value)


def _socket_buffer(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.max_buffered_bytes = _positive_int(key, value)


def _max_wait(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.shutdown_timeout = _seconds(key, value)
    s.listen_keys.append(key)


def _task_workers(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.thread_pool_size = _positive_int(key, value)


def _subprotocol(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    if not isinstance(value, str) or not value or any(c in value for c in " ,;\t\r\n"):
        raise ConfigurationError(f"setting {key!r} must be one subprotocol name such as 'chat', not {value!r}")
    s.sub_protocol = value


def _keepalive(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.keepalive = _seconds(key, value, zero_ok=True)


def _log_connections(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    s.log_connections = _flag(key, value)


def _origins(s: Settings, key: str, value: Any, targets: dict[str, frozenset[str]]) -> None:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(
            f"setting {key!r} must be a list of Origin hosts such as ['example.com', '*.example.com'], not {value!r}"
        )
    s.allowed_origins = list(value)


SETTINGS: dict[str, _Apply] = {
    "max_conn": _max_connections,
    "max_connection": _max_connections,
    "max_connections_per_ip": _per_ip,
    "heartbeat_idle_time": _idle,
    "heartbeat_check_interval": _check_interval,
    "websocket_compression": _compression,
    "ssl_cert_file": _cert,
    "ssl_key_file": _key,
    "package_max_length": _package_max_length,
    "socket_buffer_size": _socket_buffer,
    "max_wait_time": _max_wait,
    "task_worker_num": _task_workers,
    "websocket_subprotocol": _subprotocol,
    # ratchetpy's own, beside Swoole's:
    "keepalive": _keepalive,
    "log_connections": _log_connections,
    "allowed_origins": _origins,
}
"""Settings ``set()`` accepts (Swoole names, then ratchetpy's own)."""
