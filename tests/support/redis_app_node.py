"""
An ``App`` on a Redis hub (``app.use_redis``), for tests/test_app_redis.py.

    python redis_app_node.py REDIS_URL PORT_FILE

Serves the built-in chat at ``/chat`` and ``/room`` (``Farewell``: joins
the channel ``room``, relays each message to it, and publishes ``bye ID``
to it from ``on_close``, to show that what a component publishes during a
graceful stop still reaches the other processes), on a free port written
to PORT_FILE once listening. SIGTERM stops it gracefully.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.internet import reactor

from ratchetpy import MessageComponentInterface
from ratchetpy.app import App
from ratchetpy.builtins import Chat


class Farewell(MessageComponentInterface):
    register_with_hub = True

    def on_open(self, conn: Any) -> None:
        conn.hub.join(conn, "room")
        conn.send(conn.id)

    def on_message(self, conn: Any, msg: Any) -> Any:
        return conn.hub.publish("room", msg, exclude=[conn.id], count=False)

    def on_close(self, conn: Any) -> None:
        conn.hub.publish("room", f"bye {conn.id}", exclude=[conn.id], count=False)

    def on_error(self, conn: Any, exc: Exception) -> None:
        conn.close(1011)


def main() -> None:
    url, port_file = sys.argv[1:3]
    app = App("*", 0, reactor=reactor, shutdown_timeout=3)
    app.route("/chat", Chat(), ["*"])
    app.route("/room", Farewell(), ["*"])
    app.use_redis(url, presence_ttl=3, ack_timeout=2)

    def listening() -> None:
        port = app.servers[0].port.getHost().port
        with open(port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(port_file + ".tmp", port_file)

    reactor.callWhenRunning(listening)
    app.run()


if __name__ == "__main__":
    main()
