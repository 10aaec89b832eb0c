# -*- test-case-name: tests.phpws.test_memory -*-
"""
Resource classes: phpWebSocketServer's server-side "application classes".

A resource serves one route of the compatibility mode. The server calls

=================================  ====================================
ratchetpy (``PhpWsResource``)      phpWebSocketServer (``resource``)
=================================  ====================================
``on_open(sid)``                   ``onOpen($SocketID)``
``on_data(sid, message)``          ``onData($SocketID, $M)``
``on_close(sid)``                  ``onClose($SocketID)``
``on_error(sid, exc)``             ``onError($SocketID, $M)``
=================================  ====================================

and gives it (PHP: ``registerServerMethods`` injects them)

=================================  ====================================
``broadcast(sid, message)``        ``broadCast($SocketID, $M)``
``feedback(packet)``               ``feedback($packet)``
``echo(sid, packet)``              ``echo($SocketID, $packet)``
``log(message)``                   ``Log($M)``
``close(sid)``                     ``Close($SocketID)``
``get_packet(message)``            ``getPacket($M)``
``clients[sid]``                   ``$server->Clients[$SocketID]``
=================================  ====================================

``sid`` is the client's uuid (its ``conn.id``), not a small integer.
The server does the protocol around ``on_data``: a message that is not
JSON, empty, or ``{"opcode":"quit"}`` closes the client before
``on_data``; every other message gets exactly one
``{"opcode":"next","fyi":""}`` after ``on_data`` returns (or after the
Deferred it returns fires), also when ``on_data`` raises.

:class:`DefaultResource` is what the built-in ``phpws`` target serves:
the ``feedback``, ``echo`` and ``broadcast`` opcodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from .packets import decode_packet, php_json_encode

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from ..hub import Hub
    from .clients import PhpWsClients
    from .server import PhpWsServer

__all__ = ["PhpWsResource", "DefaultResource"]

_log = Logger(namespace="ratchetpy.phpws")


class PhpWsResource:
    """
    Base class of a phpws resource (route it: ``--route /web=module:MyResource``).

    Override the ``on_*`` methods; the others are the server's, usable once
    the resource is routed.
    """

    _server: PhpWsServer | None = None

    def attach(self, server: PhpWsServer) -> None:
        """Called by the ``PhpWsServer`` that serves this resource."""
        self._server = server

    # -- events (override) ---------------------------------------------------

    def on_open(self, sid: str) -> None:
        """Client ``sid`` connected and got ``ready``."""

    def on_data(self, sid: str, message: str) -> Deferred[Any] | None:
        """
        Client ``sid`` sent ``message`` (JSON text; ``get_packet`` decodes it).
        Return ``None``, or a Deferred to hold ``next`` back until it fires.
        """
        return None

    def on_close(self, sid: str) -> None:
        """Client ``sid`` is gone."""

    def on_error(self, sid: str, exc: Exception) -> None:
        """A handler raised ``exc`` for client ``sid`` (logged already)."""

    # -- what the server gives -------------------------------------------------

    @property
    def clients(self) -> PhpWsClients:
        """Every phpws client of this server's hub, by sid, in connection order."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not routed yet: route it, then use its clients")
        return self._server.clients

    def _hub(self) -> Hub | None:
        return self._server.hub if self._server is not None else None

    @staticmethod
    def get_packet(message: str | bytes) -> Any:
        """The decoded JSON of ``message`` (phpWebSocketServer's ``getPacket``)."""
        return decode_packet(message)

    def broadcast(self, sid: str | None, message: str) -> int:
        """
        Send ``message`` as it is to every browser-type client except
        ``sid`` (on every node, with a hub spanning processes); return how
        many got it here.
        """
        return self.clients.broadcast(sid, message, self._hub())

    def feedback(self, packet: dict[str, Any] | str) -> bool:
        """
        Forward ``packet`` (re-encoded) to the first client that is a browser
        whose uuid is ``packet["uuid"]`` or has ``Ident`` ``packet["ident"]``.

        Returns:
            Whether a client got it (here, or handed to another node when
            the hub spans processes).
        """
        if isinstance(packet, str):
            packet = decode_packet(packet)
        if not isinstance(packet, dict):
            return False
        return self.clients.feedback(packet, self._hub())

    def echo(self, sid: str, packet: Any) -> bool:
        """Send ``packet`` (JSON-encoded unless already text) back to client ``sid``."""
        client = self.clients.get(sid)
        if client is None:
            return False
        client.send(packet if isinstance(packet, str) else php_json_encode(packet))
        return True

    def log(self, message: str) -> None:
        """Write ``message`` to the server's log."""
        _log.info("{resource}: {message}", resource=type(self).__name__, message=message)

    def close(self, sid: str, error: str | None = None) -> bool:
        """
        Close client ``sid``'s TCP connection (with ``error``: after
        ``{"opcode":"close","error":error}``). Returns whether it was open.
        """
        client = self.clients.get(sid)
        if client is None or client.closed:
            return False
        if error is not None:
            from .packets import close_packet

            client.send(close_packet(error))
        client.drop()
        return True


class DefaultResource(PhpWsResource):
    """
    phpWebSocketServer's stock resources (``/``, ``/web``, ``/php``):

    - ``feedback``: the packet, re-encoded, to the first browser with its
      ``uuid`` or client with its ``ident``; the sender gets only ``next``;
    - ``echo``: the packet, re-encoded, back to the sender;
    - ``broadcast``: the text as sent to every browser-type client but the
      sender (never to PHP-type clients);
    - anything else (another opcode, none, a JSON array, number or
      string): nothing but ``next``.
    """

    def on_data(self, sid: str, message: str) -> None:
        packet = self.get_packet(message)
        if not isinstance(packet, dict):
            return
        opcode = packet.get("opcode")
        if opcode == "feedback":
            self.feedback(packet)
        elif opcode == "echo":
            self.echo(sid, packet)
        elif opcode == "broadcast":
            self.broadcast(sid, message)
