# -*- test-case-name: tests.session.test_tap_session -*-
"""
The ``twistd ratchetpy`` session flags: ``--session-handler``,
``--session-name``, ``--session-serializer``, ``--session-gc-maxlifetime``,
``--session-user-key``, ``--laravel-key`` (or ``RATCHETPY_LARAVEL_KEY``) and
``--laravel-cipher``.

``check_sessions`` checks them (each mistake is one line naming the flag
and the fix) and leaves in ``options["session"]`` the ``App.route(...,
session=...)`` settings every WebSocket route gets, sharing one handler
(one connection to Redis or memcached for all routes).
"""

from __future__ import annotations

import os
import re
from typing import Any

from twisted.python import usage

from .builtins import Chat
from .exceptions import ConfigurationError, SessionDataError

__all__ = ["LARAVEL_KEY_ENV", "SESSION_FLAGS", "check_sessions"]

LARAVEL_KEY_ENV = "RATCHETPY_LARAVEL_KEY"
"""The environment variable holding Laravel's APP_KEY (``--laravel-key`` wins)."""

SESSION_FLAGS = (
    "session-handler",
    "session-name",
    "session-serializer",
    "session-gc-maxlifetime",
    "session-user-key",
    "laravel-key",
    "laravel-cipher",
)

_FORMS = "e.g. files:/var/lib/php/sessions, redis://127.0.0.1:6379/0 or memcached:127.0.0.1:11211"


def check_sessions(options: usage.Options, key_source: str) -> None:
    """
    Check the session flags (after ``build_routes``); ``key_source`` names
    where a given ``laravel-key`` came from (the flag or the ini file).
    """
    options["session"] = None
    spec = options["session-handler"]
    key = options["laravel-key"] or os.environ.get(LARAVEL_KEY_ENV) or None
    if spec is None:
        given = [f for f in SESSION_FLAGS[1:] if options[f] is not None]
        if given:
            flag = given[0]
            raise usage.UsageError(
                f"--{flag} is set but --session-handler is not: add --session-handler ({_FORMS})"
            )
        return
    from .session.formats import SERIALIZERS
    from .session.handlers import FilesHandler
    from .session.spec import handler_from_spec

    spec = spec.strip()
    try:
        handler = handler_from_spec(spec, laravel=key is not None)
    except ConfigurationError as exc:
        raise usage.UsageError(f"--session-handler {spec}: {exc}") from None
    if isinstance(handler, FilesHandler):
        directory = handler.directory
        if not os.path.isdir(directory):
            raise usage.UsageError(
                f"--session-handler {spec}: {directory} is not a directory; give PHP's "
                "session.save_path (php -i | grep session.save_path)"
            )
        if not os.access(directory, os.R_OK | os.X_OK):
            raise usage.UsageError(
                f"--session-handler {spec}: this user cannot read {directory}; run the server "
                "in PHP's group or give it read access to the session files"
            )
    session_options: dict[str, Any] = {}
    name = options["session-name"]
    if name is not None:
        name = name.strip()
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise usage.UsageError(
                f"--session-name {name!r}: give the session cookie's name (PHP's session.name, "
                "e.g. PHPSESSID; Laravel: laravel_session)"
            )
        session_options["name"] = name
    serializer = options["session-serializer"]
    if serializer is not None:
        serializer = serializer.strip()
        if serializer not in SERIALIZERS:
            raise usage.UsageError(
                f"--session-serializer {serializer!r}: give PHP's session.serialize_handler, one "
                f"of {', '.join(SERIALIZERS)} (or leave it out to detect it)"
            )
    lifetime = options["session-gc-maxlifetime"]
    if lifetime is not None:
        text = str(lifetime).strip()
        if not text.isdigit() or int(text) < 1:
            raise usage.UsageError(
                f"--session-gc-maxlifetime {lifetime!r}: give PHP's session.gc_maxlifetime, a "
                "whole number of seconds, 1 or more (PHP's default: 1440)"
            )
        session_options["gc_maxlifetime"] = int(text)
    settings: dict[str, Any] = {"handler": handler, "options": session_options, "serializer": serializer}
    cipher = options["laravel-cipher"]
    if cipher is not None and key is None:
        raise usage.UsageError(
            f"--laravel-cipher is set but no Laravel key is: give --laravel-key or {LARAVEL_KEY_ENV}"
        )
    if key is not None:
        source = key_source if options["laravel-key"] else LARAVEL_KEY_ENV
        settings["laravel_key"] = key.strip()
        from .session.laravel import LARAVEL_CIPHERS, LaravelEncrypter

        if cipher is not None:
            cipher = cipher.strip().lower()
            if cipher not in LARAVEL_CIPHERS:
                raise usage.UsageError(
                    f"--laravel-cipher {cipher!r}: give the Laravel app's config/app.php 'cipher', "
                    f"one of {', '.join(LARAVEL_CIPHERS)}"
                )
            settings["laravel_cipher"] = cipher
        try:
            LaravelEncrypter(key.strip(), cipher or "aes-256-cbc")
        except (ConfigurationError, SessionDataError) as exc:
            raise usage.UsageError(f"{source}: {exc}") from None
    user_key = options["session-user-key"]
    if user_key is not None:
        user_key = user_key.strip()
        chats = [c for _, c in options["route_components"] if isinstance(c, Chat)]
        if not user_key:
            raise usage.UsageError(
                "--session-user-key is empty: give the session key holding the user's name, e.g. name"
            )
        if not chats:
            raise usage.UsageError(
                f"--session-user-key {user_key}: no built-in chat is routed; add --route /chat "
                "(your own components read conn.session themselves)"
            )
        for chat in chats:
            chat.session_user_key = user_key
    options["session"] = settings

