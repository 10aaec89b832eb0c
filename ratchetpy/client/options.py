# -*- test-case-name: tests.client.test_options -*-
"""
What a client connects to and how: the URL, the handshake, the limits.

``ClientOptions`` checks every value when it is built, so a bad timeout or
URL fails at ``connect()`` with a ``ConfigurationError`` naming the option,
not later inside the reactor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError

__all__ = ["ClientOptions", "Target", "parse_url", "DEFAULT_MAX_MESSAGE_SIZE"]

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
"""The largest message a client accepts by default (the server's default too)."""


@dataclass(frozen=True)
class Target:
    """A parsed ``ws://`` or ``wss://`` URL."""

    url: str
    secure: bool
    host: str
    port: int
    resource: str
    """The path and query sent in the request line (``/`` at least)."""

    @property
    def host_header(self) -> str:
        """``host`` as it goes in a URL: IPv6 addresses in brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host


def parse_url(url: str) -> Target:
    """
    Parse a WebSocket URL.

    Raises:
        ConfigurationError: not a ``ws://`` or ``wss://`` URL with a host,
            a bad port, or a fragment (RFC 6455 forbids one).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"url must be a str such as 'ws://127.0.0.1:8080/', not {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ConfigurationError(
            f"url {url!r} must start with ws:// or wss:// (e.g. ws://127.0.0.1:8080/chat)"
        )
    if parts.fragment:
        raise ConfigurationError(f"url {url!r} has a fragment (#...): WebSocket URLs may not")
    if not parts.hostname:
        raise ConfigurationError(f"url {url!r} has no host")
    try:
        port = parts.port
    except ValueError:
        raise ConfigurationError(f"url {url!r} has a bad port (use 1-65535)") from None
    secure = scheme == "wss"
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    return Target(url, secure, parts.hostname, port or (443 if secure else 80), resource)


def _positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        hint = " or None to turn it off" if allow_none else ""
        raise ConfigurationError(f"{name} must be a number of seconds above 0{hint}, not {value!r}")


@dataclass(frozen=True)
class ClientOptions:
    """
    Everything ``connect()`` and ``ReconnectingClient`` take besides the URL
    and the component. See ``connect()`` for the meaning of each.

    Raises:
        ConfigurationError: a value that cannot work (the message names it).
    """

    subprotocols: Sequence[str] = ()
    headers: dict[str, str] = field(default_factory=dict)
    origin: str | None = None
    user_agent: str | None = None
    connect_timeout: float = 10.0
    handshake_timeout: float = 10.0
    close_timeout: float = 5.0
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    keepalive_interval: float | None = 20.0
    keepalive_timeout: float = 20.0
    ca_file: str | None = None
    trust_root: Any = None
    tls: Any = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.subprotocols, str):
            raise ConfigurationError(
                f"subprotocols must be a sequence of names, not the str {self.subprotocols!r}"
                f" (write ({self.subprotocols!r},))"
            )
        object.__setattr__(self, "subprotocols", tuple(self.subprotocols))
        for name in self.subprotocols:
            if not isinstance(name, str) or not name or any(c in name for c in " ,\r\n\t"):
                raise ConfigurationError(f"subprotocol {name!r} must be a non-empty token")
        headers = dict(self.headers or {})
        for key, value in headers.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigurationError(f"header {key!r}: names and values must be str")
            if any(c in key + value for c in "\r\n") or not key or ":" in key:
                raise ConfigurationError(f"header {key!r}: a name without ':' and no line breaks")
        object.__setattr__(self, "headers", headers)
        _positive("connect_timeout", self.connect_timeout)
        _positive("handshake_timeout", self.handshake_timeout)
        _positive("close_timeout", self.close_timeout)
        _positive("keepalive_interval", self.keepalive_interval, allow_none=True)
        _positive("keepalive_timeout", self.keepalive_timeout)
        size = self.max_message_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ConfigurationError(
                f"max_message_size must be a number of bytes above 0 or None, not {size!r}"
            )
        chosen = [n for n in ("ca_file", "trust_root", "tls") if getattr(self, n) is not None]
        if self.insecure:
            chosen.append("insecure")
        if len(chosen) > 1:
            raise ConfigurationError(f"pass only one of {', '.join(chosen)}: they all decide TLS trust")
