"""Components and scripts for tests/integration/test_graceful_stop.py (run in other processes)."""

from __future__ import annotations

import sys
from typing import Any

from ratchetpy import MessageComponentInterface

# Every name a framework layer kept on the connection before (see
# tests/test_layer_state.py), set by a component as any user might.
LAYER_NAMES = (
    "controller", "WebSocket", "WAMP", "Session", "_http", "_origin_refused",
    "_blocked", "_ws_protocol", "_wamp_connection", "_ws", "_wrapped", "_root",
)


class Misbehaving(MessageComponentInterface):
    """Overwrites every layer name, echoes, and raises in on_close and on_error."""

    def on_open(self, conn: Any) -> None:
        for name in LAYER_NAMES:
            setattr(conn, name, "mine")

    def on_message(self, conn: Any, msg: Any) -> None:
        conn.send(msg)

    def on_close(self, conn: Any) -> None:
        raise RuntimeError("on_close blew up")

    def on_error(self, conn: Any, exc: Exception) -> None:
        raise RuntimeError("on_error blew up too")


def run_app(port: int) -> None:
    """``App.run()`` with the misbehaving component on /bad, 2 s stop timeout."""
    from ratchetpy import App

    app = App("127.0.0.1", port, shutdown_timeout=2, allow_missing_origin=True)
    app.route("/bad", Misbehaving(), ["*"])
    app.run()


def run_io_server(port: int) -> None:
    """The README's Hello World stack: ``IoServer.factory(...).run()``."""
    from ratchetpy import EchoServer, HttpServer, IoServer, WsServer

    IoServer.factory(HttpServer(WsServer(EchoServer())), port, "127.0.0.1").run()


if __name__ == "__main__":
    {"app": run_app, "io": run_io_server}[sys.argv[1]](int(sys.argv[2]))
