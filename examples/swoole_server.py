"""
The Swoole WebSocket server of the PHP WebSocket development guide, line by
line (the PHP is beside it in docs/porting-swoole.md).

    python examples/swoole_server.py [port [host]]      # default 0.0.0.0:9501
    twistd -n ratchetpy --route /=examples.swoole_server:ws_server

A client gets "welcome to the websocket server!" on connecting and
"hello, <message> !" for each message; the server prints a line on open,
on each message and on close. ``request.fd`` and ``frame.fd`` are
ratchetpy's connection ids: strings, where Swoole's are ints.
"""

import sys

from ratchetpy.swoole import Server

# Create the WebSocket server object, listening on 0.0.0.0:9501
ws_server = Server("0.0.0.0", 9501)


@ws_server.on("open")
def on_open(ws, request):
    print("connection open: " + request.fd + " ")
    ws.push(request.fd, "welcome to the websocket server!")


@ws_server.on("message")
def on_message(ws, frame):
    print("received message: " + frame.data + " ")
    # process the data
    message = "hello, " + frame.data + " !"
    # send the data
    ws.push(frame.fd, message)


@ws_server.on("close")
def on_close(ws, fd):
    print("connection close: " + fd + " ")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        ws_server.port = int(sys.argv[1])
    if len(sys.argv) > 2:
        ws_server.host = sys.argv[2]
    # Start the WebSocket server
    ws_server.start()
