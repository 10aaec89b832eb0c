"""``twistd ratchetpy --chat-history N``: parsing, the ini key, mistakes, and a real twistd whose chat page recovers."""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest
from websockets.sync.client import connect

from ratchetpy.builtins import Chat
from tests.support.tap import error, parse
from tests.support.timing import seconds


def chats(options) -> list[Chat]:
    return [c for _, c in options["route_components"] if isinstance(c, Chat)]


def test_the_flag_gives_every_built_in_chat_history():
    options = parse("--route", "/chat", "--route", "/room/{name}=chat", "--chat-history", "20")
    assert [c.history.size for c in chats(options)] == [20, 20]
    assert all(c.history is None for c in chats(parse("--route", "/chat")))
    assert all(c.history is None for c in chats(parse("--route", "/chat", "--chat-history", "0")))


def test_the_ini_key_is_the_flags_name(tmp_path):
    ini = tmp_path / "chat.ini"
    ini.write_text("[ratchetpy]\nroute = /chat\nchat-history = 7\n")
    assert chats(parse("--config", str(ini)))[0].history.size == 7
    assert chats(parse("--config", str(ini), "--chat-history", "3"))[0].history.size == 3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--route", "/chat", "--chat-history", "lots"), "--chat-history 'lots': give how many messages"),
        (("--route", "/chat", "--chat-history", "-5"), "--chat-history '-5': give how many"),
        (("--route", "/chat", "--chat-history", "99999999"), "--chat-history 99999999: history size"),
        (("--route", "/echo", "--chat-history", "5"), "no built-in chat is routed; add --route /chat"),
    ],
)
def test_mistakes_are_one_line_naming_the_flag(args, expected):
    assert expected in error(*args)


@pytest.mark.slow
def test_a_twistd_chat_page_recovers_what_it_missed(twistd):
    server = twistd("--route", "/chat", "--chat-history", "10")
    server.wait_listening()
    url = f"ws://127.0.0.1:{server.port}/chat"
    with ExitStack() as stack:
        plain = stack.enter_context(connect(url, open_timeout=seconds(5)))
        plain.recv(timeout=seconds(5))
        with connect(url + "?positions=1", open_timeout=seconds(5)) as page:
            welcome = json.loads(page.recv(timeout=seconds(5)))
            assert welcome["positions"] is True
            page.send(json.dumps({"type": "recover"}))
            start = json.loads(page.recv(timeout=seconds(5)))
            plain.send("one")
            one = json.loads(page.recv(timeout=seconds(5)))
            assert (one["data"], one["offset"]) == ("one", start["offset"] + 1)
        plain.send("two")
        plain.send("three")
        with connect(url + "?positions=1", open_timeout=seconds(5)) as page:
            page.recv(timeout=seconds(5))
            page.send(json.dumps({"type": "recover", "epoch": one["epoch"], "offset": one["offset"]}))
            got = [json.loads(page.recv(timeout=seconds(5))) for _ in range(3)]
        assert [m.get("data") for m in got] == ["two", "three", None]
        assert got[-1]["type"] == "recovered" and got[-1]["missed"] == 2
