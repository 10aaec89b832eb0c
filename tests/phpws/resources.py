"""Resource classes routed by the phpws tests (``--route /broken=tests.phpws.resources:Broken``)."""

from __future__ import annotations

from ratchetpy.phpws import DefaultResource


class Broken(DefaultResource):
    """The stock opcodes, except that ``{"opcode":"fail"}`` raises."""

    def on_data(self, sid: str, message: str) -> None:
        if self.get_packet(message) == {"opcode": "fail"}:
            raise RuntimeError("this resource fails on purpose")
        super().on_data(sid, message)
