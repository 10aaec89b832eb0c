"""
PushApi in memory: requests fed to HttpServer → Router → PushApi on a
StringTransport with a Clock; the hub's connections are FakeConnections.
Bodies in pieces, 100-continue, timeouts, draining, a hub that is slow or
fails, and the counters.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import MemoryReactorClock

from ratchetpy import App, HttpServer
from ratchetpy.exceptions import ConfigurationError
from ratchetpy.http.router import Route, Router
from ratchetpy.hub import Hub, HubError
from ratchetpy.hub.pushapi import DRAIN_TIMEOUT, PushApi
from ratchetpy.testing import FakeConnection
from tests.support.components import Quiet
from tests.support.memory import MemoryConnection

KEY = "test-key-0123456789abcdef"


def request(
    method: str = "POST",
    path: str = "/push",
    body: bytes | str | Any = b"",
    *,
    key: str | None = KEY,
    length: int | None = None,
    extra: str = "",
) -> bytes:
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
    if key is not None:
        head += f"Authorization: Bearer {key}\r\n"
    if length is None and (body or method == "POST"):
        length = len(body)
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    return (head + extra + "\r\n").encode() + body


class Answer:
    """A response read from what the server wrote."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def json(self) -> Any:
        return json.loads(self.body)


class Api:
    """One PushApi on a Router on HttpServer, with a hub and a clock."""

    def __init__(self, hub: Hub | None = None, **options: Any) -> None:
        self.reactor = MemoryReactorClock()
        self.hub = hub if hub is not None else Hub()
        self.api = PushApi(self.hub, KEY, path="/push", **options)
        self.stack = HttpServer(Router([Route(self.api.route_pattern, self.api, ())]))

    def connect(self) -> MemoryConnection:
        return MemoryConnection(self.stack, self.reactor)

    def send(self, raw: bytes, one_byte_at_a_time: bool = False) -> tuple[Answer, MemoryConnection]:
        memory = self.connect()
        memory.feed(raw, one_byte_at_a_time)
        return Answer(memory.take()), memory

    def client(self) -> FakeConnection:
        conn = FakeConnection()
        self.hub.register(conn)
        return conn


def test_push_to_one_client_in_byte_sized_reads():
    """The body may come a byte at a time; exactly that client gets the message."""
    api = Api()
    a, b = api.client(), api.client()
    answer, memory = api.send(request(body={"client": a.id, "data": "only you"}), one_byte_at_a_time=True)
    assert (answer.status, answer.json()) == (200, {"delivered": 1})
    assert answer.headers["content-type"] == "application/json"
    assert a.sent == ["only you"] and b.sent == []
    assert not memory.transport.connected
    assert api.hub.counters.api_requests == {200: 1}


def test_unknown_client_is_404_and_logged(logged):
    api = Api()
    answer, _ = api.send(request(body={"client": "nobody.1.x", "data": "x"}))
    assert (answer.status, answer.json()) == (404, {"error": "unknown client"})
    assert any("no connection holds that client id" in str(e.get("log_format")) for e in logged)
    assert api.hub.counters.api_requests == {404: 1}


def test_channel_user_exclude_and_binary():
    api = Api()
    a, b, c = api.client(), api.client(), api.client()
    for conn in (a, b):
        api.hub.join(conn, "room")
    api.hub.bind(b, "bob")
    api.hub.bind(c, "bob")
    answer, _ = api.send(request(body={"channel": "room", "data": {"n": 1}, "exclude": [a.id]}))
    assert answer.json() == {"delivered": 1}
    answer, _ = api.send(request(body={"user": "bob", "data_base64": "AP8="}))
    assert answer.json() == {"delivered": 2}
    assert a.sent == [] and b.sent == ['{"n":1}', b"\x00\xff"] and c.sent == [b"\x00\xff"]


def test_batch_answers_per_item():
    api = Api()
    a = api.client()
    api.hub.join(a, "room")
    batch = [
        {"client": a.id, "data": "1"},
        {"client": "gone.2.x", "data": "2"},
        {"channel": "room", "data": "3"},
        {"channel": "empty", "data": "4"},
    ]
    answer, _ = api.send(request(body=batch))
    assert answer.status == 200
    assert answer.json() == [
        {"delivered": 1},
        {"delivered": 0, "error": "unknown client"},
        {"delivered": 1},
        {"delivered": 0},
    ]
    assert a.sent == ["1", "3"]


def test_bad_batch_item_sends_nothing():
    api = Api()
    a = api.client()
    answer, _ = api.send(request(body=[{"client": a.id, "data": "1"}, {"client": a.id}]))
    assert answer.status == 400 and answer.json()["error"].startswith("item 1: ")
    assert a.sent == []


def test_bad_json_is_400_with_a_log_line(logged):
    api = Api()
    answer, _ = api.send(request(body=b"{nope"))
    assert answer.status == 400 and "not valid JSON" in answer.json()["error"]
    lines = [e for e in logged if e.get("status") == 400 and "Publish API: refused" in e.get("log_format", "")]
    assert lines and "not valid JSON" in lines[0]["error"]


def test_expect_100_continue():
    """curl's Expect: the 100 comes before the body, the answer after it."""
    api = Api()
    a = api.client()
    body = json.dumps({"client": a.id, "data": "x"}).encode()
    memory = api.connect()
    memory.feed(request(body=body, extra="Expect: 100-continue\r\n")[: -len(body)], False)
    assert memory.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    memory.feed(body, False)
    assert Answer(memory.take()).status == 200 and a.sent == ["x"]


def test_no_100_continue_for_a_refusal():
    api = Api()
    memory = api.connect()
    memory.feed(request(length=10**9, extra="Expect: 100-continue\r\n"), False)
    answer = Answer(memory.take())
    assert answer.status == 413 and "over the limit" in answer.json()["error"]
    assert not answer.body.startswith(b"HTTP/1.1 100")


def test_slow_body_gets_408():
    api = Api(body_timeout=3)
    memory = api.connect()
    memory.feed(request(body=b'{"channel": "c", "data": 1}')[:-5], False)
    api.reactor.advance(2.9)
    assert memory.take() == b"" and memory.transport.connected
    api.reactor.advance(0.2)
    answer = Answer(memory.take())
    assert answer.status == 408 and "within 3 s" in answer.json()["error"]
    assert not memory.transport.connected
    assert api.hub.counters.api_requests == {408: 1}


def test_refused_before_the_body_reads_it_before_closing():
    """A 401 is sent at once, but the connection reads the declared body before closing."""
    api = Api()
    memory = api.connect()
    body = b"x" * 1000
    memory.feed(request(body=body, key="wrong-key-but-long-enough")[: -len(body)], False)
    answer = Answer(memory.take())
    assert answer.status == 401 and answer.headers["www-authenticate"].startswith("Bearer")
    assert memory.transport.connected  # still reading what the client sends
    memory.feed(body[:500], False)
    assert memory.transport.connected
    memory.feed(body[500:], False)
    assert not memory.transport.connected


def test_drain_ends_after_a_timeout():
    api = Api()
    memory = api.connect()
    memory.feed(request(length=10**9, key=None), False)
    assert Answer(memory.take()).status == 401
    api.reactor.advance(DRAIN_TIMEOUT - 0.1)
    assert memory.transport.connected
    api.reactor.advance(0.2)
    assert not memory.transport.connected


def test_chunked_is_411():
    api = Api()
    memory = api.connect()
    head = f"POST /push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    memory.feed(head.encode() + b"5\r\nhello\r\n", False)
    answer = Answer(memory.take())
    assert answer.status == 411 and "Transfer-Encoding" in answer.json()["error"]
    assert memory.transport.connected  # reads the rest of the chunks until the client closes
    memory.feed(b"0\r\n\r\n", False)
    api.reactor.advance(DRAIN_TIMEOUT)
    assert not memory.transport.connected


def test_pipelined_bytes_after_the_body_are_ignored():
    api = Api()
    a = api.client()
    raw = request(body={"client": a.id, "data": "once"})
    answer, memory = api.send(raw + raw)
    assert answer.status == 200 and a.sent == ["once"]
    assert api.hub.counters.api_requests == {200: 1}


def test_read_endpoints_get_and_head():
    api = Api()
    a, b = api.client(), api.client()
    api.hub.join(a, "room:1/x")
    api.hub.join(b, "room:1/x")
    answer, _ = api.send(request("GET", "/push/channels/room:1%2Fx"))
    assert (answer.status, answer.json()) == (200, {"channel": "room:1/x", "member_count": 2})
    head, _ = api.send(request("HEAD", "/push/channels/room:1%2Fx"))
    assert head.status == 200 and head.body == b""
    assert int(head.headers["content-length"]) == len(answer.body)
    answer, _ = api.send(request("GET", "/push/stats"))
    stats = answer.json()
    assert stats["registered"] == 2 and stats["channels"] == 1
    assert stats["api_requests"] == {"200": 2}  # the two before this one
    answer, _ = api.send(request("GET", "/push/channels/%01"))
    assert answer.status == 400 and "control characters" in answer.json()["error"]


def test_wrong_method_is_405_and_counted():
    api = Api()
    answer, _ = api.send(request("GET", "/push"))
    assert answer.status == 405 and answer.headers["allow"] == "POST"
    answer, _ = api.send(request("HEAD", "/push"))
    assert answer.status == 405 and answer.body == b""
    assert api.hub.counters.api_requests == {405: 2}


class SlowHub(Hub):
    """A hub whose operations fire only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Deferred[Any]] = []

    def publish(self, channel: str, message: Any, exclude: Any = None) -> Deferred[int]:
        d: Deferred[int] = Deferred()
        self.pending.append(d)
        return d


def test_answer_waits_for_the_hub():
    hub = SlowHub()
    api = Api(hub)
    answer_raw = request(body={"channel": "c", "data": 1})
    memory = api.connect()
    memory.feed(answer_raw, False)
    assert memory.take() == b"" and memory.transport.connected
    hub.pending[0].callback(7)
    answer = Answer(memory.take())
    assert answer.json() == {"delivered": 7}


def test_hub_that_does_not_answer_gets_503(logged):
    hub = SlowHub()
    api = Api(hub, hub_timeout=2)
    memory = api.connect()
    memory.feed(request(body={"channel": "c", "data": 1}), False)
    api.reactor.advance(2.1)
    answer = Answer(memory.take())
    assert answer.status == 503 and "did not answer within 2 s" in answer.json()["error"]
    assert answer.headers["retry-after"] == "1"
    assert any("did not answer" in e.get("log_format", "") for e in logged)
    assert hub.counters.api_requests == {503: 1}


def test_hub_failure_is_500_and_logged(logged):
    class BrokenHub(Hub):
        def publish(self, channel: str, message: Any, exclude: Any = None) -> Deferred[int]:
            return fail(RuntimeError("backplane exploded"))

    api = Api(BrokenHub())
    answer, memory = api.send(request(body={"channel": "c", "data": 1}))
    assert answer.status == 500 and "backplane" not in answer.json()["error"]
    failures = [e for e in logged if "log_failure" in e]
    assert failures and failures[0]["log_failure"].check(RuntimeError)
    assert not memory.transport.connected


def test_hub_error_from_the_hub_is_400():
    class PickyHub(Hub):
        def push_user(self, user: Any, message: Any, exclude: Any = None) -> Deferred[int]:
            raise HubError("users are not served here")

    api = Api(PickyHub())
    answer, _ = api.send(request(body={"user": "u", "data": 1}))
    assert (answer.status, answer.json()) == (400, {"error": "users are not served here"})


def test_client_gone_before_the_hub_answers():
    hub = SlowHub()
    api = Api(hub)
    memory = api.connect()
    memory.feed(request(body={"channel": "c", "data": 1}), False)
    memory.lose()
    hub.pending[0].callback(1)  # nothing to write to, nothing raised
    assert memory.take() == b""
    assert hub.counters.api_requests == {200: 1}


def test_paths_under_the_base_only():
    api = Api()
    answer, _ = api.send(request("GET", "/push/nope"))
    assert answer.status == 404 and "GET /push/stats" in answer.json()["error"]
    answer, _ = api.send(request("POST", "/pushy", body={"channel": "c", "data": 1}))
    assert answer.status == 404 and answer.body == b""  # the Router's, not the API's


# -- configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"key": None}, "needs a key"),
        ({"key": "short"}, "at least 16"),
        ({"path": "push"}, "must start with '/'"),
        ({"path": "/"}, "path of its own"),
        ({"path": "/push/{x}"}, "plain path"),
        ({"path": "/push%20x"}, "plain path"),
        ({"max_body": 0}, "max_body"),
        ({"body_timeout": 0}, "body_timeout"),
        ({"hub_timeout": -1}, "hub_timeout"),
    ],
)
def test_configuration_errors(kwargs, words):
    options = {"key": KEY, "path": "/push", **kwargs}
    with pytest.raises(ConfigurationError, match=words.replace("{", r"\{").replace("(", r"\(")):
        PushApi(Hub(), options.pop("key"), **options)


def test_app_push_api():
    app = App("localhost", 0, reactor=MemoryReactorClock())
    app.route("/chat", Quiet(), ["*"])
    api = app.push_api("/push/", KEY)
    assert api.path == "/push" and api.hub is app.hub
    with pytest.raises(ConfigurationError, match="already routed"):
        app.push_api("/chat", KEY)
    with pytest.raises(ConfigurationError, match="needs a key"):
        app.push_api("/other", None)
    # Answers with any Host, beside the routes.
    memory = MemoryConnection(app.blacklist, server=app.servers[0])
    memory.feed(request("GET", "/push/stats").replace(b"Host: localhost", b"Host: 10.0.0.1:8081"), False)
    assert Answer(memory.take()).status == 200


def test_app_push_api_on_its_own_endpoint():
    reactor = MemoryReactorClock()
    app = App("localhost", 0, reactor=reactor)
    app.route("/chat", Quiet(), ["*"])
    app.push_api("/push", KEY, listen=["tcp:0:interface=127.0.0.1"])
    public, private = app.servers
    memory = MemoryConnection(None, server=public)
    memory.feed(request("GET", "/push/stats"), False)
    assert Answer(memory.take()).status == 404
    memory = MemoryConnection(None, server=private)
    memory.feed(request("GET", "/push/stats"), False)
    assert Answer(memory.take()).status == 200
    memory = MemoryConnection(None, server=private)
    memory.feed(b"GET /chat HTTP/1.1\r\nHost: localhost\r\n\r\n", False)
    assert Answer(memory.take()).status == 404
    with pytest.raises(ConfigurationError, match="list of endpoints"):
        app.push_api("/other", KEY, listen="tcp:0")
