"""Ratchet's ``Ratchet\\Server`` namespace: the I/O server and plain components."""

from .blacklist import IpBlackList
from .echo import EchoServer
from .io import IoConnection, IoServer

__all__ = ["IoServer", "IoConnection", "EchoServer", "IpBlackList"]
