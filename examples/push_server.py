"""
The socketo.me Push tutorial's server (``Pusher`` + ``bin/push-server.php``),
ported: the website pushes each new blog entry to this process, which
broadcasts it to the WAMP clients subscribed to the entry's category.

    python examples/push_server.py [ws_port] [push_port]
    python examples/push_client.py --category kittensCategory --title "Kittens!"

Why HTTP instead of ZeroMQ: the tutorial needs the ext-zmq PHP extension and
react/zmq; in Python that would be pyzmq plus txZMQ, a C library and two
extra packages, for a one-way "here is a new entry" message. An HTTP POST
to a loopback port is something every Python web application can already
send (``urllib.request``, ``requests``, any framework), it runs in the same
Twisted reactor as the WebSocket server with ``twisted.web`` (part of
Twisted), and the answer tells the website how many subscribers got the
entry. It listens on 127.0.0.1 only: anyone who can reach it can push. For
several server processes, use a broker's pub/sub (e.g. Redis) instead.
"""

from __future__ import annotations

import json
import sys

from twisted.web.resource import Resource
from twisted.web.server import Site

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy.wamp import WampServer, WampServerInterface


class Pusher(WampServerInterface):
    def __init__(self):
        # A lookup of all the topics clients have subscribed to
        self.subscribed_topics = {}

    def on_subscribe(self, conn, topic):
        # ratchetpy keeps one Topic object per URI while it is referenced,
        # so (unlike PHP) this entry never goes stale.
        self.subscribed_topics[topic.id] = topic

    def on_blog_entry(self, entry):
        """
        ``entry`` is the JSON'ified string the website pushed. Returns how
        many subscribers the entry was sent to.
        """
        entry_data = json.loads(entry)
        # If the lookup topic object isn't set there is no one to publish to
        topic = self.subscribed_topics.get(entry_data["category"])
        if topic is None:
            return 0
        topic.broadcast(entry_data)
        return len(topic)

    def on_unsubscribe(self, conn, topic):
        pass

    def on_open(self, conn):
        pass

    def on_close(self, conn):
        pass

    def on_call(self, conn, id, topic, params):
        # In this application if clients send data it's because the user hacked around in console
        conn.call_error(id, topic, "You are not allowed to make calls").close()

    def on_publish(self, conn, topic, event, exclude, eligible):
        # In this application if clients send data it's because the user hacked around in console
        conn.close()

    def on_error(self, conn, exc):
        pass


class BlogEntryEndpoint(Resource):
    """``POST /`` with a JSON blog entry (needs ``category``): replaces the ZeroMQ PULL socket."""

    isLeaf = True

    def __init__(self, pusher):
        super().__init__()
        self.pusher = pusher

    def render_POST(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        body = request.content.read()
        try:
            entry = json.loads(body)
            if not isinstance(entry, dict) or not isinstance(entry.get("category"), str):
                raise ValueError("the entry must be a JSON object with a string 'category'")
        except ValueError as exc:
            request.setResponseCode(400)
            return json.dumps({"error": str(exc)}).encode()
        delivered = self.pusher.on_blog_entry(body)
        return json.dumps({"delivered": delivered}).encode()


def listen_for_entries(pusher, reactor, port=5555, interface="127.0.0.1"):
    """Listen for the website's pushes; returns the listening port."""
    return reactor.listenTCP(port, Site(BlogEntryEndpoint(pusher)), interface=interface)


if __name__ == "__main__":
    from twisted.internet import reactor

    ws_port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    push_port = int(sys.argv[2]) if len(sys.argv) > 2 else 5555
    pusher = Pusher()
    # Listen for the web server to make a push ("ZeroMQ" in the PHP tutorial)
    listen_for_entries(pusher, reactor, push_port)
    # Set up our WebSocket server for clients wanting real-time updates
    web_server = IoServer.factory(HttpServer(WsServer(WampServer(pusher))), ws_port, "0.0.0.0")
    web_server.run()
