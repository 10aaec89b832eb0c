"""
The phpws mode of ``twistd ratchetpy`` on the wire: raw sockets on
127.0.0.1, reading what each ``recv()`` returns, against the protocol
observed from real phpWebSocketServer.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from tests.phpws.support import NEXT, RawClient, serve_phpws
from tests.support.processes import Twistd
from tests.support.wire import OP_BINARY, OP_PING, client_frame

pytestmark = pytest.mark.slow

PUSH_KEY = "phpws-test-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twistd]:
    yield from serve_phpws(
        tmp_path_factory.mktemp("phpws"),
        "--route", "/broken=tests.phpws.resources:Broken",
        "--push-api", "/push", "--push-key", PUSH_KEY,
    )


def ready(client: RawClient) -> str:
    client.read_head()
    packet = client.packet()
    assert packet["opcode"] == "ready", packet
    return str(packet["uuid"])


def browser(server: Twistd, path: str = "/web", **request) -> tuple[RawClient, str]:
    client = RawClient(server.port, path, **request)
    return client, ready(client)


def php(server: Twistd, ident: str = "", path: str = "/php") -> tuple[RawClient, str]:
    client = RawClient(server.port, path, php=True, ident=ident)
    return client, ready(client)


def test_php_client_reads_the_101_alone_and_ready_in_the_next_read(server):
    for _ in range(5):
        client = RawClient(server.port, "/php", php=True, ident="")
        first = client.read_once()
        assert first.startswith(b"HTTP/1.1 101 ") and first.endswith(b"\r\n\r\n"), first
        second = client.read_once()
        assert second.startswith(b"\x81") and b'"opcode":"ready"' in second
        client.close()


def test_browser_gets_the_101_then_ready(server):
    client = RawClient(server.port, "/web")
    head, _ = client.read_head()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert client.packet()["opcode"] == "ready"
    client.close()


def test_one_next_per_data_message_whatever_it_holds(server):
    client, _ = browser(server, "/broken")
    for message in ('{"opcode":"whatever"}', "[1,2]", "42", '"str"', '{"opcode":null}', '{"opcode":"fail"}'):
        client.send(message)
        assert client.frame() == (0x81, NEXT), message
    client.send_raw(client_frame(OP_BINARY, b'{"opcode":"echo","message":"bin"}'))
    assert client.frame() == (0x81, b'{"opcode":"echo","message":"bin"}')
    assert client.frame() == (0x81, NEXT)
    client.send_raw(client_frame(OP_PING, b"abc"))
    assert client.frame() == (0x8A, b"abc")
    assert client.silent(0.2)
    client.send('{"opcode":"quit"}')
    assert client.at_eof()


def test_invalid_json_closes_without_next(server):
    client, _ = browser(server)
    client.send("{not json")
    assert client.at_eof()
    assert client.buffer == b""


def test_feedback_by_uuid_and_by_ident_and_broadcast_skipping_php_clients(server):
    b1, _ = browser(server, "/web")
    b2, u2 = browser(server, "/")
    worker, _ = php(server, "phpws-worker")
    sender, _ = php(server)
    sender.send(json.dumps({"opcode": "feedback", "ident": "", "uuid": u2, "message": "to b2 / \u00fc"}))
    assert sender.packet() == {"opcode": "next", "fyi": ""}
    assert b2.frame() == (
        0x81, b'{"opcode":"feedback","ident":"","uuid":"' + u2.encode() + b'","message":"to b2 \\/ \\u00fc"}'
    )
    b1.send(json.dumps({"opcode": "feedback", "ident": "phpws-worker", "uuid": "", "message": "to worker"}))
    assert b1.packet()["opcode"] == "next"
    assert worker.packet()["message"] == "to worker"
    raw = '{"opcode" : "broadcast",  "message":"all"}'
    b1.send(raw)
    assert b1.frame() == (0x81, NEXT)
    assert b2.frame() == (0x81, raw.encode())
    assert worker.silent(0.3)
    assert b1.silent(0.1)
    for client in (b1, b2, worker, sender):
        client.close()


def test_unknown_resource_and_missing_origin(server):
    for path in ("/nope", "/web?x=1", "/web/", "/WEB"):
        client = RawClient(server.port, path)
        client.read_head()
        assert client.frame() == (0x81, b'{"opcode":"close"}')
        assert client.at_eof()
    client = RawClient(server.port, "/web", origin=None)
    assert client.read_once().startswith(b"HTTP/1.1 400 ")


def test_publish_api_reaches_a_phpws_client_by_uuid_and_by_ident(server):
    page, uuid = browser(server)
    backend, _ = php(server, "phpws-backend")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    body = json.dumps([{"client": uuid, "data": {"opcode": "feedback", "message": "pushed"}},
                       {"user": "phpws-backend", "data": "for the backend"}])
    connection.request("POST", "/push", body, {"Authorization": f"Bearer {PUSH_KEY}",
                                               "Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200, response.read()
    response.read()
    assert page.packet() == {"opcode": "feedback", "message": "pushed"}
    assert backend.frame() == (0x81, b"for the backend")
    page.close()
    backend.close()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twistd]:
    yield from serve_phpws(
        tmp_path_factory.mktemp("phpws-limited"),
        "--phpws-max-clients", "3", "--phpws-max-per-ip", "2",
        "--phpws-trusted-proxies", "127.0.0.1",
    )


def test_admission_messages_and_x_forwarded_for_from_a_trusted_proxy(limited):
    # a PHP-type client forwarded from outside the allowed addresses: dropped silently
    outside = RawClient(limited.port, "/php", php=True, extra="X-Forwarded-For: 10.1.1.1\r\n")
    outside.read_head()
    assert outside.at_eof()
    assert outside.buffer == b""
    b1, _ = browser(limited)
    b2, _ = browser(limited)
    third = RawClient(limited.port, "/web")
    third.read_head()
    assert third.frame() == (0x81, b'{"opcode":"close","error":"Too many connections from: 127.0.0.1"}')
    assert third.at_eof()
    # through the trusted proxy (127.0.0.1), the forwarded address counts
    b3, _ = browser(limited, extra="X-Forwarded-For: 10.9.9.9\r\n")
    fourth = RawClient(limited.port, "/php", php=True)
    fourth.read_head()
    assert fourth.packet() == {"opcode": "close", "error": "Too many connections"}
    assert fourth.at_eof()
    assert "PHP-type client from 10.1.1.1, which is not allowed" in limited.text()
    for client in (b1, b2, b3):
        client.close()


@pytest.fixture(scope="module")
def pinging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twistd]:
    yield from serve_phpws(tmp_path_factory.mktemp("phpws-ping"), "--phpws-ping-interval", "0.5")


def test_pings_keep_answering_browsers_and_drop_silent_ones_php_clients_get_none(pinging):
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{pinging.port}/web", origin="http://127.0.0.1") as answering:
        assert json.loads(answering.recv(timeout=5))["opcode"] == "ready"
        silent, _ = browser(pinging)  # reads nothing until the end: never pongs
        worker, _ = php(pinging, "pinged-not")
        # the silent one is dropped after an unanswered round; it saw a real ping frame first
        assert silent.frame() == (0x89, b'{"opcode":"PING"}')
        assert silent.at_eof()
        assert worker.silent(1.5)  # never pinged
        answering.send('{"opcode":"echo","message":"alive"}')
        assert json.loads(answering.recv(timeout=5)) == {"opcode": "echo", "message": "alive"}
        worker.close()
