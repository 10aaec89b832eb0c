"""
An echo server: text comes back as text, binary as binary.

    python examples/echo.py [port]
"""

import sys

from ratchetpy import EchoServer, HttpServer, IoServer, WsServer

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    IoServer.factory(HttpServer(WsServer(EchoServer())), port).run()
