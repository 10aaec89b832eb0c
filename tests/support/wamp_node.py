"""
One node of a WAMP application spanning processes, for
tests/wamp/test_wamp_redis.py.

    python wamp_node.py REDIS_URL PREFIX PORT_FILE

Serves, on one ``App`` whose hub has a ``RedisBackplane``:

- ``/pubsub``: the socketo.me PubSub example (``examples/pubsub.py``), as
  a user would route it: ``app.route("/pubsub", BasicPubSub())``;
- ``/wamp``: ``Pusher``, ``WampEcho`` (publishes broadcast with
  exclude/eligible, calls answered) plus a call to ``PUSH_URI`` with
  ``[topic, event]`` that broadcasts from the server, as the Push
  tutorial does, whether or not this node has subscribers;
- ``/other``: another ``WampEcho`` with ``channel_prefix="other:"``,
  whose topics must not meet ``/wamp``'s.

The port goes to PORT_FILE once both Redis connections are usable.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.internet import reactor, task

from examples.pubsub import BasicPubSub
from ratchetpy import WsServer
from ratchetpy.app import App
from ratchetpy.hub.redis_backplane import RedisBackplane
from ratchetpy.wamp import WampServer
from tests.support.wamp import WampEcho

PUSH_URI = "http://example.com/test#push"


class Pusher(WampEcho):
    """``WampEcho`` plus a server-side broadcast (``PUSH_URI``)."""

    server: WampServer

    def on_call(self, conn: Any, id: Any, topic: Any, params: Any) -> None:
        if str(topic) == PUSH_URI:
            uri, event = params
            self.server.topic_manager.get_topic(uri).broadcast(event)
            conn.call_result(id, len(self.server.topic_manager.get_topic(uri)))
            return
        super().on_call(conn, id, topic, params)


def main() -> None:
    url, prefix, port_file = sys.argv[1:4]
    app = App("*", 0, reactor=reactor, shutdown_timeout=2)
    app.route("/pubsub", BasicPubSub(), ["*"])
    pusher = Pusher()
    pusher.server = WampServer(pusher)
    app.route("/wamp", pusher.server, ["*"])
    app.route("/other", WsServer(WampServer(WampEcho(), channel_prefix="other:")), ["*"])
    separator = "&" if "?" in url else "?"
    backplane = RedisBackplane(app.hub, f"{url}{separator}prefix={prefix}", reactor)

    def ready() -> None:
        if not (backplane.client.connected and backplane.subscriber.connected):
            return
        poll.stop()
        port = app.servers[0].port.getHost().port
        with open(port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(port_file + ".tmp", port_file)

    poll = task.LoopingCall(ready)
    poll.clock = reactor

    def listening() -> None:
        backplane.startService()
        poll.start(0.05)

    reactor.callWhenRunning(listening)
    reactor.addSystemEventTrigger("before", "shutdown", backplane.stopService)
    app.run()


if __name__ == "__main__":
    main()
