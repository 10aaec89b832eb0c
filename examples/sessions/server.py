"""
The socketo.me sessions tutorial, ported: the WebSocket server greets the
user logged in on the PHP site (``login.php``) by name.

    SESSION_DIR=/tmp/ratchetpy-sessions php -S localhost:8000 examples/sessions/login.php
    SESSION_DIR=/tmp/ratchetpy-sessions python examples/sessions/server.py [port]

then open http://localhost:8000/, log in, and the page's WebSocket says
"Hello <name>". The PHP original:

.. code-block:: php

    $session = new SessionProvider(new MyApp, new Handler\\MemcacheSessionHandler($memcache));
    $server = new App('localhost');
    $server->route('/sessDemo', $session);
    // MyApp::onOpen: $conn->send('Hello ' . $conn->Session->get('name'));

With memcached, as in the tutorial: ``MemcachedHandler("127.0.0.1", 11211)``
(and ``session.save_handler = memcached`` in PHP); with Redis:
``RedisHandler("redis://127.0.0.1:6379/0")``.
"""

import os
import sys
import tempfile

from ratchetpy import App, MessageComponentInterface, WsServer
from ratchetpy.session import FilesHandler, SessionProvider


class MyApp(MessageComponentInterface):
    def on_open(self, conn):
        # The session is read before on_open; it is read-only (PHP owns it).
        conn.send("Hello " + conn.session.get("name", "stranger"))

    def on_message(self, from_, msg):
        pass

    def on_close(self, conn):
        pass

    def on_error(self, conn, exc):
        conn.close()


def session_dir():
    return os.environ.get("SESSION_DIR") or os.path.join(tempfile.gettempdir(), "ratchetpy-sessions")


def build(port=8080, reactor=None, origins=("localhost",), directory=None):
    """The App: /sessDemo behind a SessionProvider reading login.php's session files."""
    app = App("*", port, reactor=reactor)
    session = SessionProvider(WsServer(MyApp()), FilesHandler(directory or session_dir()))
    app.route("/sessDemo", session, list(origins))
    return app


if __name__ == "__main__":
    build(int(sys.argv[1]) if len(sys.argv) > 1 else 8080).run()
