"""The Swoole-style Server in memory: handlers, push, exist, disconnect, client info, stats, lifecycle."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from websockets.frames import Close, Frame, Opcode

from ratchetpy import App, ConfigurationError, EchoServer, HubError
from ratchetpy.swoole import (
    WEBSOCKET_OPCODE_BINARY,
    WEBSOCKET_OPCODE_CLOSE,
    WEBSOCKET_OPCODE_PING,
    WEBSOCKET_OPCODE_TEXT,
    WEBSOCKET_STATUS_ACTIVE,
    Server,
    SwooleError,
)
from ratchetpy.swoole import Frame as SwooleFrame
from ratchetpy.swoole.tasks import _run_in_thread
from tests.support.memory import MemoryConnection, WsPeer, binary_event, text_event
from tests.support.swoole import http_response, memory_server, only_fd, peer, raw
from tests.support.wire import handshake_request


def close_of(events):
    """The (code, reason) of the close frame among ``events``."""
    frames = [e for e in events if isinstance(e, Frame) and e.opcode is Opcode.CLOSE]
    assert frames, events
    close = Close.parse(bytes(frames[0].data))
    return close.code, close.reason


def test_open_gets_a_swoole_request_and_push_reaches_the_client():
    """open(server, request): request.fd is the connection's id; a push from open arrives after the 101."""
    server = memory_server()
    seen = []

    @server.on("open")
    def on_open(ws, request):
        seen.append((ws, request))
        ws.push(request.fd, "welcome to the websocket server!")

    client = peer(server, path="/room/7?user=ann")
    client.client.send_request(client.client.connect())
    events = client.pump()
    assert events[0].status_code == 101
    assert events[1:] == [text_event("welcome to the websocket server!")]
    ((ws, request),) = seen
    assert ws is server
    assert request.fd == only_fd(server) and isinstance(request.fd, str)
    assert request.get == {"user": "ann"}
    assert request.header["host"] == "localhost" and request.header["upgrade"] == "websocket"
    assert request.server["request_uri"] == "/room/7"
    assert request.server["query_string"] == "user=ann"
    assert request.server["remote_addr"] == "127.0.0.1" and request.server["remote_port"] == 40000
    assert request.get_method() == "GET" and request.raw_content() == b""


def test_message_gets_frames_with_swoole_opcodes():
    """message(server, frame): text is str with opcode 1, binary is bytes with opcode 2."""
    server = memory_server()
    frames = []

    @server.on("message")
    def on_message(ws, frame):
        frames.append(frame)
        ws.push(frame.fd, "hello, " + frame.data + " !" if isinstance(frame.data, str) else frame.data)

    client = peer(server).open()
    assert client.send_text("world") == [text_event("hello, world !")]
    assert client.send_binary(b"\x00\xff") == [binary_event(b"\x00\xff")]
    fd = only_fd(server)
    assert frames == [
        SwooleFrame(fd, "world", WEBSOCKET_OPCODE_TEXT, True),
        SwooleFrame(fd, b"\x00\xff", WEBSOCKET_OPCODE_BINARY, True),
    ]


def test_close_gets_the_fd_and_the_connection_is_gone():
    """close(server, fd) runs once the client leaves; the id then no longer exists."""
    server = memory_server()
    closed = []
    server.on("close", lambda ws, fd: closed.append((fd, ws.exist(fd))))
    client = peer(server).open()
    fd = only_fd(server)
    client.client.send_close(1000, "bye")
    client.pump()
    assert closed == [(fd, True)]  # still reachable inside the handler, as in Swoole
    assert not server.exist(fd) and server.connections == []
    assert server.push(fd, "late") is False


def test_on_as_decorator_and_call_case_insensitive():
    """on('Message', fn) and @on('message') both register; names ignore case (Swoole's 'workerStart')."""
    server = Server(reactor=object())

    def direct(ws, frame):
        pass

    assert server.on("Message", direct) is True
    decorated = server.on("OPEN")(direct)
    assert decorated is direct
    assert server._handler("message") is direct and server._handler("open") is direct
    server.on("workerStart", direct)
    assert server._handler("workerstart") is direct


@pytest.mark.parametrize(
    ("event", "words"),
    [("receive", "IoServer"), ("handshake", "'open'"), ("nope", "unknown event"), (3, "unknown event")],
)
def test_unknown_or_unsupported_events_are_refused(event, words):
    """An event ratchetpy does not serve is refused with what to use instead."""
    with pytest.raises(ConfigurationError, match=words):
        Server(reactor=object()).on(event, print)


def test_handler_must_be_callable():
    with pytest.raises(ConfigurationError, match="must be callable"):
        Server(reactor=object()).on("open", "not a function")


def test_a_message_handler_is_required():
    """Like Swoole, the server will not start without a message handler."""
    server = Server(reactor=object())
    with pytest.raises(ConfigurationError, match="needs a 'message' handler"):
        server.app  # noqa: B018 - building the App is what is refused


def test_push_before_start_and_to_unknown_ids_is_false():
    """push/exist/is_established/disconnect answer False for ids they do not know, never raise."""
    server = memory_server()
    assert server.push("x", "hi") is False and server.connections == []
    peer(server).open()
    for fd in ("nope", "", 42):
        assert server.push(fd, "hi") is False
        assert server.exist(fd) is False and server.is_established(fd) is False
        assert server.disconnect(fd) is False
        assert server.get_client_info(fd) is None


def test_push_opcodes_convert_and_refuse():
    """opcode TEXT/BINARY convert the data; a ping is a ping; other opcodes and types raise SwooleError."""
    server = memory_server()
    client = peer(server).open()
    fd = only_fd(server)
    assert server.push(fd, "é".encode(), WEBSOCKET_OPCODE_TEXT)
    assert server.push(fd, "ab", WEBSOCKET_OPCODE_BINARY)
    assert server.push(fd, SwooleFrame(fd, b"frame", WEBSOCKET_OPCODE_BINARY))
    assert server.push(fd, b"beat", WEBSOCKET_OPCODE_PING)
    events = client.pump()
    assert events[:3] == [text_event("é"), binary_event(b"ab"), binary_event(b"frame")]
    assert events[3].opcode is Opcode.PING and bytes(events[3].data) == b"beat"
    with pytest.raises(SwooleError, match="not UTF-8"):
        server.push(fd, b"\xff", WEBSOCKET_OPCODE_TEXT)
    with pytest.raises(SwooleError, match="disconnect"):
        server.push(fd, "x", WEBSOCKET_OPCODE_CLOSE)
    with pytest.raises(SwooleError, match="str or bytes"):
        server.push(fd, 42)
    with pytest.raises(SwooleError, match="at most 125 bytes"):
        server.push(fd, b"x" * 126, WEBSOCKET_OPCODE_PING)
    assert client.pump() == []


def test_exist_and_is_established_differ_while_closing():
    """After disconnect the id still exists until the close completes, but is no longer established."""
    server = memory_server()
    client = peer(server).open()
    fd = only_fd(server)
    assert server.exist(fd) and server.is_established(fd)
    assert server.disconnect(fd, 4000, "kicked") is True
    assert server.exist(fd) and not server.is_established(fd)
    assert server.disconnect(fd) is False  # already closing
    assert server.push(fd, "x") is False
    assert close_of(client.pump()) == (4000, "kicked")
    client.pump()  # the client's close reply
    assert not server.exist(fd)


def test_disconnect_refuses_a_code_a_server_may_not_send():
    server = memory_server()
    peer(server).open()
    with pytest.raises(HubError, match="invalid close code"):
        server.disconnect(only_fd(server), 1005)


def test_close_with_reset_drops_the_connection():
    """close(fd, reset=True) aborts the TCP connection; close(fd) runs the closing handshake."""
    server = memory_server()
    a = peer(server).open()
    fd_a = only_fd(server)
    b = peer(server).open()
    fd_b = next(fd for fd in server.connections if fd != fd_a)
    assert server.close(fd_a, reset=True) is True
    assert a.memory.transport.aborted
    assert server.close(fd_b) is True
    assert close_of(b.pump()) == (1000, "")
    assert server.close("unknown") is False


def test_connections_lists_every_open_fd():
    server = memory_server()
    peers = [peer(server).open() for _ in range(3)]
    fds = server.connections
    assert len(set(fds)) == 3
    for fd in fds:
        assert server.push(fd, "to " + fd)
    received = sorted(p.pump()[0].data.decode() for p in peers)
    assert received == sorted("to " + fd for fd in fds)


def test_get_client_info_has_swoole_keys_and_the_hubs():
    server = memory_server()
    client = peer(server, path="/live").open()
    client.send_text("one")
    fd = only_fd(server)
    assert server.bind(fd, 7) is True
    info = server.get_client_info(fd)
    assert info["remote_ip"] == "127.0.0.1" and info["remote_port"] == 40000
    assert info["websocket_status"] == WEBSOCKET_STATUS_ACTIVE
    assert info["uid"] == "7" and info["user"] == "7"
    assert info["id"] == fd and info["route"] == "/live"
    assert info["messages_in"] == 1 and info["messages_out"] == 1
    assert isinstance(info["connect_time"], int) and info["last_time"] >= info["connect_time"]
    assert server.bind("unknown", 7) is False


def test_stats_counts_connections_closes_and_requests():
    server = memory_server()
    server.on("request", lambda request, response: response.end("ok"))
    a = peer(server).open()
    peer(server).open()
    a.client.send_close(1000)
    a.pump()
    raw(server, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    stats = server.stats()
    assert stats["connection_num"] == 1
    assert stats["accept_count"] == 2 and stats["close_count"] == 1
    assert stats["request_count"] == 1
    assert stats["closed"] == {"1000": 1} and stats["registered"] == 1
    assert stats["start_time"] > 0 and stats["tasking_num"] == 0


def test_a_raising_handler_is_logged_and_the_connection_stays(logged):
    """An exception in message is logged with the fd; the next message is handled (Swoole would lose the worker)."""
    server = memory_server()
    calls = []

    @server.on("message")
    def on_message(ws, frame):
        calls.append(frame.data)
        if frame.data == "boom":
            raise RuntimeError("bad input")
        ws.push(frame.fd, "ok")

    client = peer(server).open()
    assert client.send_text("boom") == []
    assert client.send_text("fine") == [text_event("ok")]
    assert calls == ["boom", "fine"]
    failures = [e for e in logged if e.get("log_failure") and e.get("fd") == only_fd(server)]
    assert failures and isinstance(failures[0]["log_failure"].value, RuntimeError)


def test_async_handlers_keep_the_order_per_connection():
    """An async message handler finishes before the next message of that connection is handled."""
    server = memory_server()
    pending: list[Deferred] = []
    order = []

    @server.on("message")
    async def on_message(ws, frame):
        order.append(("start", frame.data))
        if frame.data == "slow":
            d = Deferred()
            pending.append(d)
            await d
        order.append(("end", frame.data))
        ws.push(frame.fd, frame.data)

    client = peer(server).open()
    client.send_text("slow")
    assert client.send_text("fast") == []
    pending[0].callback(None)
    assert client.pump() == [text_event("slow"), text_event("fast")]
    assert order == [("start", "slow"), ("end", "slow"), ("start", "fast"), ("end", "fast")]


def test_server_calls_from_a_task_thread_are_refused():
    """push() from task code (the thread flag set) raises SwooleError naming the fix."""
    server = memory_server()
    peer(server).open()
    with pytest.raises(SwooleError, match="task\\(\\) thread"):
        _run_in_thread(server.push, (only_fd(server), "x"), {})
    assert server.push(only_fd(server), "x")  # the flag is cleared afterwards


def test_task_refuses_async_functions_and_data_without_handler():
    server = memory_server()

    async def work():
        pass

    with pytest.raises(ConfigurationError, match="async"):
        server.task(work)
    with pytest.raises(ConfigurationError, match="'task' handler"):
        server.task({"job": 1})


def test_set_after_start_is_refused():
    server = memory_server()
    server.app  # noqa: B018
    with pytest.raises(ConfigurationError, match="before start"):
        server.set({"package_max_length": 10})


def test_served_once_only():
    server = memory_server()
    app = server.app
    with pytest.raises(ConfigurationError, match="already runs"):
        server.attach(app)


def test_lifecycle_handlers_and_shutdown():
    """start/workerStart run when the reactor runs; shutdown clears timers and calls the shutdown handler."""
    server = memory_server()
    seen = []
    server.on("start", lambda s: seen.append("start"))
    server.on("workerStart", lambda s, worker_id: seen.append(("worker", worker_id)))
    server.on("shutdown", lambda s: seen.append("shutdown"))
    server.app  # noqa: B018
    server.reactor.run()  # MemoryReactor: runs the hooks, then stops
    assert seen == ["start", ("worker", 0)]
    server.tick(10, lambda: None)
    server.after(10, lambda: None)
    server.shutdown()
    server.shutdown()
    assert seen == ["start", ("worker", 0), "shutdown"]
    assert server.stats()["timer_num"] == 0


def test_attached_to_an_app_beside_other_routes():
    """attach(app, '/ws'): the Swoole server answers /ws and below; exact routes keep theirs; one hub."""
    from twisted.internet.testing import MemoryReactorClock

    reactor = MemoryReactorClock()
    app = App("*", 0, reactor=reactor, log_connections=False)
    app.route("/echo", EchoServer(), ["*"], hub=True)
    server = Server(reactor=reactor)
    server.on("message", lambda s, frame: s.push(frame.fd, "swoole:" + frame.data))
    server.attach(app, "/ws")
    assert server.app is app and server.hub is app.hub

    def client(path):
        return WsPeer(stack=app.blacklist, server=app.servers[0], path=path).open()

    assert client("/ws/deep/path").send_text("a") == [text_event("swoole:a")]
    assert client("/echo").send_text("b") == [text_event("b")]
    assert len(server.connections) == 2  # the echo route registers with the same hub
    refused = MemoryConnection(None, server=app.servers[0])
    refused.feed(handshake_request("/wsx"), one_byte_at_a_time=False)
    assert refused.take().startswith(b"HTTP/1.1 404 ")


def test_a_path_with_parameters_is_refused():
    server = memory_server()
    with pytest.raises(ConfigurationError, match="plain path prefix"):
        server.attach(App("*", 0, reactor=server.reactor), "/room/{name}")


def test_allowed_origins_setting_checks_websocket_origins():
    server = memory_server(allowed_origins=["good.example"])
    ok = raw(server, handshake_request(extra="Origin: http://good.example\r\n"))
    assert ok.take().startswith(b"HTTP/1.1 101 ")
    bad = raw(server, handshake_request(extra="Origin: http://evil.example\r\n"))
    assert bad.take().startswith(b"HTTP/1.1 403 ")


def test_subprotocol_setting_is_negotiated():
    server = memory_server(websocket_subprotocol="chat")
    response = peer(server, subprotocols=["chat"]).handshake()
    assert response.status_code == 101
    assert response.headers["Sec-WebSocket-Protocol"] == "chat"


def test_compression_setting_accepts_permessage_deflate():
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    on = raw(memory_server(websocket_compression=True), handshake_request(extra=offer))
    assert b"permessage-deflate" in on.take().split(b"\r\n\r\n")[0]
    off = raw(memory_server(), handshake_request(extra=offer))
    assert b"permessage-deflate" not in off.take().split(b"\r\n\r\n")[0]


def test_package_max_length_limits_messages():
    """A message over package_max_length closes with 1009."""
    server = memory_server(package_max_length=8)
    client = peer(server).open()
    assert client.send_text("12345678") == [text_event("12345678")]
    assert close_of(client.send_text("123456789"))[0] == 1009


def test_plain_http_without_a_request_handler_gets_426():
    """Without on('request') a plain request is not a WebSocket handshake: 426 (Swoole answers 400)."""
    server = memory_server()
    status, _, _ = http_response(raw(server, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").take())
    assert status == 426


def test_a_server_built_at_import_installs_no_reactor():
    """A module that builds and configures a Server (as twistd imports it) leaves the reactor alone."""
    import subprocess
    import sys

    code = (
        "import sys; from ratchetpy.swoole import Server; s = Server('0.0.0.0', 9501, package_max_length=10); "
        "s.on('message', print); print('twisted.internet.reactor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_listening_settings_are_reported_unused_in_a_foreign_app(logged):
    """In an App it does not own (twistd's), the Server's TLS and stop settings cannot apply: a warning says so."""
    from twisted.internet.testing import MemoryReactorClock

    reactor = MemoryReactorClock()
    server = Server(reactor=reactor, ssl_cert_file="cert.pem", max_wait_time=3, package_max_length=99)
    server.on("message", print)
    server.attach(App("*", 0, reactor=reactor))
    (warning,) = [e for e in logged if e.get("keys")]
    assert warning["keys"] == "max_wait_time, ssl_cert_file"
