"""The phpws protocol on the in-memory stack (deterministic clock, no sockets)."""

from __future__ import annotations

import json

import pytest
from twisted.internet.defer import Deferred

from ratchetpy.phpws import DefaultResource, PhpWsResource, PhpWsSettings
from ratchetpy.phpws.settings import parse_networks
from tests.phpws.support import NEXT, PhpWsMemory
from tests.support.wire import OP_BINARY, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, client_frame


def packets(client):
    return [json.loads(p) for p in client.payloads()]


# -- handshake and ready ------------------------------------------------------------


def test_browser_gets_ready_with_its_connection_id_right_after_the_101():
    server = PhpWsMemory()
    client = server.connect("/web")
    assert client.status == 101
    (ready,) = packets(client)
    assert ready["opcode"] == "ready"
    assert server.hub.get(ready["uuid"]) is not None
    assert ready["uuid"] == str(client.conn.id)


def test_php_client_gets_ready_only_after_the_gap_in_a_write_of_its_own():
    server = PhpWsMemory(PhpWsSettings(php_gap=0.04))
    client = server.connect("/php", php=True, ident="worker")
    assert client.status == 101
    assert client.frames() == []  # nothing with the 101
    server.advance(0.03)
    assert client.frames() == []
    server.advance(0.02)
    (ready,) = packets(client)
    assert ready["opcode"] == "ready"


def test_no_origin_gets_400_and_no_websocket():
    server = PhpWsMemory()
    client = server.connect("/web", origin=None)
    assert client.status == 400
    assert not client.connected
    assert server.hub.counters.refused["no_origin"] == 1


def test_host_without_port_and_subprotocols_are_accepted():
    server = PhpWsMemory()
    client = server.connect("/web", host="127.0.0.1", extra="Sec-WebSocket-Protocol: chat\r\n")
    assert client.status == 101
    assert b"sec-websocket-protocol" not in client.head.lower()


@pytest.mark.parametrize("path", ["/web?x=1", "/web/", "/WEB", "/nope", "/w%65b"])
def test_unknown_resource_gets_the_101_then_close_packet_then_tcp_close(path):
    server = PhpWsMemory()
    client = server.connect(path)
    assert client.status == 101
    assert client.payloads() == [b'{"opcode":"close"}']
    assert not client.connected
    assert len(server.clients) == 0


def test_all_three_resources_share_one_client_list():
    server = PhpWsMemory()
    server.ready("/")
    server.ready("/web")
    server.ready("/php", php=True)
    assert len(server.clients) == 3
    assert server.servers["/"].clients is server.servers["/php"].clients


# -- next -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ['{"opcode":"whatever","message":"m"}', '{"message":"no opcode"}', "[1,2]", "42", '"str"',
     '{"opcode":null}', '{"opcode":5}', '{"opcode":"feedback","message":123}'],
)
def test_every_other_message_gets_exactly_one_next(message):
    server = PhpWsMemory()
    client, _ = server.ready()
    client.send(message)
    assert client.payloads() == [NEXT]


def test_echo_is_re_encoded_as_php_json_encode_then_next():
    server = PhpWsMemory()
    client, _ = server.ready()
    client.send('{ "message" : "\u00c4 \u2713 a/b", "opcode":"echo", "n": 1.50, "t": true, "z": null, "o": {"a": []} }')
    assert client.payloads() == [
        b'{"message":"\\u00c4 \\u2713 a\\/b","opcode":"echo","n":1.5,"t":true,"z":null,"o":{"a":[]}}',
        NEXT,
    ]


def test_binary_frames_holding_json_and_fragments_are_answered_once():
    server = PhpWsMemory()
    client, _ = server.ready()
    client.feed(client_frame(OP_BINARY, b'{"opcode":"echo","message":"bin"}'))
    assert client.payloads() == [b'{"opcode":"echo","message":"bin"}', NEXT]
    client.feed(
        client_frame(OP_TEXT, b'{"opcode":"echo",', fin=False)
        + client_frame(OP_CONTINUATION, b'"message":"frag"}')
    )
    assert client.payloads() == [b'{"opcode":"echo","message":"frag"}', NEXT]


def test_two_messages_in_one_write_are_answered_in_order():
    server = PhpWsMemory()
    client, _ = server.ready()
    client.feed(
        client_frame(OP_TEXT, b'{"opcode":"echo","message":"one"}')
        + client_frame(OP_TEXT, b'{"opcode":"echo","message":"two"}')
    )
    assert client.payloads() == [
        b'{"opcode":"echo","message":"one"}', NEXT, b'{"opcode":"echo","message":"two"}', NEXT,
    ]


def test_control_frames_get_no_next_and_a_client_ping_is_ponged():
    server = PhpWsMemory()
    client, _ = server.ready()
    client.feed(client_frame(OP_PING, b"abc"))
    assert client.frames() == [(0x8A, b"abc")]
    client.feed(client_frame(OP_PONG, b"unsolicited"))
    assert client.frames() == []
    assert client.connected


@pytest.mark.parametrize("message", ['{"opcode":"quit"}', "{not json", "", "  ", b"\xff\xfe"])
def test_quit_invalid_json_and_empty_messages_close_tcp_without_next_or_close_frame(message):
    server = PhpWsMemory()
    client, uuid = server.ready()
    if isinstance(message, bytes):
        client.feed(client_frame(OP_BINARY, message))
    else:
        client.send(message)
    assert client.frames() == []
    assert not client.connected
    assert uuid not in server.clients
    assert server.hub.get(uuid) is None


def test_a_failing_resource_still_gets_next_and_on_error():
    errors = []

    class Broken(PhpWsResource):
        def on_data(self, sid, message):
            raise RuntimeError("bug")

        def on_error(self, sid, exc):
            errors.append((sid, str(exc)))

    server = PhpWsMemory(resource=Broken())
    client, uuid = server.ready("/web")
    client.send('{"opcode":"echo"}')
    assert client.payloads() == [NEXT]
    assert errors == [(uuid, "bug")]
    assert client.connected


def test_next_waits_for_a_deferred_from_on_data():
    pending: list[Deferred[None]] = []

    class Slow(DefaultResource):
        def on_data(self, sid, message):
            d: Deferred[None] = Deferred()
            d.addCallback(lambda _: self.echo(sid, {"late": True}))
            pending.append(d)
            return d

    server = PhpWsMemory(resource=Slow())
    client, _ = server.ready("/web")
    client.send("{}")
    assert client.payloads() == []
    pending[0].callback(None)
    assert client.payloads() == [b'{"late":true}', NEXT]


# -- routing -----------------------------------------------------------------------


def test_feedback_by_uuid_reaches_that_browser_only_and_the_sender_gets_only_next():
    server = PhpWsMemory()
    b1, _ = server.ready("/web")
    b2, u2 = server.ready("/")
    php, _ = server.ready("/php", php=True)
    php.send(json.dumps({"opcode": "feedback", "ident": "", "uuid": u2, "message": "f\u00fcr dich / ok"}))
    server.advance(1)
    assert php.payloads() == [NEXT]
    assert b2.payloads() == [
        b'{"opcode":"feedback","ident":"","uuid":"' + u2.encode() + b'","message":"f\\u00fcr dich \\/ ok"}'
    ]
    assert b1.payloads() == []


def test_feedback_to_a_php_clients_uuid_delivers_nothing():
    server = PhpWsMemory()
    b1, _ = server.ready("/web")
    php, php_uuid = server.ready("/php", php=True, ident="worker1")
    b1.send(json.dumps({"opcode": "feedback", "uuid": php_uuid, "message": "x"}))
    server.advance(1)
    assert b1.payloads() == [NEXT]
    assert php.payloads() == []


def test_feedback_by_ident_reaches_the_first_client_with_it_only():
    server = PhpWsMemory()
    first, _ = server.ready("/php", php=True, ident="dup")
    second, _ = server.ready("/php", php=True, ident="dup")
    browser, _ = server.ready("/web")
    browser.send('{"opcode": "feedback", "ident": "dup", "uuid": "", "message": "to dup"}')
    server.advance(1)
    assert browser.payloads() == [NEXT]
    assert first.payloads() == [b'{"opcode":"feedback","ident":"dup","uuid":"","message":"to dup"}']
    assert second.payloads() == []


def test_feedback_naming_uuid_and_ident_goes_to_the_first_match_in_connection_order():
    server = PhpWsMemory()
    worker, _ = server.ready("/php", php=True, ident="worker1")
    b2, u2 = server.ready("/web")
    sender, _ = server.ready("/php", php=True)
    sender.send(json.dumps({"opcode": "feedback", "ident": "worker1", "uuid": u2, "message": "both"}))
    server.advance(1)
    assert len(worker.payloads()) == 1
    assert b2.payloads() == []


def test_broadcast_sends_the_raw_text_to_every_browser_but_the_sender_and_no_php_client():
    server = PhpWsMemory()
    b1, _ = server.ready("/web")
    b2, _ = server.ready("/web")
    b3, _ = server.ready("/")
    b4, _ = server.ready("/php")  # a browser-type client on /php
    php, _ = server.ready("/php", php=True)
    raw = '{"opcode" : "broadcast",  "message":"hello all"}'
    b1.send(raw)
    server.advance(1)
    assert b1.payloads() == [NEXT]
    for other in (b2, b3, b4):
        assert other.payloads() == [raw.encode()]
    assert php.payloads() == []
    php.send('{"opcode":"broadcast","message":"from php"}')
    server.advance(1)
    assert php.payloads() == [NEXT]
    for browser in (b1, b2, b3, b4):
        assert browser.payloads() == [b'{"opcode":"broadcast","message":"from php"}']


def test_frames_to_a_php_client_are_spaced_by_the_gap():
    server = PhpWsMemory(PhpWsSettings(php_gap=0.04))
    receiver, _ = server.ready("/php", php=True, ident="receiver")
    sender, _ = server.ready("/web")
    for n in range(3):
        sender.send(json.dumps({"opcode": "feedback", "ident": "receiver", "message": n}))
    assert sender.payloads() == [NEXT] * 3  # unpaced: a browser
    got = []
    for _ in range(3):
        server.advance(0.041)
        got.append(receiver.payloads())
    assert [len(reads) for reads in got] == [1, 1, 1]
    assert [json.loads(r[0])["message"] for r in got] == [0, 1, 2]


def test_a_php_client_flooded_faster_than_its_pace_is_dropped_not_queued_forever():
    from ratchetpy.phpws.clients import MAX_PACED_BYTES

    server = PhpWsMemory(PhpWsSettings(php_gap=0.04))
    receiver, _ = server.ready("/php", php=True, ident="receiver")
    other, _ = server.ready("/php", php=True, ident="other")
    flooder, _ = server.ready("/web")
    message = "x" * 60_000
    sends = MAX_PACED_BYTES // 60_000 + 2
    for _ in range(sends):  # a browser that does not wait for next
        flooder.send(json.dumps({"opcode": "feedback", "ident": "receiver", "message": message}))
    assert not receiver.connected  # dropped once its queue passed the bound
    assert flooder.connected and other.connected  # nobody else is touched
    assert flooder.payloads() == [NEXT] * sends
    server.advance(0.05)
    flooder.send(json.dumps({"opcode": "feedback", "ident": "other", "message": "still works"}))
    server.advance(0.05)
    assert [json.loads(p)["message"] for p in other.payloads()] == ["still works"]


def test_hub_push_and_push_user_reach_phpws_clients_by_uuid_and_ident():
    server = PhpWsMemory()
    browser, uuid = server.ready("/web")
    php, _ = server.ready("/php", php=True, ident="backend")
    assert server.hub.send(uuid, "by uuid")
    assert browser.payloads() == [b"by uuid"]
    server.hub.push_user("backend", "by ident")
    server.hub.push_user("backend", "again")
    reads = []
    for _ in range(10):
        server.advance(0.02)
        reads.append(php.payloads())
    # paced: each in a write of its own, at least the gap apart
    assert [r for r in reads if r] == [[b"by ident"], [b"again"]]
    first, second = (i for i, r in enumerate(reads) if r)
    assert second - first >= 2
    assert server.hub.user_of(server.clients.get(uuid).conn) is None


# -- admission -------------------------------------------------------------------


def test_max_clients_counts_both_types_and_refuses_with_its_message():
    server = PhpWsMemory(PhpWsSettings(max_clients=2))
    server.ready("/web")
    server.ready("/php", php=True)
    third = server.connect("/web")
    assert third.status == 101
    assert third.payloads() == [b'{"opcode":"close","error":"Too many connections"}']
    assert not third.connected
    php = server.connect("/php", php=True)
    server.advance(1)
    assert php.payloads() == [b'{"opcode":"close","error":"Too many connections"}']
    assert not php.connected
    assert len(server.clients) == 2


def test_max_per_ip_counts_browsers_only():
    server = PhpWsMemory(PhpWsSettings(max_per_ip=1))
    server.ready("/web")
    second = server.connect("/web")
    assert second.payloads() == [b'{"opcode":"close","error":"Too many connections from: 127.0.0.1"}']
    assert not second.connected
    server.ready("/php", php=True)
    server.ready("/web", peer="127.0.0.2")


def test_php_clients_from_other_addresses_are_dropped_silently():
    server = PhpWsMemory()
    outsider = server.connect("/php", php=True, peer="10.1.1.1")
    server.advance(1)
    assert outsider.frames() == []
    assert not outsider.connected
    browser = server.connect("/web", peer="10.1.1.1")
    assert json.loads(browser.payloads()[0])["opcode"] == "ready"


def test_php_clients_from_the_servers_own_address_are_allowed_by_default():
    server = PhpWsMemory()
    # the in-memory transport's own address is 10.0.0.1 (the server's, for this connection)
    server.ready("/php", php=True, peer="10.0.0.1")
    neighbour = server.connect("/php", php=True, peer="10.0.0.2")
    server.advance(0.2)
    assert neighbour.frames() == [] and not neighbour.connected


def test_php_allow_list_replaces_the_default():
    server = PhpWsMemory(PhpWsSettings(php_allowed=parse_networks("x", ["10.0.0.0/8"])))
    server.ready("/php", php=True, peer="10.1.1.1")
    local = server.connect("/php", php=True, peer="127.0.0.1")
    server.advance(1)
    assert not local.connected


def test_x_forwarded_for_counts_only_from_trusted_proxies():
    untrusted = PhpWsMemory()
    spoofed = untrusted.connect("/php", php=True, extra="X-Forwarded-For: 10.1.1.1\r\n")
    untrusted.advance(1)
    assert json.loads(spoofed.payloads()[0])["opcode"] == "ready"  # its real address: loopback

    trusted = PhpWsMemory(
        PhpWsSettings(trusted_proxies=parse_networks("x", ["127.0.0.1"]), max_per_ip=1)
    )
    via_proxy = trusted.connect("/php", php=True, extra="X-Forwarded-For: 10.1.1.1, 127.0.0.1\r\n")
    trusted.advance(1)
    assert via_proxy.frames() == [] and not via_proxy.connected
    _, uuid = trusted.ready("/web", extra="X-Forwarded-For: 10.9.9.9\r\n")
    assert trusted.clients.get(uuid).ip == "10.9.9.9"
    trusted.ready("/web", extra="X-Forwarded-For: 10.9.9.8\r\n")  # another client IP: admitted


def test_allowed_origins_match_exactly_and_others_are_dropped_silently():
    server = PhpWsMemory(PhpWsSettings(allowed_origins=("https://app.example",)))
    server.ready("/web", origin="https://app.example")
    other = server.connect("/web", origin="https://app.example:443")
    assert other.status == 101
    assert other.frames() == []
    assert not other.connected


# -- pings -------------------------------------------------------------------------


def test_pings_go_to_every_browser_as_ping_frames_and_drop_the_silent_ones():
    server = PhpWsMemory(PhpWsSettings(ping_interval=2))
    answering, _ = server.ready("/web")
    silent, _ = server.ready("/web")
    php, _ = server.ready("/php", php=True)
    server.advance(2)
    assert answering.frames() == [(0x89, b'{"opcode":"PING"}')]
    assert silent.frames() == [(0x89, b'{"opcode":"PING"}')]
    assert php.frames() == []
    answering.feed(client_frame(OP_PONG, b'{"opcode":"PING"}'))
    server.advance(2)
    assert answering.frames() == [(0x89, b'{"opcode":"PING"}')]
    assert answering.connected
    assert not silent.connected
    assert php.connected


# -- the resource API ------------------------------------------------------------------


def test_resource_events_and_injected_methods():
    events = []

    class App(PhpWsResource):
        def on_open(self, sid):
            events.append(("open", sid, self.clients[sid].client_type))

        def on_data(self, sid, message):
            packet = self.get_packet(message)
            events.append(("data", sid, packet))
            if packet.get("opcode") == "shout":
                self.broadcast(None, json.dumps({"shout": packet["message"]}))
            elif packet.get("opcode") == "bye":
                self.close(sid, "bye")

        def on_close(self, sid):
            events.append(("close", sid))

    server = PhpWsMemory(resource=App())
    client, uuid = server.ready("/web")
    other, _ = server.ready("/")
    client.send('{"opcode":"shout","message":"hi"}')
    assert client.payloads() == [b'{"shout": "hi"}', NEXT]
    assert other.payloads() == [b'{"shout": "hi"}']
    client.send('{"opcode":"bye"}')
    assert client.payloads() == [b'{"opcode":"close","error":"bye"}']
    assert not client.connected
    assert events == [
        ("open", uuid, "websocket"),
        ("data", uuid, {"opcode": "shout", "message": "hi"}),
        ("data", uuid, {"opcode": "bye"}),
        ("close", uuid),
    ]


def test_the_board_example_resource():
    from examples.phpws.board import Board

    server = PhpWsMemory(resource=Board())
    client, _ = server.ready("/web")
    server.ready("/")
    server.ready("/php", php=True)
    client.send('{"opcode":"count"}')
    assert client.payloads() == [b'{"opcode":"count","message":2}', NEXT]
    client.send('{"opcode":"echo","message":"still stock"}')
    assert client.payloads() == [b'{"opcode":"echo","message":"still stock"}', NEXT]


def test_the_client_list_goes_with_its_hub():
    import gc
    import weakref

    from ratchetpy.hub import Hub
    from ratchetpy.phpws import clients_for

    hub = Hub()
    clients_for(hub)
    gone = weakref.ref(hub)
    del hub
    gc.collect()
    assert gone() is None


def test_a_closed_php_client_leaves_the_hub():
    server = PhpWsMemory()
    php, uuid = server.ready("/php", php=True, ident="backend")
    assert server.hub.get(uuid) is not None and server.hub.local_connections_of("backend") == [uuid]
    php.send('{"opcode":"quit"}')
    server.advance(0.2)
    assert not php.connected
    assert server.hub.get(uuid) is None and server.hub.local_connections_of("backend") == []
