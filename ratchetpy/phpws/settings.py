# -*- test-case-name: tests.phpws.test_settings -*-
"""
The settings all phpWebSocketServer-compatible routes of one server share.

phpWebSocketServer keeps most of these in code (``pingInterval``,
``maxClients``, ``maxPerIP``, ``allowedOrigins``, ``allowedIP``); here they
are ``twistd ratchetpy --phpws-*`` flags, ``[ratchetpy]`` ini keys of the
same names, or :class:`PhpWsSettings` fields.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from .jsauth import JsAuth

__all__ = ["PhpWsSettings", "Network", "parse_networks", "DEFAULT_PHP_GAP"]

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007 - a runtime alias

DEFAULT_PHP_GAP = 0.04
"""Seconds between two frames written to one PHP-type client (and after the 101)."""


def parse_networks(name: str, entries: Iterable[str]) -> tuple[Network, ...]:
    """
    Parse addresses or CIDR ranges (``127.0.0.1``, ``10.0.0.0/8``, ``::1``).

    Raises:
        ConfigurationError: an entry is neither (the message names ``name``).
    """
    networks: list[Network] = []
    for entry in entries:
        text = str(entry).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"{name}: {text!r} is not an IP address or CIDR range (e.g. 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def _limit(name: str, value: int | None) -> int | None:
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a whole number, 0 or more (0 = no limit), not {value!r}")
    return value


@dataclass
class PhpWsSettings:
    """
    Admission, keepalive and pacing of the phpws routes.

    Attributes:
        ping_interval: seconds between ping rounds to browser-type clients
            (phpWebSocketServer's ``pingInterval``; 0: no pings). Each
            round drops a browser whose previous ping got no pong.
        max_clients: most phpws connections at once, of both types
            (``maxClients``; ``None``: no limit). Over it a client gets
            ``{"opcode":"close","error":"Too many connections"}``.
        max_per_ip: most browser-type connections from one IP
            (``maxPerIP``; ``None``: no limit); over it
            ``"Too many connections from: <ip>"``.
        php_allowed: where PHP-type clients may connect from
            (``allowedIP``); empty: loopback and the address the client
            connected to (the server's own). Others are dropped silently.
        allowed_origins: ``Origin`` values accepted, by exact string match
            (``allowedOrigins``); empty: any. Others are dropped silently.
        trusted_proxies: peers whose ``X-Forwarded-For`` is believed (its
            first entry is then the client's IP); empty: none, so the
            peer's own address always counts.
        jsauth: the PHP session check (``[jsauth]``), or ``None``.
        php_gap: seconds between the 101 and ``ready``, and between any two
            frames, written to a PHP-type client: its client reads one frame
            per read and loses anything that arrives with the 101.
    """

    ping_interval: float = 0.0
    max_clients: int | None = None
    max_per_ip: int | None = None
    php_allowed: tuple[Network, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()
    jsauth: JsAuth | None = None
    php_gap: float = DEFAULT_PHP_GAP

    def __post_init__(self) -> None:
        for name in ("ping_interval", "php_gap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 86400:
                raise ConfigurationError(f"{name} must be a number of seconds, 0 or more, not {value!r}")
            setattr(self, name, float(value))
        self.max_clients = _limit("max_clients", self.max_clients)
        self.max_per_ip = _limit("max_per_ip", self.max_per_ip)
        self.php_allowed = tuple(self.php_allowed)
        self.trusted_proxies = tuple(self.trusted_proxies)
        self.allowed_origins = tuple(o for o in (s.strip() for s in self.allowed_origins) if o)
