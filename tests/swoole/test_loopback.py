"""
The Swoole-style server over real loopback sockets: ``websockets`` clients
and ``http.client`` on the same port, in threads; server calls made from
those threads go through ``blockingCallFromThread``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import threading

from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from ratchetpy.swoole import Server, SwooleError
from tests.support.loopback import assert_silent
from tests.support.timing import seconds
from tests.support.tls import self_signed


def build(server: Server) -> Server:
    """The handlers every test here uses (commands are JSON messages)."""

    @server.on("open")
    def on_open(ws, request):
        ws.push(request.fd, json.dumps({"fd": request.fd, "path": request.server["request_uri"]}))

    @server.on("message")
    def on_message(ws, frame):
        command = json.loads(frame.data)
        fd = frame.fd
        if "upper" in command:
            # Blocking work off the reactor; the result is pushed from the callback.
            ws.task(str.upper, command["upper"]).addCallback(lambda result: ws.push(fd, result))
        elif "push_from_task" in command:
            d = ws.task(ws.push, fd, "never")
            d.addErrback(lambda failure: ws.push(fd, "refused: " + failure.type.__name__))
        elif "job" in command:
            ws.task(command["job"]).addCallback(lambda result: ws.push(fd, "job done: " + result))
        elif "ticks" in command:
            count = [0]

            def tick(timer_id):
                count[0] += 1
                ws.push(fd, f"tick {count[0]}")
                if count[0] == command["ticks"]:
                    ws.clear_timer(timer_id)

            ws.tick(20, tick)
        elif "after" in command:
            ws.after(command["after"], ws.push, fd, "after")
        else:
            ws.push(fd, frame.data)

    @server.on("task")
    def on_task(ws, task_id, src_worker_id, data):
        return f"{data['name']} #{task_id}"

    finished = server.finished = []  # type: ignore[attr-defined]
    server.on("finish", lambda ws, task_id, result: finished.append((task_id, result)))

    @server.on("request")
    def on_request(request, response):
        # The canonical Swoole recipe: push to a WebSocket client from plain HTTP.
        path = request.server["request_uri"]
        if path == "/push":
            body = {"pushed": server.push(request.get["fd"], request.get["msg"])}
        elif path == "/broadcast":
            message = request.post["msg"]
            body = {"pushed": [server.push(fd, message) for fd in server.connections]}
        elif path == "/info":
            body = server.get_client_info(request.get["fd"]) or {}
        elif path == "/disconnect":
            body = {"closed": server.disconnect(request.get["fd"], 4001, "by http")}
        else:
            response.status(404)
            body = {"error": "no such path"}
        response.header("Content-Type", "application/json")
        response.end(json.dumps(body))

    return server


class SwooleLoopbackTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        from twisted.internet import reactor

        self.reactor = reactor
        self.server = build(Server("127.0.0.1", 0, reactor=reactor, log_connections=False, max_wait_time=seconds(5)))
        self.start()

    def start(self):
        app = self.server.app
        app.privilegedStartService()
        app.startService()
        self.port = app.servers[0].port.getHost().port
        self.addCleanup(self.server.shutdown)

    def call(self, method, *args):
        """A server method, run in the reactor thread from a client thread."""
        return threads.blockingCallFromThread(self.reactor, getattr(self.server, method), *args)

    def open(self, stack, path="/", **kwargs):
        ws = stack.enter_context(connect(f"ws://127.0.0.1:{self.port}{path}", **kwargs))
        return ws, json.loads(ws.recv(timeout=seconds(10)))["fd"]

    def http(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=seconds(10))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type"), json.loads(response.read())
        finally:
            conn.close()

    @defer.inlineCallbacks
    def test_push_exist_client_info_and_disconnect(self):
        def scenario():
            with contextlib.ExitStack() as stack:
                a, fd_a = self.open(stack, "/chat?room=1")
                b, fd_b = self.open(stack)
                pushed = self.call("push", fd_a, "only a")
                got = a.recv(timeout=seconds(10))
                assert_silent(b)
                missing = self.call("push", "no-such-fd", "x")
                exist = (self.call("exist", fd_a), self.call("is_established", fd_a), self.call("exist", "nope"))
                fds = sorted(threads.blockingCallFromThread(self.reactor, lambda: self.server.connections))
                info = self.call("get_client_info", fd_a)
                closed = self.call("disconnect", fd_b, 4000, "bye")
                with self.assertRaises(ConnectionClosed) as caught:
                    b.recv(timeout=seconds(10))
                return pushed, got, missing, exist, fds, info, closed, caught.exception.rcvd, fd_a, fd_b

        pushed, got, missing, exist, fds, info, closed, close, fd_a, fd_b = yield threads.deferToThread(scenario)
        self.assertEqual((pushed, got, missing), (True, "only a", False))
        self.assertEqual(exist, (True, True, False))
        self.assertEqual(fds, sorted([fd_a, fd_b]))
        self.assertEqual((info["id"], info["remote_ip"], info["route"]), (fd_a, "127.0.0.1", "/chat"))
        self.assertEqual((info["server_port"], info["websocket_status"]), (self.port, 3))
        self.assertGreater(info["remote_port"], 0)
        self.assertEqual((closed, close.code, close.reason), (True, 4000, "bye"))

    @defer.inlineCallbacks
    def test_http_request_handler_on_the_same_port_pushes_to_websockets(self):
        def scenario():
            with contextlib.ExitStack() as stack:
                a, fd_a = self.open(stack)
                b, fd_b = self.open(stack)
                push = self.http("GET", f"/push?fd={fd_a}&msg=from+http")
                got_a = a.recv(timeout=seconds(10))
                assert_silent(b)
                unknown = self.http("GET", "/push?fd=gone&msg=x")
                form = "msg=to+everyone"
                broadcast = self.http(
                    "POST", "/broadcast", form, {"Content-Type": "application/x-www-form-urlencoded"}
                )
                everyone = [a.recv(timeout=seconds(10)), b.recv(timeout=seconds(10))]
                info = self.http("GET", f"/info?fd={fd_b}")
                missing = self.http("GET", "/nowhere")
                kicked = self.http("GET", f"/disconnect?fd={fd_b}")
                with self.assertRaises(ConnectionClosed) as caught:
                    b.recv(timeout=seconds(10))
                return push, got_a, unknown, broadcast, everyone, info, missing, kicked, caught.exception.rcvd, fd_b

        push, got_a, unknown, broadcast, everyone, info, missing, kicked, close, fd_b = yield threads.deferToThread(
            scenario
        )
        self.assertEqual(push, (200, "application/json", {"pushed": True}))
        self.assertEqual(got_a, "from http")
        self.assertEqual(unknown[2], {"pushed": False})
        self.assertEqual(broadcast[2], {"pushed": [True, True]})
        self.assertEqual(everyone, ["to everyone", "to everyone"])
        self.assertEqual((info[0], info[2]["id"]), (200, fd_b))
        self.assertEqual(missing[0], 404)
        self.assertEqual(kicked[2], {"closed": True})
        self.assertEqual((close.code, close.reason), (4001, "by http"))
        stats = self.server.stats()
        self.assertEqual(stats["request_count"], 6)

    @defer.inlineCallbacks
    def test_tick_and_after(self):
        def scenario():
            with contextlib.ExitStack() as stack:
                ws, _ = self.open(stack)
                ws.send(json.dumps({"ticks": 3}))
                ticks = [ws.recv(timeout=seconds(10)) for _ in range(3)]
                ws.send(json.dumps({"after": 30}))
                after = ws.recv(timeout=seconds(10))
                assert_silent(ws)  # the tick cleared itself after 3
                return ticks, after

        ticks, after = yield threads.deferToThread(scenario)
        self.assertEqual(ticks, ["tick 1", "tick 2", "tick 3"])
        self.assertEqual(after, "after")
        self.assertEqual(self.server.stats()["timer_num"], 0)

    @defer.inlineCallbacks
    def test_task_runs_off_the_reactor_and_refuses_server_calls(self):
        def scenario():
            with contextlib.ExitStack() as stack:
                ws, _ = self.open(stack)
                ws.send(json.dumps({"upper": "blocking work"}))
                upper = ws.recv(timeout=seconds(10))
                ws.send(json.dumps({"push_from_task": True}))
                refused = ws.recv(timeout=seconds(10))
                ws.send(json.dumps({"job": {"name": "report"}}))
                job = ws.recv(timeout=seconds(10))
                return upper, refused, job

        upper, refused, job = yield threads.deferToThread(scenario)
        self.assertEqual(upper, "BLOCKING WORK")
        self.assertEqual(refused, "refused: " + SwooleError.__name__)
        self.assertTrue(job.startswith("job done: report #"))
        task_id = int(job.rsplit("#", 1)[1])
        self.assertEqual(self.server.finished, [(task_id, f"report #{task_id}")])
        self.assertEqual(self.server.stats()["tasking_num"], 0)

    @defer.inlineCallbacks
    def test_a_blocking_task_does_not_block_other_clients(self):
        def blocking(event):
            event.wait(seconds(10))
            return "released"

        event = threading.Event()
        d = self.server.task(blocking, event)
        self.assertEqual(self.server.stats()["tasking_num"], 1)

        def scenario():
            with contextlib.ExitStack() as stack:
                ws, _ = self.open(stack)
                ws.send(json.dumps({"echo": 1}))
                return ws.recv(timeout=seconds(10))

        echoed = yield threads.deferToThread(scenario)
        self.assertEqual(json.loads(echoed), {"echo": 1})
        event.set()
        self.assertEqual((yield d), "released")


class SwooleTlsLoopbackTests(SwooleLoopbackTests):
    """ssl_cert_file/ssl_key_file serve wss:// and https:// on the one port."""

    def setUp(self):
        from twisted.internet import reactor

        self.reactor = reactor
        cert, key = self_signed(self.mktemp_dir())
        self.context = ssl.create_default_context(cafile=cert)
        self.server = build(
            Server("127.0.0.1", 0, reactor=reactor, log_connections=False, ssl_cert_file=cert, ssl_key_file=key)
        )
        self.start()

    def mktemp_dir(self):
        # Outside the checkout (trial's mktemp() would put it under the cwd).
        import shutil
        import tempfile

        path = tempfile.mkdtemp(prefix="ratchetpy-swoole-tls-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def open(self, stack, path="/", **kwargs):
        ws = stack.enter_context(
            connect(f"wss://localhost:{self.port}{path}", ssl=self.context, **kwargs)
        )
        return ws, json.loads(ws.recv(timeout=seconds(10)))["fd"]

    def http(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection("localhost", self.port, timeout=seconds(10), context=self.context)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type"), json.loads(response.read())
        finally:
            conn.close()

    # The timer and task tests do not depend on the transport.
    test_tick_and_after = None  # type: ignore[assignment]
    test_task_runs_off_the_reactor_and_refuses_server_calls = None  # type: ignore[assignment]
    test_a_blocking_task_does_not_block_other_clients = None  # type: ignore[assignment]

