"""
Echo and broadcast servers for the benchmarks and the Autobahn TestSuite run.

    python bench/servers.py KIND [--port N] [--no-fastpath] [--compression]
        [--max-message-size BYTES] [--metrics]

KIND is ``ratchetpy`` (IoServer/HttpServer/WsServer + an echo component),
``autobahn`` (stock ``autobahn.twisted`` WebSocketServerProtocol echo),
``websockets`` (the ``websockets`` library's asyncio server) or ``picows``
(picows' core asyncio API: a ``WSListener`` on ``ws_create_server``). Every
server echoes on any path, and on ``/broadcast`` a binary message is sent to
every connection open on ``/broadcast`` instead. It prints ``READY <port>``
once listening. With ``--metrics`` (ratchetpy only) the server also serves
Prometheus metrics (``ratchetpy.hub.metrics``: its hub's counters plus the
process metrics) on a second loopback port, in the same process and
reactor, and prints ``READY <port> METRICS <metrics port>``. Twisted servers use the default (epoll) reactor; the asyncio
servers (websockets, picows) use plain ``asyncio.run`` with the default
selector loop, no uvloop: picows' documented examples use plain
``asyncio.run`` and uvloop is not one of its dependencies. picows does use
``aiofastnet`` (its dependency) for the TCP transport, which is its default
when installed.

The ``ratchetpy`` imported is whichever is first on ``PYTHONPATH`` (``run.py``
sets it to the tree under test, or to a ``--base`` checkout); with no
``PYTHONPATH`` this file's own repository is put first.
"""

from __future__ import annotations

import argparse
import os
import sys

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def ratchetpy_server(args: argparse.Namespace) -> None:
    from twisted.internet import reactor

    from ratchetpy import HttpServer, IoServer, WsServer
    from ratchetpy.websocket import broadcast

    class Echo:
        def __init__(self) -> None:
            self.subscribers: set = set()

        def on_open(self, conn):
            if conn.http_request.path == "/broadcast":
                self.subscribers.add(conn)

        def on_message(self, conn, msg):
            if conn.http_request.path == "/broadcast":
                broadcast(self.subscribers, msg)
            else:
                conn.send(msg)

        def on_close(self, conn):
            self.subscribers.discard(conn)

        def on_error(self, conn, exc):
            conn.close(1011)

    ws = WsServer(
        Echo(),
        log_connections=False,
        fast_path=not args.no_fastpath,
        max_message_size=args.max_message_size or None,
        compression="deflate" if args.compression else None,
    )
    server = IoServer(HttpServer(ws), f"tcp:{args.port}:interface=127.0.0.1:backlog=4096", reactor)
    metrics = None
    if args.metrics:
        from ratchetpy.hub.metrics import metrics_registry, metrics_server

        registry = metrics_registry(ws.hub.counters, ws.hub)
        metrics = metrics_server(registry, "tcp:0:interface=127.0.0.1", reactor)

    def ready(port):
        line = f"READY {port.getHost().port}"
        if metrics is not None:
            line += f" METRICS {metrics.port.getHost().port}"
        print(line, flush=True)

    if metrics is not None:
        metrics.listen().addCallback(lambda _: server.listen()).addCallback(ready)
    else:
        server.listen().addCallback(ready)
    reactor.run()


def autobahn_server(args: argparse.Namespace) -> None:
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from twisted.internet import reactor

    subscribers: set = set()

    class Echo(WebSocketServerProtocol):
        def onOpen(self):
            self.is_sub = self.http_request_path == "/broadcast"
            if self.is_sub:
                subscribers.add(self)

        def onMessage(self, payload, isBinary):
            if self.is_sub:
                prepared = self.factory.prepareMessage(payload, isBinary)
                for p in subscribers:
                    p.sendPreparedMessage(prepared)
            else:
                self.sendMessage(payload, isBinary)

        def onClose(self, wasClean, code, reason):
            subscribers.discard(self)

    factory = WebSocketServerFactory()
    factory.protocol = Echo
    factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
    port = reactor.listenTCP(args.port, factory, backlog=4096, interface="127.0.0.1")
    print(f"READY {port.getHost().port}", flush=True)
    reactor.run()


def websockets_server(args: argparse.Namespace) -> None:
    import asyncio

    from websockets.asyncio.server import broadcast as ws_broadcast
    from websockets.asyncio.server import serve

    subscribers: set = set()

    from websockets.exceptions import ConnectionClosed

    async def handler(ws):
        try:
            if ws.request.path == "/broadcast":
                subscribers.add(ws)
                try:
                    async for msg in ws:
                        ws_broadcast(subscribers, msg)
                finally:
                    subscribers.discard(ws)
            else:
                async for msg in ws:
                    await ws.send(msg)
        except ConnectionClosed:
            pass

    async def main():
        async with serve(
            handler, "127.0.0.1", args.port, compression=None, max_size=None, backlog=4096
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print(f"READY {port}", flush=True)
            await asyncio.Future()

    asyncio.run(main())


def picows_server(args: argparse.Namespace) -> None:
    import asyncio

    from picows import WSCloseCode, WSListener, WSMsgType, ws_create_server

    CONT, TEXT, CLOSE = WSMsgType.CONTINUATION, WSMsgType.TEXT, WSMsgType.CLOSE
    DATA = (WSMsgType.TEXT, WSMsgType.BINARY)
    subscribers: set = set()

    class Echo(WSListener):
        # The core API hands over frames: reassemble fragmented messages and,
        # like every other server here, check that text is UTF-8 (the core API
        # does not; RFC 6455 requires it, 1007 otherwise).

        def __init__(self, is_sub: bool) -> None:
            self.is_sub = is_sub
            self.msg_type = None
            self.parts: bytearray | None = None

        def on_ws_connected(self, transport):
            if self.is_sub:
                subscribers.add(transport)

        def on_ws_disconnected(self, transport):
            subscribers.discard(transport)

        def on_ws_frame(self, transport, frame):
            msg_type = frame.msg_type
            if msg_type in DATA and frame.fin and self.parts is None:
                payload = frame.get_payload_as_memoryview()
            elif msg_type in DATA and self.parts is None:
                self.msg_type = msg_type
                self.parts = bytearray(frame.get_payload_as_memoryview())
                return
            elif msg_type == CONT and self.parts is not None:
                self.parts += frame.get_payload_as_memoryview()
                if not frame.fin:
                    return
                msg_type, payload, self.parts = self.msg_type, self.parts, None
            elif msg_type == CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
                return
            elif msg_type in DATA or msg_type == CONT:
                transport.send_close(WSCloseCode.PROTOCOL_ERROR)
                transport.disconnect()
                return
            else:
                return  # ping/pong: auto-pong is on
            if msg_type == TEXT:
                try:
                    str(payload, "utf-8")
                except UnicodeDecodeError:
                    transport.send_close(WSCloseCode.INVALID_TEXT)
                    transport.disconnect()
                    return
            if self.is_sub:
                for t in subscribers:
                    t.send(msg_type, payload)
            else:
                transport.send(msg_type, payload)

    def factory(request):
        return Echo(request.path == b"/broadcast")

    async def main():
        server = await ws_create_server(
            factory,
            "127.0.0.1",
            args.port,
            max_frame_size=args.max_message_size or 2**62,
            backlog=4096,
        )
        print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("ratchetpy", "autobahn", "websockets", "picows"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-fastpath", action="store_true")
    parser.add_argument("--compression", action="store_true")
    parser.add_argument("--max-message-size", type=int, default=0, help="0: unlimited")
    parser.add_argument("--metrics", action="store_true", help="ratchetpy: serve metrics on a second port")
    args = parser.parse_args()
    if args.metrics and args.kind != "ratchetpy":
        parser.error("--metrics is for the ratchetpy server only")
    {
        "ratchetpy": ratchetpy_server,
        "autobahn": autobahn_server,
        "websockets": websockets_server,
        "picows": picows_server,
    }[args.kind](args)


if __name__ == "__main__":
    main()
