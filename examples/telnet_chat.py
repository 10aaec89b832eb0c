"""
The tutorial's first step: the same Chat over raw TCP, no HTTP, no WebSocket.

    python examples/telnet_chat.py [port]

then ``telnet localhost 8080`` from two terminals.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chat import Chat

from ratchetpy import IoServer

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = IoServer.factory(Chat(), port)
    server.run()
