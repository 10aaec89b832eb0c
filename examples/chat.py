"""
The socketo.me Hello World chat, ported line by line, over WebSocket.

    python examples/chat.py [port]

then open ``ws://localhost:8080`` from two browser tabs (or two
``python -m websockets ws://localhost:8080`` shells) and type.
"""

import sys

from ratchetpy import HttpServer, IoServer, MessageComponentInterface, WsServer


class Chat(MessageComponentInterface):
    def __init__(self):
        self.clients = set()

    def on_open(self, conn):
        self.clients.add(conn)
        print(f"New connection! ({conn.resource_id})")

    def on_message(self, from_, msg):
        num_recv = len(self.clients) - 1
        print(
            f'Connection {from_.resource_id} sending message "{msg}" to '
            f"{num_recv} other connection{'' if num_recv == 1 else 's'}"
        )
        for client in self.clients:
            if client is not from_:
                client.send(msg)

    def on_close(self, conn):
        self.clients.discard(conn)
        print(f"Connection {conn.resource_id} has disconnected")

    def on_error(self, conn, exc):
        print(f"An error has occurred: {exc}")
        conn.close()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server = IoServer.factory(HttpServer(WsServer(Chat())), port)
    server.run()
