"""Ratchet's ``Ratchet\\WebSocket`` namespace: WebSocket on Autobahn."""

from .broadcast import broadcast
from .connection import WsConnection
from .handshake import HandshakeResult, negotiate
from .interfaces import WsServerInterface
from .server import WsServer

__all__ = [
    "broadcast",
    "WsServer", "WsServerInterface", "WsConnection", "HandshakeResult", "negotiate"]
