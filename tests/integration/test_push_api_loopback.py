"""
The publish API on real loopback sockets: an App with a hub-registered
route and ``App.push_api``, WebSocket clients from the ``websockets``
library, and backends that are ``http.client`` in a thread, a separate
Python process using urllib, and ``curl`` (as a PHP backend would call it).

Whether a client did *not* get a message is checked without waiting for
nothing: a marker is pushed to it afterwards, and the marker must be the
next thing it receives.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest
from twisted.internet import defer, threads
from twisted.trial import unittest
from websockets.sync.client import connect

from ratchetpy.app import App
from tests.support.push_targets import IdFirst
from tests.support.timing import seconds

KEY = "loopback-test-key-7f3a9c2e"

# A backend in another process: POST argv[2] (JSON) to argv[1] with the key
# from the environment; print the status and the answer.
BACKEND = r"""
import os, sys, urllib.error, urllib.request
request = urllib.request.Request(
    sys.argv[1], data=sys.argv[2].encode(), method="POST",
    headers={"Authorization": "Bearer " + os.environ["PUSH_KEY"], "Content-Type": "application/json"},
)
try:
    with urllib.request.urlopen(request, timeout=20) as response:
        print(response.status, response.read().decode().strip())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode().strip())
"""


def python_backend(url: str, document: Any) -> tuple[int, Any]:
    """POST ``document`` from a separate Python process; its status and JSON answer."""
    done = subprocess.run(
        [sys.executable, "-c", BACKEND, url, json.dumps(document)],
        capture_output=True,
        text=True,
        timeout=seconds(30),
        env={**os.environ, "PUSH_KEY": KEY},
    )
    assert done.returncode == 0, done.stderr
    status, _, answer = done.stdout.strip().partition(" ")
    return int(status), json.loads(answer)


def curl(url: str, body: str, *extra: str) -> tuple[int, Any]:
    """POST ``body`` with curl, as a PHP (or shell) backend would; status and JSON answer."""
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {KEY}",
         "-H", "Content-Type: application/json", "--data-binary", "@-", *extra, url],
        input=body,
        capture_output=True,
        text=True,
        timeout=seconds(30),
    )
    assert done.returncode == 0, done.stderr
    answer, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(answer)


class PushApiLoopback(unittest.TestCase):
    """App with ``/ws`` (IdFirst, registered) and the API at ``/push``, on 127.0.0.1."""

    timeout = 60

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.app = App("*", 0, reactor=reactor, shutdown_timeout=seconds(5))
        self.app.route("/ws", IdFirst(), ["*"])
        self.app.push_api("/push", KEY)
        self.app.privilegedStartService()
        self.app.startService()
        self.port = self.app.servers[0].port.getHost().port
        self.addCleanup(self.app.stopService)

    def ws(self, query: str = "") -> Any:
        return connect(f"ws://127.0.0.1:{self.port}/ws{query}", open_timeout=seconds(10))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/push"

    def call(
        self,
        method: str,
        path: str = "/push",
        body: Any = None,
        *,
        key: str | None = KEY,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with http.client: status, headers (lower-case names), body."""
        fields = dict(headers or {})
        if key is not None:
            fields["Authorization"] = f"Bearer {key}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=seconds(10))
        try:
            conn.request(method, path, body=body, headers=fields)
            response = conn.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def in_thread(self, function: Any) -> defer.Deferred[Any]:
        return threads.deferToThread(function)

    # -- the key end-to-end test --------------------------------------------

    @pytest.mark.slow
    @defer.inlineCallbacks
    def test_backend_process_pushes_to_exactly_one_client(self):
        """A separate process POSTs {"client": id}: that client gets it, the other does not."""

        def scenario() -> dict[str, Any]:
            with self.ws() as a, self.ws() as b:
                id_a, id_b = a.recv(timeout=seconds(10)), b.recv(timeout=seconds(10))
                pushed = python_backend(self.url, {"client": id_a, "data": "for a only"})
                got_a = a.recv(timeout=seconds(10))
                marker = python_backend(self.url, {"client": id_b, "data": "marker"})
                got_b = b.recv(timeout=seconds(10))
                return {"ids": (id_a, id_b), "pushed": pushed, "a": got_a, "marker": marker, "b": got_b}

        result = yield self.in_thread(scenario)
        id_a, id_b = result["ids"]
        self.assertNotEqual(id_a, id_b)
        self.assertEqual(result["pushed"], (200, {"delivered": 1}))
        self.assertEqual(result["a"], "for a only")
        self.assertEqual(result["marker"], (200, {"delivered": 1}))
        self.assertEqual(result["b"], "marker")  # not "for a only"
        self.assertEqual(self.app.hub.counters.api_requests[200], 2)

    @pytest.mark.slow
    @defer.inlineCallbacks
    def test_curl_backend_channel_binary_and_expect(self):
        """curl (a PHP backend's call): channel with exclude, binary, 100-continue, 404."""
        if shutil.which("curl") is None:
            raise unittest.SkipTest("curl is not installed")

        def scenario() -> dict[str, Any]:
            with self.ws("?room=news") as a, self.ws("?room=news") as b, self.ws() as c:
                ids = [ws.recv(timeout=seconds(10)) for ws in (a, b, c)]
                out: dict[str, Any] = {}
                out["channel"] = curl(self.url, json.dumps({"channel": "news", "data": {"title": "hi"}, "exclude": [ids[1]]}))
                out["a1"] = a.recv(timeout=seconds(10))
                payload = base64.b64encode(b"\x00\xffbin").decode()
                out["binary"] = curl(self.url, json.dumps({"channel": "news", "data_base64": payload}), "-H", "Expect: 100-continue")
                out["a2"], out["b1"] = a.recv(timeout=seconds(10)), b.recv(timeout=seconds(10))
                out["unknown"] = curl(self.url, json.dumps({"client": ids[0] + "x", "data": "?"}))
                out["marker"] = curl(self.url, json.dumps({"client": ids[2], "data": "marker"}))
                out["c1"] = c.recv(timeout=seconds(10))
                return out

        out = yield self.in_thread(scenario)
        self.assertEqual(out["channel"], (200, {"delivered": 1}))
        self.assertEqual(out["a1"], '{"title":"hi"}')
        self.assertEqual(out["binary"], (200, {"delivered": 2}))
        self.assertEqual((out["a2"], out["b1"]), (b"\x00\xffbin", b"\x00\xffbin"))
        self.assertEqual(out["unknown"], (404, {"error": "unknown client"}))
        self.assertEqual(out["c1"], "marker")  # c, in no channel, got none of the above

    # -- every answer, from http.client -----------------------------------------

    @defer.inlineCallbacks
    def test_user_batch_and_exclude(self):
        def scenario() -> dict[str, Any]:
            with self.ws("?user=alice") as tab1, self.ws("?user=alice") as tab2, self.ws("?user=bob") as bob:
                ids = [ws.recv(timeout=seconds(10)) for ws in (tab1, tab2, bob)]
                out: dict[str, Any] = {}
                out["user"] = self.call("POST", body={"user": "alice", "data": "both tabs"})
                out["t1"], out["t2"] = tab1.recv(timeout=seconds(10)), tab2.recv(timeout=seconds(10))
                out["batch"] = self.call("POST", body=[
                    {"user": "alice", "data": "tab 2", "exclude": [ids[0]]},
                    {"client": ids[2], "data": "bob"},
                    {"client": "no.such.client", "data": "?"},
                ])
                out["t2b"], out["bob"] = tab2.recv(timeout=seconds(10)), bob.recv(timeout=seconds(10))
                out["marker"] = self.call("POST", body={"client": ids[0], "data": "marker"})
                out["t1b"] = tab1.recv(timeout=seconds(10))
                return out

        out = yield self.in_thread(scenario)
        status, headers, body = out["user"]
        self.assertEqual((status, json.loads(body)), (200, {"delivered": 2}))
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual((out["t1"], out["t2"]), ("both tabs", "both tabs"))
        status, _, body = out["batch"]
        self.assertEqual(status, 200)
        self.assertEqual(
            json.loads(body),
            [{"delivered": 1}, {"delivered": 1}, {"delivered": 0, "error": "unknown client"}],
        )
        self.assertEqual((out["t2b"], out["bob"]), ("tab 2", "bob"))
        self.assertEqual(out["t1b"], "marker")  # tab 1 was excluded from "tab 2"

    @defer.inlineCallbacks
    def test_refusals(self):
        def scenario() -> dict[str, Any]:
            out: dict[str, Any] = {}
            out["no key"] = self.call("POST", body={"channel": "c", "data": 1}, key=None)
            out["wrong key"] = self.call("POST", body={"channel": "c", "data": 1}, key="x" * 30)
            out["get push"] = self.call("GET")
            out["put push"] = self.call("PUT", body={"channel": "c", "data": 1})
            out["unknown"] = self.call("POST", body={"client": "nobody.1.abc", "data": 1})
            out["not json"] = self.call("POST", body=b"channel=c&data=1")
            out["bad channel"] = self.call("POST", body={"channel": "a\u0007b", "data": 1})
            out["too big"] = self.call("POST", body=b"[" + b" " * (2 * 1024 * 1024) + b"]")
            out["chunked"] = self.call(
                "POST", body=iter([b'{"channel": "c", ', b'"data": 1}']), headers={"Transfer-Encoding": "chunked"}
            )
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=seconds(10))
            conn.putrequest("POST", "/push")
            conn.putheader("Authorization", f"Bearer {KEY}")
            conn.endheaders()
            response = conn.getresponse()
            out["no length"] = (response.status, {}, response.read())
            conn.close()
            return out

        out = yield self.in_thread(scenario)
        expect = {
            "no key": (401, "no key"),
            "wrong key": (401, "a wrong key"),
            "get push": (405, "use POST"),
            "put push": (405, "use POST"),
            "unknown": (404, "unknown client"),
            "not json": (400, "not valid JSON"),
            "bad channel": (400, "control characters"),
            "too big": (413, "over the limit of 1048576 bytes"),
            "chunked": (411, "Transfer-Encoding"),
            "no length": (411, "Content-Length"),
        }
        for name, (status, words) in expect.items():
            got_status, _, body = out[name]
            self.assertEqual(got_status, status, name)
            self.assertIn(words, json.loads(body)["error"], name)
        self.assertEqual(out["get push"][1]["allow"], "POST")
        self.assertIn("bearer", out["no key"][1]["www-authenticate"].lower())
        counted = self.app.hub.counters.api_requests
        self.assertEqual(dict(counted), {401: 2, 405: 2, 404: 1, 400: 2, 413: 1, 411: 2})

    @defer.inlineCallbacks
    def test_read_endpoints(self):
        def scenario() -> dict[str, Any]:
            with self.ws("?room=r%2F1") as a, self.ws("?room=r%2F1") as b:
                a.recv(timeout=seconds(10))
                b.recv(timeout=seconds(10))
                return {
                    "count": self.call("GET", "/push/channels/r%2F1"),
                    "head": self.call("HEAD", "/push/channels/r%2F1"),
                    "empty": self.call("GET", "/push/channels/none"),
                    "stats": self.call("GET", "/push/stats"),
                    "head stats": self.call("HEAD", "/push/stats"),
                    "no key": self.call("GET", "/push/stats", key=None),
                    "post stats": self.call("POST", "/push/stats", body={}),
                }

        out = yield self.in_thread(scenario)
        status, headers, body = out["count"]
        self.assertEqual((status, json.loads(body)), (200, {"channel": "r/1", "member_count": 2}))
        status, head_headers, head_body = out["head"]
        self.assertEqual((status, head_body), (200, b""))
        self.assertEqual(head_headers["content-length"], headers["content-length"])
        self.assertEqual(json.loads(out["empty"][2]), {"channel": "none", "member_count": 0})
        status, _, body = out["stats"]
        stats = json.loads(body)
        self.assertEqual(status, 200)
        self.assertEqual((stats["open"], stats["registered"], stats["channels"]), (2, 2, 1))
        self.assertEqual(stats["api_requests"], {"200": 3})
        self.assertEqual((out["head stats"][0], out["head stats"][2]), (200, b""))
        self.assertEqual(out["no key"][0], 401)
        self.assertEqual((out["post stats"][0], out["post stats"][1]["allow"]), (405, "GET, HEAD"))

    @defer.inlineCallbacks
    def test_http_1_0_request_as_php_file_get_contents_sends_it(self):
        """PHP's http stream wrapper speaks HTTP/1.0 with Connection: close; the answer ends at EOF."""
        import socket

        def scenario() -> tuple[bytes, str]:
            with self.ws() as a:
                id_a = a.recv(timeout=seconds(10))
                body = json.dumps({"client": id_a, "data": "from php"}).encode()
                head = (
                    f"POST /push HTTP/1.0\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n"
                    f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                with socket.create_connection(("127.0.0.1", self.port), timeout=seconds(10)) as sock:
                    sock.sendall(head + body)
                    raw = b""
                    while chunk := sock.recv(65536):
                        raw += chunk
                return raw, a.recv(timeout=seconds(10))

        raw, got = yield self.in_thread(scenario)
        head, _, body = raw.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertEqual(json.loads(body), {"delivered": 1})
        self.assertEqual(got, "from php")
