# -*- test-case-name: tests.phpws.test_tap_phpws -*-
"""
``twistd ratchetpy``'s phpWebSocketServer compatibility: the ``--phpws-*``
flags, phpWebSocketServer's own ini files given to ``--config``, and the
routes ``makeService`` adds for the ``phpws`` target.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.logger import Logger, globalLogPublisher, textFileLogObserver
from twisted.python import usage

from .exceptions import ConfigurationError
from .phpws.ini import is_phpws_ini, read_phpws_ini
from .phpws.jsauth import JsAuth
from .phpws.server import PhpWsServer
from .phpws.settings import DEFAULT_PHP_GAP, PhpWsSettings, parse_networks

__all__ = ["PHPWS_OPTIONS", "PHPWS_KEYS", "read_phpws_config", "check_phpws", "route_phpws"]

_log = Logger(namespace="ratchetpy.tap")

PHPWS_OPTIONS = [
    ["phpws-ping-interval", None, None,
     "phpws routes: seconds between pings to browser-type clients, dropping those that did not "
     "answer the previous one; 0 = off. [default: 0]"],
    ["phpws-max-clients", None, None,
     "phpws routes: most clients at once (both types); 0 = no limit. [default: 0]"],
    ["phpws-max-per-ip", None, None,
     "phpws routes: most browser-type clients from one IP; 0 = no limit. [default: 0]"],
    ["phpws-php-allow", None, None,
     "phpws routes: addresses/CIDR ranges PHP-type clients may come from, comma-separated. "
     "[default: loopback and the server's own address]"],
    ["phpws-origins", None, None,
     "phpws routes: the only Origin values accepted (exact match), comma-separated. [default: any]"],
    ["phpws-trusted-proxies", None, None,
     "phpws routes: proxies (addresses/CIDR, comma-separated) whose X-Forwarded-For gives the "
     "client IP. [default: none]"],
    ["phpws-php-gap", None, None,
     "phpws routes: seconds between frames written to a PHP-type client (and between the 101 "
     f"and ready). [default: {DEFAULT_PHP_GAP:g}]"],
    ["phpws-jsauth-save-path", None, None,
     "phpws routes: check each client's PHP session in this session.save_path directory."],
    ["phpws-jsauth-key", None, None,
     "phpws routes: the session key that must be truthy for a client to stay connected."],
    ["phpws-jsauth-cookie", None, None,
     "phpws routes: the session cookie name. [default: PHPSESSID]"],
    ["phpws-log-file", None, None,
     "Also write the log to this file (phpWebSocketServer's logfile)."],
]
"""The ``--phpws-*`` flags (in ``Options.optParameters``)."""

PHPWS_KEYS: tuple[str, ...] = tuple(str(option[0]) for option in PHPWS_OPTIONS)
"""Their names, which are also ``[ratchetpy]`` ini keys."""


def read_phpws_config(options: usage.Options, path: str) -> bool:
    """
    If ``path`` is one of phpWebSocketServer's ini files, fill ``options``
    from it (flags on the command line win) and return True; else False.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return False  # read_config reports it
    if not is_phpws_ini(text):
        return False
    try:
        ini = read_phpws_ini(path)
    except ConfigurationError as exc:
        raise usage.UsageError(f"--config {path} (a phpWebSocketServer ini file): {exc}") from exc
    if not options["listen"]:
        options["listen"] = [ini.listen]
    if not options["routes"]:
        options["routes"] = list(ini.routes)
    if ini.tls_cert is not None and options["tls-cert"] is None:
        options["tls-cert"], options["tls-key"] = ini.tls_cert, ini.tls_key
    if ini.log_file is not None and options["phpws-log-file"] is None:
        options["phpws-log-file"] = ini.log_file
    if ini.jsauth is not None and options["phpws-jsauth-save-path"] is None:
        save_path, key, cookie = ini.jsauth
        options["phpws-jsauth-save-path"] = save_path
        options["phpws-jsauth-key"] = options["phpws-jsauth-key"] or key
        options["phpws-jsauth-cookie"] = options["phpws-jsauth-cookie"] or cookie
    options["phpws-notes"] = [f"--config {path}: {note}" for note in ini.notes]
    return True


def _seconds(options: usage.Options, key: str, default: float) -> float:
    raw = options[key]
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:
        raise usage.UsageError(f"--{key} {raw!r}: give a number of seconds, 0 or more (e.g. 30)")
    return value


def _count(options: usage.Options, key: str) -> int | None:
    raw = options[key]
    if raw is None:
        return None
    text = str(raw).strip()
    if not text.isdigit():
        raise usage.UsageError(f"--{key} {raw!r}: give a whole number, 0 or more (0 = no limit)")
    return int(text) or None


def _list(options: usage.Options, key: str) -> list[str]:
    raw = options[key]
    return [part.strip() for part in str(raw or "").split(",") if part.strip()]


def check_phpws(options: usage.Options) -> None:
    """
    Check the ``--phpws-*`` flags into ``options["phpws-settings"]`` (after
    ``build_routes``): each bad value is one line naming the flag and the fix.
    """
    given = [key for key in PHPWS_KEYS if options[str(key)] is not None and key != "phpws-log-file"]
    phpws_routes = [path for path, c in options["route_components"] if isinstance(c, PhpWsServer)]
    if given and not phpws_routes:
        raise usage.UsageError(
            f"--{given[0]} is set but no route serves phpws: add e.g. --route /web=phpws "
            "--route /php=phpws, or drop it"
        )
    try:
        php_allowed = parse_networks("--phpws-php-allow", _list(options, "phpws-php-allow"))
        proxies = parse_networks("--phpws-trusted-proxies", _list(options, "phpws-trusted-proxies"))
    except ConfigurationError as exc:
        raise usage.UsageError(str(exc)) from exc
    save_path, key = options["phpws-jsauth-save-path"], options["phpws-jsauth-key"]
    jsauth = None
    if save_path is not None or key is not None:
        if not save_path or not key:
            missing = "--phpws-jsauth-key" if save_path else "--phpws-jsauth-save-path"
            raise usage.UsageError(
                f"the phpws session check needs both --phpws-jsauth-save-path and --phpws-jsauth-key: "
                f"add {missing}"
            )
        try:
            jsauth = JsAuth(save_path, key, options["phpws-jsauth-cookie"] or "PHPSESSID")
        except ConfigurationError as exc:
            raise usage.UsageError(f"--phpws-jsauth-save-path {save_path}: {exc}") from exc
    elif options["phpws-jsauth-cookie"] is not None:
        raise usage.UsageError(
            "--phpws-jsauth-cookie needs --phpws-jsauth-save-path and --phpws-jsauth-key"
        )
    options["phpws-settings"] = PhpWsSettings(
        ping_interval=_seconds(options, "phpws-ping-interval", 0.0),
        max_clients=_count(options, "phpws-max-clients"),
        max_per_ip=_count(options, "phpws-max-per-ip"),
        php_allowed=php_allowed,
        allowed_origins=tuple(_list(options, "phpws-origins")),
        trusted_proxies=proxies,
        jsauth=jsauth,
        php_gap=_seconds(options, "phpws-php-gap", DEFAULT_PHP_GAP),
    )
    log_file = options["phpws-log-file"]
    if log_file is not None:
        directory = os.path.dirname(os.path.abspath(log_file))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise usage.UsageError(
                f"--phpws-log-file {log_file}: cannot write in {directory}; give a writable path"
            )


def route_phpws(app: Any, options: usage.Options, path: str, component: PhpWsServer) -> None:
    """Route one phpws component: the shared settings, and any Origin (it checks its own)."""
    component.settings = options["phpws-settings"]
    component.component.log_connections = not options["quiet"]
    app.route(path, component, ["*"])


def finish_phpws(app: Any, options: usage.Options) -> None:
    """
    After every other route: with phpws routes, answer any other path as
    phpWebSocketServer does (101, then ``{"opcode":"close"}``); start the
    log file; log the ini file's notes.
    """
    log_file = options["phpws-log-file"]
    if log_file is not None:
        # Open for the process's life, as twistd's own log file.
        stream = open(log_file, "a", encoding="utf-8")
        globalLogPublisher.addObserver(textFileLogObserver(stream))
    for note in options.get("phpws-notes") or ():
        _log.warn("{note}", note=note)
    if any(isinstance(c, PhpWsServer) for _, c in options["route_components"]):
        catch_all = PhpWsServer(catch_all=True, settings=options["phpws-settings"], log_connections=False)
        app.route("/{phpws_unknown<.*>}", catch_all, ["*"])
