"""
Ratchet's README example, ported: the App facade with two routes.

    python examples/app.py [port]

then connect to ws://localhost:8080/chat or ws://localhost:8080/echo (the
Host must be ``localhost``: App answers 404 to other host names, as Ratchet).

PHP::

    $app = new Ratchet\\App('localhost', 8080);
    $app->route('/chat', new MyChat, array('*'));
    $app->route('/echo', new Ratchet\\Server\\EchoServer, array('*'));
    $app->run();
"""

import sys

from chat import Chat

from ratchetpy import App, EchoServer

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    app = App("localhost", port)
    app.route("/chat", Chat(), ["*"])
    app.route("/echo", EchoServer(), ["*"])
    app.run()
