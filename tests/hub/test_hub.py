"""The hub in memory: registry, push, users, channels, presence, client_info, stats."""

from __future__ import annotations

import json

import pytest
from twisted.logger import formatEvent
from websockets.frames import Opcode

from ratchetpy import App, HttpServer, Hub, HubError, IoServer, WsServer
from ratchetpy.hub.hub import MAX_NAME_LENGTH, Member
from ratchetpy.server.ids import is_connection_id
from ratchetpy.testing import RecordingComponent
from tests.support.memory import MemoryConnection, WsPeer, ws_protocol


class Component(RecordingComponent):
    """Records events; joins channels and binds users from JSON commands."""

    def on_message(self, conn, msg):
        super().on_message(conn, msg)
        if isinstance(msg, str) and msg.startswith("{"):
            command = json.loads(msg)
            if "join" in command:
                conn.hub.join(conn, command["join"])
            if "user" in command:
                conn.hub.bind(conn, command["user"])


def open_peers(n, *, register=True, hub=None):
    component = Component()
    ws = WsServer(component, log_connections=False, register=register, hub=hub)
    stack = HttpServer(ws)
    peers = [WsPeer(stack=stack, one_byte_at_a_time=False).open() for _ in range(n)]
    return ws, component, peers


def conn_of(peer):
    return ws_protocol(peer.memory.conn).conn


def texts(peer):
    return [e.data.decode() for e in peer.pump() if e.opcode == Opcode.TEXT]


def test_connections_register_on_open_when_the_server_opts_in():
    ws, _, peers = open_peers(2)
    ids = [conn_of(p).id for p in peers]
    assert all(is_connection_id(i) for i in ids)
    assert sorted(ws.hub.ids()) == sorted(ids)
    assert ws.hub.exists(ids[0]) and ws.hub.is_established(ids[0])
    assert ids[0] in ws.hub and conn_of(peers[0]) in ws.hub
    assert len(ws.hub) == 2


def test_without_opt_in_nothing_is_registered_but_everything_is_counted():
    ws, _, peers = open_peers(1, register=False)
    assert ws.hub.ids() == []
    assert ws.hub.counters.accepted == 1
    assert ws.hub.counters.open == 1


def test_push_reaches_exactly_that_connection():
    ws, _, (a, b) = open_peers(2)
    d = ws.hub.push(conn_of(a).id, "only you")
    assert d.result is True
    assert texts(a) == ["only you"]
    assert texts(b) == []


def test_push_binary_stays_binary():
    ws, _, (a,) = open_peers(1)
    assert ws.hub.send(conn_of(a).id, b"\x00\xff") is True
    (event,) = a.pump()
    assert event.opcode == Opcode.BINARY and event.data == b"\x00\xff"


@pytest.mark.parametrize("bad_id", ["nope", "", "x" * 10_000, 42, None])
def test_push_to_an_unknown_id_is_false_not_an_error(bad_id):
    ws, _, (a,) = open_peers(1)
    assert ws.hub.push(bad_id, "x").result is False
    assert ws.hub.counters.pushes["missed"] == 1
    assert texts(a) == []


def test_push_to_a_closing_connection_is_false():
    ws, _, (a,) = open_peers(1)
    conn = conn_of(a)
    conn.close(1000)
    assert ws.hub.push(conn.id, "late").result is False


def test_a_closed_connection_is_unregistered_after_on_close():
    seen = []

    class Watcher(Component):
        def on_close(self, conn):
            # on_close can still read the hub
            seen.append((conn.hub.exists(conn.id), conn.hub.channels_of(conn)))

    ws = WsServer(Watcher(), log_connections=False, register=True)
    peer = WsPeer(stack=HttpServer(ws), one_byte_at_a_time=False).open()
    conn = conn_of(peer)
    ws.hub.join(conn, "room")
    peer.memory.lose()
    assert seen == [(True, {"room"})]
    assert not ws.hub.exists(conn.id)
    assert ws.hub.channels() == []
    assert ws.hub.push(conn.id, "x").result is False


def test_disconnect_closes_with_the_code_and_reason():
    ws, _, (a,) = open_peers(1)
    assert ws.hub.disconnect(conn_of(a).id, 4000, "bye").result is True
    (event,) = a.pump()
    assert event.opcode == Opcode.CLOSE
    assert event.data[:2] == (4000).to_bytes(2, "big") and event.data[2:] == b"bye"
    assert ws.hub.disconnect("unknown", 1000).result is False


def test_disconnect_with_an_invalid_code_is_a_clear_error():
    ws, _, (a,) = open_peers(1)
    with pytest.raises(HubError, match="invalid close code"):
        ws.hub.disconnect(conn_of(a).id, 1005)


def test_a_user_with_several_tabs_gets_every_copy():
    ws, _, (tab1, tab2, other) = open_peers(3)
    for peer in (tab1, tab2):
        peer.send_text('{"user": "alice"}')
    other.send_text('{"user": "bob"}')
    assert ws.hub.push_user("alice", "hi alice").result == 2
    assert texts(tab1) == ["hi alice"] and texts(tab2) == ["hi alice"]
    assert texts(other) == []
    assert sorted(ws.hub.connections_of("alice").result) == sorted(
        [conn_of(tab1).id, conn_of(tab2).id]
    )
    assert ws.hub.push_user("alice", "not tab1", exclude=[conn_of(tab1)]).result == 1
    assert texts(tab1) == [] and texts(tab2) == ["not tab1"]
    assert ws.hub.push_user("nobody", "x").result == 0


def test_binding_to_another_user_moves_the_connection(logged):
    ws, _, (a,) = open_peers(1)
    conn = conn_of(a)

    def lines():
        return [formatEvent(e) for e in logged if e.get("log_namespace") == "ratchetpy.hub"]

    ws.hub.bind(conn, "alice")
    ws.hub.bind(conn, "alice")  # twice: nothing changes, nothing logged
    assert lines() == []
    ws.hub.bind(conn, 7)  # Swoole binds int uids
    assert ws.hub.user_of(conn) == "7"
    assert ws.hub.connections_of("alice").result == []
    assert ws.hub.connections_of(7).result == [conn.id]
    assert any("now bound to '7'" in line for line in lines())
    ws.hub.unbind(conn)
    assert ws.hub.user_of(conn) is None and ws.hub.connections_of("7").result == []


def test_publish_reaches_members_but_not_the_excluded():
    ws, _, (a, b, c) = open_peers(3)
    a.send_text('{"join": "room:1"}')
    b.send_text('{"join": "room:1"}')
    c.send_text('{"join": "room:2"}')
    assert ws.hub.publish("room:1", "to room 1", exclude=[conn_of(a).id]).result == 1
    assert texts(a) == [] and texts(b) == ["to room 1"] and texts(c) == []
    assert ws.hub.publish("room:1", "all").result == 2
    assert ws.hub.publish("empty", "x").result == 0


def test_presence_and_leaving():
    ws, _, (a, b) = open_peers(2)
    a.send_text('{"join": "lobby", "user": "ann"}')
    b.send_text('{"join": "lobby"}')
    members = ws.hub.members("lobby").result
    assert sorted(members) == sorted([Member(conn_of(a).id, "ann"), Member(conn_of(b).id, None)])
    assert ws.hub.member_count("lobby").result == 2
    ws.hub.leave(conn_of(b), "lobby")
    ws.hub.leave(conn_of(b), "lobby")  # not a member any more: nothing happens
    assert ws.hub.member_count("lobby").result == 1
    assert ws.hub.channels_of(conn_of(a)) == {"lobby"}
    b.memory.lose()
    a.memory.lose()
    assert ws.hub.channels() == [] and ws.hub.member_count("lobby").result == 0


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("x" * (MAX_NAME_LENGTH + 1), "at most"),
        ("a\nb", "control characters"),
        (b"bytes", "must be a string"),
        (None, "must be a string"),
    ],
)
def test_odd_channel_names_are_refused_clearly(name, problem):
    ws, _, (a,) = open_peers(1)
    with pytest.raises(HubError, match=problem):
        ws.hub.join(conn_of(a), name)
    with pytest.raises(HubError, match=problem):
        ws.hub.publish(name, "x")


def test_unicode_channel_names_work():
    ws, _, (a,) = open_peers(1)
    ws.hub.join(conn_of(a), "salon:été 🎉")
    assert ws.hub.publish("salon:été 🎉", "ok").result == 1


def test_a_message_that_is_not_str_or_bytes_is_a_clear_error():
    ws, _, (a,) = open_peers(1)
    with pytest.raises(TypeError, match="str or bytes"):
        ws.hub.send(conn_of(a).id, {"not": "serialised"})


def test_client_info_reports_the_connection():
    clock = [1000.0]
    component = Component()
    ws = WsServer(component, log_connections=False, register=True, hub=Hub(clock=lambda: clock[0]))
    peer = WsPeer(stack=HttpServer(ws), path="/chat?x=1", one_byte_at_a_time=False).open()
    conn = conn_of(peer)
    ws.hub.bind(conn, "ann")
    ws.hub.join(conn, "lobby")
    peer.reactor.advance(5)
    clock[0] += 5
    peer.send_text("hello")
    ws.hub.send(conn.id, "back")
    info = ws.hub.client_info(conn.id).result
    assert info.id == conn.id and info.node == ws.hub.node
    assert info.route == "/chat"
    assert info.user == "ann" and info.channels == ("lobby",)
    assert info.connected_at == 1000.0
    assert info.last_activity == pytest.approx(1005.0)
    assert info.messages_in == 1 and info.messages_out == 1
    assert info.bytes_in >= len("hello") + 6 and info.bytes_out >= len("back") + 2
    assert info.buffered_bytes >= 0
    assert info.remote_address == conn.remote_address
    assert json.loads(json.dumps(info.as_dict()))["channels"] == ["lobby"]
    assert ws.hub.client_info("unknown").result is None


def test_stats_count_connections_messages_and_closes():
    ws, _, (a, b) = open_peers(2)
    a.send_text("one")
    a.send_text("two")
    ws.hub.send(conn_of(b).id, "x")
    ws.hub.send("gone", "x")
    conn_of(b).close(4001)
    b.pump()
    b.pump()  # the client's close frame goes back
    b.memory.lose()
    a.memory.lose()
    stats = ws.hub.stats().result
    assert stats["accepted"] == 2 and stats["open"] == 0
    assert stats["closed"] == {"1006": 1, "4001": 1}
    assert stats["messages_in"] == 2 and stats["messages_out"] == 1
    assert stats["bytes_in"] > 0 and stats["bytes_out"] > 0
    assert stats["pushes"] == {"delivered": 1, "missed": 1}
    assert stats["registered"] == 0 and stats["node"] == ws.hub.node


def test_refusals_are_counted_by_reason():
    app = App("localhost", 0)
    app.route("/chat", RecordingComponent(), ["*"])
    server = IoServer(app.blacklist, 0, stats=app.hub.counters)
    for raw in (
        b"GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"POST /chat HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nHost: localhost\r\n\r\n",  # not a WebSocket handshake
    ):
        memory = MemoryConnection(app.blacklist, server=server)
        memory.feed(raw, one_byte_at_a_time=False)
    counters = app.hub.counters
    assert counters.refused["not_found"] == 1
    assert counters.refused["method_not_allowed"] == 1
    assert counters.refused_status[404] == 1 and counters.refused_status[405] == 1
    assert sum(counters.refused_status.values()) == 3


def test_a_raw_tcp_connection_can_be_registered_and_leaves_on_close():
    hub = Hub()

    class Raw(RecordingComponent):
        def on_open(self, conn):
            super().on_open(conn)
            hub.register(conn)
            hub.join(conn, "raw")

    memory = MemoryConnection(Raw())
    conn = memory.conn
    assert hub.send(conn.id, b"ping") is True
    assert memory.take() == b"ping"
    memory.lose()
    assert not hub.exists(conn.id) and hub.channels() == []


def test_app_routes_share_the_app_hub_and_opt_in_per_route():
    app = App("localhost", 0)
    chat = app.route("/chat", RecordingComponent(), ["*"], hub=True)
    other = app.route("/other", RecordingComponent(), ["*"])
    assert chat.hub is app.hub and other.hub is app.hub
    assert chat.register is True and other.register is False
    mine = Hub()
    own = app.route("/own", WsServer(RecordingComponent(), hub=mine), ["*"])
    assert own.hub is mine  # a hub given explicitly is kept


def test_the_component_can_opt_in_with_register_with_hub():
    class Registered(RecordingComponent):
        register_with_hub = True

    assert WsServer(Registered()).register is True
    assert WsServer(RecordingComponent()).register is False
    assert WsServer(Registered(), register=False).register is False
