"""The built-in chat's ``session_user_key``: the welcome names the PHP site's user, the hub binds it."""

from __future__ import annotations

import json

import pytest

from ratchetpy.builtins import Chat
from ratchetpy.http.request import parse_request_head
from ratchetpy.hub import Hub
from ratchetpy.session import Session
from ratchetpy.testing import FakeConnection


def opened(chat: Chat, hub: Hub, session: Session | None) -> tuple[FakeConnection, dict]:
    request = parse_request_head(b"GET /chat HTTP/1.1\r\nHost: localhost\r\n\r\n")
    conn = FakeConnection(http_request=request)
    conn.hub = hub
    if session is not None:
        conn.session = session
    chat.on_open(conn)
    return conn, json.loads(conn.sent[0])


def test_the_welcome_carries_the_user_and_the_hub_binds_it():
    hub = Hub()
    chat = Chat(hub, session_user_key="name")
    conn, welcome = opened(chat, hub, Session({"name": "Zoë"}, "a" * 26))
    assert welcome == {"type": "welcome", "id": conn.id, "room": "chat", "user": "Zoë"}
    assert hub.user_of(conn.id) == "Zoë"


def test_symfony_bag_users_and_integer_ids():
    hub = Hub()
    chat = Chat(hub, session_user_key="user_id")
    conn, welcome = opened(chat, hub, Session({"_sf2_attributes": {"user_id": 42}}))
    assert welcome["user"] == "42" and hub.user_of(conn.id) == "42"


@pytest.mark.parametrize(
    "session",
    [None, Session({}), Session({"name": ""}), Session({"name": ["a"]}), Session({"name": True}), Session({"name": "x\n"})],
)
def test_no_usable_user_no_user(session):
    hub = Hub()
    chat = Chat(hub, session_user_key="name")
    conn, welcome = opened(chat, hub, session)
    assert "user" not in welcome and hub.user_of(conn.id) is None


def test_without_the_key_sessions_are_ignored():
    hub = Hub()
    conn, welcome = opened(Chat(hub), hub, Session({"name": "Zoë"}))
    assert "user" not in welcome
