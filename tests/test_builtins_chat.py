"""The built-in chat in memory: welcome, rooms, relay through the hub only, the demo page's endpoint."""

from __future__ import annotations

import json

import pytest
from twisted.internet.defer import succeed

from ratchetpy.builtins import Chat, demo_endpoint, demo_page, room_of
from ratchetpy.http.request import parse_request_head
from ratchetpy.hub import Hub, HubError
from ratchetpy.server.ids import is_connection_id
from ratchetpy.testing import FakeConnection


def ws_conn(path: str, hub: Hub | None = None, **params: str) -> FakeConnection:
    """A test double that came through the router at ``path`` with these route parameters."""
    request = parse_request_head(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    request.route_params = dict(params)
    conn = FakeConnection(http_request=request)
    if hub is not None:
        conn.hub = hub
    return conn


def welcome_of(conn: FakeConnection) -> dict:
    first = conn.sent[0]
    assert isinstance(first, str)
    return json.loads(first)


def test_welcome_gives_id_and_room_first():
    """The first message is JSON with the connection's id and its room; nothing else is sent."""
    chat = Chat(Hub())
    conn = ws_conn("/room/lobby", name="lobby")
    chat.on_open(conn)
    assert len(conn.sent) == 1
    assert welcome_of(conn) == {"type": "welcome", "id": conn.id, "room": "lobby"}
    assert is_connection_id(welcome_of(conn)["id"])


@pytest.mark.parametrize(
    ("path", "params", "room"),
    [
        ("/chat", {}, "chat"),
        ("/%63hat", {}, "chat"),
        ("/rooms/chat", {}, "rooms/chat"),
        ("/room/dev", {"name": "dev"}, "dev"),
        ("/t/acme/lobby", {"org": "acme", "name": "lobby"}, "acme/lobby"),
        ("/", {}, "chat"),
    ],
)
def test_room_of(path, params, room):
    """Route parameters name the room (joined with '/'); without any, the decoded path does."""
    assert room_of(ws_conn(path, **params)) == room


def test_raw_tcp_welcome_is_a_line():
    """With no HTTP request (raw TCP, telnet) the welcome is a line in room 'chat'."""
    chat = Chat()
    conn = FakeConnection()
    chat.on_open(conn)
    assert conn.sent[0].endswith("\n")
    assert json.loads(conn.sent[0])["room"] == "chat"


def test_relay_within_a_room_not_to_sender_nor_other_rooms():
    """Text and binary go as they are to the other members of the sender's room only."""
    hub = Hub()
    chat = Chat(hub)
    a, b = ws_conn("/room/x", name="x"), ws_conn("/room/x", name="x")
    other = ws_conn("/room/y", name="y")
    for conn in (a, b, other):
        chat.on_open(conn)
    chat.on_message(a, "hello")
    chat.on_message(b, b"\x00\xffraw")
    assert a.sent[1:] == [b"\x00\xffraw"]
    assert b.sent[1:] == ["hello"]
    assert other.sent[1:] == []
    assert sorted(m.id for m in hub.members("chat:x").result) == sorted([a.id, b.id])


def test_close_leaves_the_room():
    """on_close takes the connection out of its channel; later messages skip it."""
    hub = Hub()
    chat = Chat(hub)
    a, b = ws_conn("/chat"), ws_conn("/chat")
    chat.on_open(a)
    chat.on_open(b)
    assert hub.member_count("chat:chat").result == 2
    b.close()
    chat.on_close(b)
    assert hub.member_count("chat:chat").result == 1
    chat.on_message(a, "anyone?")
    assert b.sent[1:] == []


def test_delivery_is_the_hubs_only():
    """Chat hands each message to hub.publish (excluding the sender) and sends nothing itself."""

    class RecordingHub(Hub):
        def __init__(self):
            super().__init__()
            self.published = []

        def publish(self, channel, message, exclude=None):
            self.published.append((channel, message, list(exclude or ())))
            return succeed(0)

    hub = RecordingHub()
    chat = Chat(hub)
    a, b = ws_conn("/room/r", name="r"), ws_conn("/room/r", name="r")
    chat.on_open(a)
    chat.on_open(b)
    result = chat.on_message(a, "via the hub")
    assert result.result == 0  # the Deferred is returned: order and failures per sender
    assert hub.published == [("chat:r", "via the hub", [a.id])]
    assert b.sent[1:] == []


def test_uses_the_connections_hub_by_default():
    """Without a hub given, Chat uses conn.hub (the App's or WsServer's)."""
    hub = Hub()
    chat = Chat()
    a, b = ws_conn("/chat", hub=hub), ws_conn("/chat", hub=hub)
    chat.on_open(a)
    chat.on_open(b)
    assert set(hub.ids()) == {a.id, b.id}
    chat.on_message(b, "hi")
    assert a.sent[1:] == ["hi"]


@pytest.mark.parametrize("room", ["bad\x00name", "x" * 251])
def test_bad_room_closes_with_1008(room):
    """A room name the hub refuses closes with 1008 and a reason; nothing joined, nothing relayed."""
    hub = Hub()
    chat = Chat(hub)
    conn = ws_conn("/room/bad", name=room)
    chat.on_open(conn)
    assert conn.close_code == 1008 and "room name" in conn.close_reason
    assert conn.sent == [] and hub.channels() == []
    assert chat.on_message(conn, "ignored") is None


def test_channel_prefix_separates_chats():
    """Two chats with different prefixes on one hub do not share a room."""
    hub = Hub()
    one, two = Chat(hub), Chat(hub, channel_prefix="other:")
    a, b = ws_conn("/chat"), ws_conn("/chat")
    one.on_open(a)
    two.on_open(b)
    one.on_message(a, "only one")
    assert b.sent[1:] == []
    assert sorted(hub.channels()) == ["chat:chat", "other:chat"]
    with pytest.raises(HubError, match="channel_prefix"):
        Chat(channel_prefix="p" * 300)


def test_demo_endpoint():
    """The page can fill a route with no parameter or one that accepts 'lobby'."""
    assert demo_endpoint("/chat") == {"path": "/chat"}
    assert demo_endpoint("/room/{name}") == {"prefix": "/room/", "suffix": "", "room": "lobby"}
    assert demo_endpoint("/r/{n<[a-z]+>}/live") == {"prefix": "/r/", "suffix": "/live", "room": "lobby"}
    assert demo_endpoint("/r/{id<\\d+>}") is None
    assert demo_endpoint("/r/{a}/{b}") is None


def test_demo_page_embeds_the_endpoint_safely():
    """The endpoint is a JSON literal in the page; '<' cannot close the script tag."""
    body = demo_page("/room/{name}").body
    assert b'{"prefix": "/room/", "suffix": "", "room": "lobby"}' in body
    assert b"__RATCHETPY_WS_PATH__" not in body
    hostile = demo_page("/x</script><script>alert(1)</script>").body
    assert b"</script><script>alert" not in hostile
    assert b"innerHTML" not in body
    with pytest.raises(ValueError, match="at most one parameter"):
        demo_page("/r/{a}/{b}")
