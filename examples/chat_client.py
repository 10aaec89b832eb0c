"""
A chat client in a dozen lines: what you type goes to the chat, what the
others say is printed; it reconnects by itself if the server restarts.

    python examples/chat_client.py ws://127.0.0.1:8080/chat

(against ``python examples/chat.py 8080`` use ``ws://127.0.0.1:8080/``).
"""

import sys

from twisted.internet import reactor, stdio
from twisted.protocols.basic import LineReceiver

from ratchetpy.client import ReconnectingClient


class Chat:
    def on_open(self, conn):
        print("connected", flush=True)

    def on_message(self, conn, msg):
        print(msg, flush=True)

    def on_close(self, conn):
        print("disconnected", flush=True)

    def on_error(self, conn, exc):
        print(f"error: {exc}", flush=True)


class Keyboard(LineReceiver):
    delimiter = b"\n"

    def lineReceived(self, line):
        client.send(line.decode().rstrip("\r"))

    def connectionLost(self, reason):  # end of input: leave
        client.stopService().addBoth(lambda _: reactor.stop())


if __name__ == "__main__":
    client = ReconnectingClient(sys.argv[1], Chat(), reactor=reactor)
    client.startService()
    stdio.StandardIO(Keyboard())
    reactor.run()
