"""
One node of a hub spanning processes, for tests/hub/test_redis_backplane.py.

    python backplane_node.py REDIS_URL PREFIX PORT_FILE

Serves ``/tell`` (``tests.support.push_targets.IdFirst``: the id first;
``?user=`` binds, ``?room=`` joins; channels ``hist:*`` keep history) and
the built-in chat at ``/chat`` (and with history, rooms ``hchat:*``, at ``/hchat``),
the publish API at ``/push`` (key ``KEY``), on a free port written to
PORT_FILE once listening. With ``RATCHETPY_TEST_PEAK_FILE`` set, the
Redis client's peak pending count goes to that file (``watch_pending``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet import reactor, task

from ratchetpy.app import App
from ratchetpy.builtins import Chat
from ratchetpy.hub.redis_backplane import RedisBackplane
from tests.support.push_targets import IdFirst

KEY = "k" * 32


def watch_pending(backplane: RedisBackplane, path: str) -> None:
    """
    Record the most commands ever waiting on the backplane's Redis client
    (checked after every command sent) and the answers still awaited from
    other nodes, in ``path`` (JSON, rewritten every 0.1 s).
    """
    client = backplane.client
    send = client._send
    seen = {"peak_pending": 0}

    def counted_send(args: Any, timeout: Any) -> Any:
        sent = send(args, timeout)
        seen["peak_pending"] = max(seen["peak_pending"], client.pending)
        return sent

    client._send = counted_send  # type: ignore[method-assign]

    def write() -> None:
        state = {
            **seen,
            "max_pending": client.config.max_pending,
            "pending": client.pending,
            "requests": len(backplane.answers),
        }
        with open(path + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace(path + ".tmp", path)

    task.LoopingCall(write).start(0.1)


def main() -> None:
    url, prefix, port_file = sys.argv[1:4]
    app = App("*", 0, reactor=reactor, shutdown_timeout=2)
    app.route("/tell", IdFirst(), ["*"], hub=True)
    app.route("/chat", Chat(), ["*"])
    app.route("/hchat", Chat(history=50, channel_prefix="hchat:"), ["*"])
    app.hub.enable_history("hist:*", size=1000, ttl=60)
    app.push_api("/push", KEY)
    separator = "&" if "?" in url else "?"
    backplane = RedisBackplane(
        app.hub, f"{url}{separator}prefix={prefix}", reactor, presence_ttl=3, ack_timeout=2
    )

    peak_file = os.environ.get("RATCHETPY_TEST_PEAK_FILE")
    if peak_file:
        watch_pending(backplane, peak_file)

    def listening() -> None:
        backplane.startService()
        port = app.servers[0].port.getHost().port
        with open(port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(port_file + ".tmp", port_file)

    reactor.callWhenRunning(listening)
    reactor.addSystemEventTrigger("before", "shutdown", backplane.stopService)
    app.run()


if __name__ == "__main__":
    main()
