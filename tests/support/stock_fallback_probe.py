"""
Run as a script by tests/websocket/test_stock_fallback.py, in a process of its own.

It simulates an Autobahn release that renamed the private names the fast
path and the memory trimming use, *before* ratchetpy is imported: each name
moves to ``_renamed_<name>``, and only Autobahn's own code can still reach
it by the old name. It also watches every read, by ratchetpy code, of a
private Autobahn attribute. Then a real server echoes and closes with the
``websockets`` client over loopback. Prints one JSON line: what happened.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import autobahn.twisted.websocket as twisted_ws
import autobahn.websocket.protocol as ws_protocol

RENAMED = (
    "_dataReceived",
    "consumeData",
    "_cancelAutoPingTimeoutCall",
    "_onOpen",
    "_trigger",
    "_onMessageFrame",
    "CONFIG_ATTRS_COMMON",
    "CONFIG_ATTRS_SERVER",
)

Base = ws_protocol.WebSocketProtocol
for cls in twisted_ws.WebSocketServerProtocol.__mro__:
    for name in RENAMED:
        if name in vars(cls):
            setattr(cls, "_renamed_" + name, vars(cls)[name])
            delattr(cls, name)


def _caller_module() -> str:
    return str(sys._getframe(2).f_globals.get("__name__", ""))


def _getattr(self: Any, name: str) -> Any:
    if name in RENAMED and _caller_module().startswith(("autobahn", "txaio")):
        return getattr(self, "_renamed_" + name)
    raise AttributeError(name)


Base.__getattr__ = _getattr  # type: ignore[attr-defined]

# Private names of Autobahn's protocol: underscore names its code uses on self.
_source = "".join(
    Path(module.__file__).read_text() for module in (ws_protocol, twisted_ws)  # type: ignore[arg-type]
)
AUTOBAHN_PRIVATE = set(re.findall(r"self\.(_[A-Za-z]\w*)", _source)) | set(RENAMED) | {
    "data",
    "current_frame",
    "inside_message",
    "send_queue",
    "triggered",
    "trafficStats",
    "message_data",
}
violations: list[str] = []
_original_getattribute = object.__getattribute__


def _watching_getattribute(self: Any, name: str) -> Any:
    if name in AUTOBAHN_PRIVATE and not name.startswith("__"):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if str(caller).startswith("ratchetpy"):
            violations.append(f"{caller} read {name}")
    return _original_getattribute(self, name)


Base.__getattribute__ = _watching_getattribute  # type: ignore[method-assign]

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")

    from twisted.internet import reactor
    from websockets.sync.client import connect

    from ratchetpy import HttpServer, IoServer, WsServer
    from ratchetpy.testing import RecordingComponent
    from ratchetpy.websocket._fastpath import FastPathMixin
    from ratchetpy.websocket.broadcast import broadcast
    from ratchetpy.websocket.connection import protocol_of

    class Echo(RecordingComponent):
        def on_message(self, conn: Any, msg: Any) -> None:
            if msg == "to all":
                broadcast(ws.connections, msg)  # the prepared-frame path
            else:
                super().on_message(conn, msg)

    component = Echo(echo=True)
    ws = WsServer(component, log_connections=False)
    server = IoServer(HttpServer(ws), "tcp:0:interface=127.0.0.1", reactor=reactor)
    result: dict[str, Any] = {}

    def client(port: int) -> None:
        try:
            with connect(f"ws://127.0.0.1:{port}/", open_timeout=10) as conn:
                conn.send("hello")
                result["text"] = conn.recv(timeout=10)
                conn.send("to all")
                result["broadcast"] = conn.recv(timeout=10)
                conn.send(b"\x00\x01")
                result["binary"] = list(conn.recv(timeout=10))
                conn.close(4001, "done")
                result["close"] = [conn.close_code, conn.close_reason]
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the reactor must stop
            result["client_error"] = repr(exc)
        finally:
            reactor.callFromThread(reactor.stop)

    def listening(port: Any) -> None:
        threading.Thread(target=client, args=(port.getHost().port,), daemon=True).start()

    server.listen().addCallback(listening)
    reactor.callLater(20, reactor.stop)
    reactor.run()

closes = [e[1] for e in component.events if e[0] == "close"]
protocol = protocol_of(closes[0]) if closes else None
result.update(
    warnings=[str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
    fast_class=isinstance(protocol, FastPathMixin),
    server_close=[closes[0].close_code, closes[0].close_reason] if closes else None,
    errors=[repr(e[2]) for e in component.events if e[0] == "error"],
    violations=sorted(set(violations)),
)
print(json.dumps(result))
