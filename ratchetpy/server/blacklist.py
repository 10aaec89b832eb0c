# -*- test-case-name: tests.server.test_blacklist -*-
"""
``IpBlackList``: close connections from blocked addresses at once.

Put it as close to ``IoServer`` as possible (Ratchet's advice), e.g.
``IoServer(IpBlackList(HttpServer(...)), ...)``, so a blocked peer costs
no HTTP parsing. A blocked connection is closed without reaching the
wrapped component: it sees no ``on_open``, ``on_message``, ``on_close``
or ``on_error`` for it.

Beyond Ratchet, entries may be CIDR ranges (``10.0.0.0/8``,
``2001:db8::/32``); an IPv4-mapped IPv6 peer (``::ffff:10.1.2.3``) is
checked as its IPv4 address.
"""

from __future__ import annotations

import ipaddress
from typing import Any, TypeAlias
from weakref import WeakSet

from twisted.logger import Logger

from ..exceptions import ConfigurationError
from ..interfaces import ConnectionInterface, MessageComponentInterface, check_component

__all__ = ["IpBlackList", "parse_network"]

_log = Logger(namespace="ratchetpy.server")

_Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(entry: str) -> _Network:
    """
    Read an address (``192.0.2.7``, ``192.0.2.7:4000``) or CIDR range.

    Raises:
        ConfigurationError: ``entry`` is neither.
    """
    try:
        return ipaddress.ip_network(IpBlackList.filter_address(entry), strict=False)
    except ValueError as exc:
        raise ConfigurationError(
            f"not an IP address or CIDR range: {entry!r} (e.g. '192.0.2.7' or '10.0.0.0/8')"
        ) from exc


class IpBlackList(MessageComponentInterface):
    """
    Refuse connections from blocked addresses and ranges.

    ``block_address``/``unblock_address`` return the blacklist, so calls
    chain as in Ratchet. Changes apply to new connections.
    """

    def __init__(self, component: Any) -> None:
        check_component(
            component, ("on_open", "on_message", "on_close", "on_error"), "IpBlackList"
        )
        self.component = component
        self._blocked: dict[str, _Network] = {}
        # Connections refused here, kept here rather than flagged on them.
        self._refused: WeakSet[ConnectionInterface] = WeakSet()

    @staticmethod
    def filter_address(address: str) -> str:
        """Strip a ``:port`` from ``a.b.c.d:port`` and brackets from ``[v6]:port``."""
        address = address.strip()
        if address.startswith("["):
            return address[1 : address.find("]")] if "]" in address else address
        if address.count(":") == 1:
            return address.partition(":")[0]
        return address

    def block_address(self, address: str) -> IpBlackList:
        """Block an address (``192.0.2.7``) or a CIDR range (``10.0.0.0/8``)."""
        self._blocked[address] = parse_network(address)
        return self

    def unblock_address(self, address: str) -> IpBlackList:
        """Remove an entry exactly as it was given to ``block_address``."""
        self._blocked.pop(address, None)
        return self

    def get_blocked_addresses(self) -> list[str]:
        """The entries, as given, in the order they were added."""
        return list(self._blocked)

    def is_blocked(self, address: str) -> bool:
        """True if ``address`` is blocked or inside a blocked range."""
        try:
            ip = ipaddress.ip_address(self.filter_address(address))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._blocked.values())

    def on_open(self, conn: ConnectionInterface) -> Any:
        if self.is_blocked(conn.remote_address):
            self._refused.add(conn)
            _log.info(
                "Refused connection from blocked address {peer}", peer=conn.remote_address
            )
            conn.close()
            return None
        return self.component.on_open(conn)

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        if conn not in self._refused:
            return self.component.on_message(conn, msg)
        return None

    def on_close(self, conn: ConnectionInterface) -> Any:
        if conn in self._refused:
            self._refused.discard(conn)
            return None
        return self.component.on_close(conn)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Any:
        if conn not in self._refused:
            return self.component.on_error(conn, exc)
        return None
