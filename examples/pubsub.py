"""
The socketo.me WAMP example (``BasicPubSub``), ported: every client may
subscribe to any topic and publish to it; RPC is refused.

    python examples/pubsub.py [port]

A browser client, with AutobahnJS 0.8 (WAMP v1), unchanged from PHP Ratchet:

    <script src="autobahn.min.js"></script>   <!-- AutobahnJS 0.8.x -->
    <script>
      ab.connect('ws://localhost:8080', function (session) {
          session.subscribe('kittensCategory', function (topic, event) {
              console.log('Event on ' + topic + ':', event);
          });
          session.publish('kittensCategory', {title: 'Hello'}, true);  // true: not to myself
      }, function (code, reason) { console.warn('closed', code, reason); });
    </script>
"""

import sys

from ratchetpy import HttpServer, IoServer, WsServer
from ratchetpy.wamp import WampServer, WampServerInterface


class BasicPubSub(WampServerInterface):
    def on_publish(self, conn, topic, event, exclude, eligible):
        # socketo.me calls $topic->broadcast($event), which ignores the
        # client's excludeMe/eligible (Ratchet#115); passing them honours them.
        topic.broadcast(event, exclude, eligible)

    def on_call(self, conn, id, topic, params):
        conn.call_error(id, topic, "RPC not supported on this demo")

    # No need to do anything: WampServer adds and removes subscribers to Topics for us
    def on_subscribe(self, conn, topic):
        pass

    def on_unsubscribe(self, conn, topic):
        pass

    def on_open(self, conn):
        pass

    def on_close(self, conn):
        pass

    def on_error(self, conn, exc):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = IoServer.factory(HttpServer(WsServer(WampServer(BasicPubSub()))), port)
    server.run()
