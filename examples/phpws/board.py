"""
A phpWebSocketServer-style resource class in Python: the stock opcodes
(feedback, echo, broadcast) plus ``{"opcode":"count"}``, answered with how
many browsers are connected.

    twistd -n ratchetpy --route /web=examples.phpws.board:Board --route /php=phpws
"""

from __future__ import annotations

from ratchetpy.phpws import DefaultResource


class Board(DefaultResource):
    """The stock opcodes, plus {"opcode":"count"}: how many browsers are here."""

    def on_open(self, sid: str) -> None:
        self.log(f"{sid} joined from {self.clients[sid].ip}")

    def on_data(self, sid: str, message: str) -> None:
        packet = self.get_packet(message)
        if isinstance(packet, dict) and packet.get("opcode") == "count":
            browsers = sum(1 for c in self.clients if c.client_type == "websocket")
            self.echo(sid, {"opcode": "count", "message": browsers})
            return
        super().on_data(sid, message)
