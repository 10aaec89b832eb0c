"""The built-in chat with history, in memory: the positioned protocol beside the plain relay."""

from __future__ import annotations

import json

import pytest

from ratchetpy.builtins import Chat
from ratchetpy.http.request import parse_request_head
from ratchetpy.hub import Hub, HubError
from ratchetpy.testing import FakeConnection


def client(chat: Chat, path: str = "/chat") -> FakeConnection:
    request = parse_request_head(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    request.route_params = {}
    conn = FakeConnection(http_request=request)
    chat.on_open(conn)
    return conn


def jsons(conn: FakeConnection) -> list[dict]:
    return [json.loads(m) for m in conn.sent]


def say(chat: Chat, conn: FakeConnection, text: str | bytes) -> None:
    chat.on_message(conn, text)


def test_without_history_positions_are_not_offered_and_the_relay_stays_raw():
    chat = Chat(Hub())
    asker, other = client(chat, "/chat?positions=1"), client(chat)
    assert "positions" not in jsons(asker)[0]
    say(chat, other, '{"type": "recover"}')
    assert asker.sent[1:] == ['{"type": "recover"}']


def test_positioned_and_plain_clients_share_a_room():
    hub = Hub()
    chat = Chat(hub, history=10)
    assert hub.history_policy("chat:chat").size == 10
    page, plain = client(chat, "/chat?positions=1"), client(chat)
    assert jsons(page)[0]["positions"] is True and "positions" not in jsons(plain)[0]
    say(chat, page, '{"type": "recover"}')
    start = jsons(page)[1]
    assert start == {"type": "recovered", "epoch": start["epoch"], "offset": 0, "missed": 0}
    say(chat, plain, "hello")
    say(chat, plain, b"\x00bin")
    say(chat, page, "from the page")
    assert jsons(page)[2:] == [
        {"type": "message", "epoch": start["epoch"], "offset": 1, "data": "hello"},
        {"type": "message", "epoch": start["epoch"], "offset": 2, "base64": "AGJpbg=="},
    ]
    assert plain.sent[1:] == ["from the page"]  # the tutorial's relay, untouched


def test_a_page_that_comes_back_gets_what_it_missed_without_its_own_messages():
    chat = Chat(Hub(), history=10)
    page, plain = client(chat, "/chat?positions=1"), client(chat)
    say(chat, page, '{"type": "recover"}')
    epoch = jsons(page)[1]["epoch"]
    say(chat, plain, "seen")
    say(chat, page, "mine")
    chat.on_close(page)
    page.close()
    say(chat, plain, "missed 1")
    say(chat, plain, "missed 2")
    back = client(chat, "/chat?positions=1")
    say(chat, back, json.dumps({"type": "recover", "epoch": epoch, "offset": 1, "id": page.id}))
    got = jsons(back)[1:]
    assert [(m["type"], m.get("data")) for m in got] == [
        ("message", "missed 1"),
        ("message", "missed 2"),
        ("recovered", None),
    ]
    assert got[-1] == {"type": "recovered", "epoch": epoch, "offset": 4, "missed": 2}
    say(chat, plain, "live")
    assert jsons(back)[-1]["data"] == "live" and jsons(back)[-1]["offset"] == 5


def test_an_unknown_epoch_or_a_trimmed_gap_gets_a_reset():
    chat = Chat(Hub(), history=2)
    plain = client(chat)
    for i in range(5):
        say(chat, plain, f"m{i}")
    page = client(chat, "/chat?positions=1")
    say(chat, page, '{"type": "recover", "epoch": "gone", "offset": 3}')
    reset = jsons(page)[1]
    assert reset["type"] == "reset" and reset["offset"] == 5 and reset["epoch"] != "gone"
    trimmed = client(chat, "/chat?positions=1")
    say(chat, trimmed, json.dumps({"type": "recover", "epoch": reset["epoch"], "offset": 1}))
    assert jsons(trimmed)[1]["type"] == "reset"
    ok = client(chat, "/chat?positions=1")
    say(chat, ok, json.dumps({"type": "recover", "epoch": reset["epoch"], "offset": 3}))
    assert [m.get("data") for m in jsons(ok)[1:]] == ["m3", "m4", None]


@pytest.mark.parametrize(
    "bad",
    [
        '{"type": "recover", "epoch": "e"}',
        '{"type": "recover", "epoch": 5, "offset": 1}',
        '{"type": "recover", "epoch": "e", "offset": -1}',
        '{"type": "recover", "epoch": "e", "offset": 1, "id": 7}',
    ],
)
def test_a_bad_recover_message_closes_with_1008_and_a_reason(bad):
    chat = Chat(Hub(), history=5)
    page, plain = client(chat, "/chat?positions=1"), client(chat)
    say(chat, page, bad)
    assert page.close_code == 1008 and "recover" in page.close_reason
    assert plain.sent[1:] == []


def test_a_positioned_client_that_starts_with_a_message_joins_then_speaks():
    chat = Chat(Hub(), history=5)
    page, plain = client(chat, "/chat?positions=1"), client(chat)
    say(chat, page, "hi all")
    assert plain.sent[1:] == ["hi all"]
    assert jsons(page)[1]["type"] == "recovered"  # its starting position


def test_history_options_are_checked():
    with pytest.raises(HubError, match="size"):
        Chat(history=-1)
    with pytest.raises(HubError, match="ttl"):
        Chat(history=5, history_ttl=0)
    chat = Chat(history=5)
    chat.keep_history(0)
    assert chat.history is None
