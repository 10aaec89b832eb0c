"""
One hub node for ``bench/scaleout.py``: an ``App`` whose route ``/sub``
joins every connection to channel ``bench`` and publishes whatever a
connection sends to that channel through the hub (``hub.publish(...,
count=False)``, as the built-in chat does), plus the publish API at
``/push``.

    python bench/scaleout_node.py PORT_FILE [--redis URL --prefix PREFIX]

With ``--redis`` the hub spans processes through a ``RedisBackplane``
(every node started with the same URL and prefix is one hub); without it
the hub is this process alone. The listening port is written to
PORT_FILE (atomically) once the App listens and, with Redis, once the
backplane has started. Logs go to stdout; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

CHANNEL = "bench"
PUSH_KEY = "bench-push-key-" + "k" * 16


class Subscriber:
    """Joins ``CHANNEL`` on open; a message from a client is published to it."""

    register_with_hub = True

    def on_open(self, conn: Any) -> None:
        conn.hub.join(conn, CHANNEL)

    def on_message(self, conn: Any, msg: Any) -> None:
        conn.hub.publish(CHANNEL, msg, count=False)

    def on_close(self, conn: Any) -> None:
        pass

    def on_error(self, conn: Any, exc: Exception) -> None:
        conn.close(1011)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port_file")
    parser.add_argument("--redis", help="redis:// URL: span processes through Redis")
    parser.add_argument("--prefix", default="ratchetpy-bench:", help="Redis key prefix")
    args = parser.parse_args()

    from twisted.internet import reactor

    from ratchetpy.app import App

    app = App("*", 0, reactor=reactor, shutdown_timeout=1, log_connections=False)
    app.route("/sub", Subscriber(), ["*"])
    app.push_api("/push", PUSH_KEY)
    backplane = None
    if args.redis:
        from ratchetpy.hub.redis_backplane import RedisBackplane

        sep = "&" if "?" in args.redis else "?"
        backplane = RedisBackplane(app.hub, f"{args.redis}{sep}prefix={args.prefix}", reactor)

    def listening() -> None:
        if backplane is not None:
            backplane.startService()
            reactor.addSystemEventTrigger("before", "shutdown", backplane.stopService)
        port = app.servers[0].port.getHost().port
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(args.port_file + ".tmp", args.port_file)

    reactor.callWhenRunning(listening)
    app.run()


if __name__ == "__main__":
    main()
