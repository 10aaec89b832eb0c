"""
``twistd ratchetpy`` session flags: parsing, the ini keys, one-line
mistakes, and a real twistd whose built-in chat greets the user PHP logged in.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import string
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock
from websockets.sync.client import connect

from ratchetpy.builtins import Chat
from ratchetpy.session import FilesHandler, MemcachedHandler, RedisHandler, SessionProvider
from ratchetpy.tap import makeService
from ratchetpy.wrapping import wraps_component
from tests.support.php import require_php, run_php
from tests.support.tap import error, parse
from tests.support.timing import seconds


def chats(options) -> list[Chat]:
    return [c for _, c in options["route_components"] if isinstance(c, Chat)]


def test_no_session_flags_no_session():
    assert parse("--route", "/chat")["session"] is None


def test_the_flags_make_the_settings(tmp_path):
    options = parse(
        "--route", "/chat", "--session-handler", f"files:{tmp_path}", "--session-name", "MYSESS",
        "--session-serializer", "php_serialize", "--session-gc-maxlifetime", "3600",
        "--session-user-key", "username",
    )
    settings = options["session"]
    assert isinstance(settings["handler"], FilesHandler) and settings["handler"].prefix == "sess_"
    assert settings["options"] == {"name": "MYSESS", "gc_maxlifetime": 3600}
    assert settings["serializer"] == "php_serialize"
    assert [c.session_user_key for c in chats(options)] == ["username"]


def test_other_stores():
    redis = parse("--route", "/chat", "--session-handler", "redis://127.0.0.1:6379/2?prefix=s:")["session"]
    assert isinstance(redis["handler"], RedisHandler) and redis["handler"].prefixes == ("s:",)
    memcached = parse("--route", "/chat", "--session-handler", "memcached:127.0.0.1:11211")["session"]
    assert isinstance(memcached["handler"], MemcachedHandler)


def test_the_ini_keys_are_the_flags_names(tmp_path):
    ini = tmp_path / "s.ini"
    ini.write_text(
        f"[ratchetpy]\nroute = /chat\nsession-handler = files:{tmp_path}\nsession-name = SID\n"
        "session-user-key = name\n"
    )
    options = parse("--config", str(ini))
    assert options["session"]["options"] == {"name": "SID"}
    assert chats(options)[0].session_user_key == "name"


def test_make_service_puts_a_provider_on_the_websocket_routes_only(tmp_path):
    options = parse("--route", "/chat", "--route", "/echo", "--session-handler", f"files:{tmp_path}")
    app = makeService(options, MemoryReactorClock())
    assert len(app.session_providers) == 2
    assert app.session_providers[0].handler is app.session_providers[1].handler  # one store connection
    routed = {route.path: route.controller for route in app.router.routes}
    # OriginCheck -> SessionProvider -> WsServer, as in Ratchet; not the demo page
    assert isinstance(routed["/chat"].component, SessionProvider)
    assert isinstance(routed["/echo"].component, SessionProvider)
    assert not any(wraps_component(routed["/"], p) for p in app.session_providers)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--session-handler", "mysql://x"), "--session-handler mysql://x: unknown session handler"),
        (("--session-handler", "files:/no/such/dir"), "/no/such/dir is not a directory; give PHP's session.save_path"),
        (("--session-handler", "memcached:h:0"), "the port must be 1-65535"),
        (("--session-name", "PHPSESSID"), "--session-name is set but --session-handler is not"),
        (("--session-user-key", "name"), "--session-user-key is set but --session-handler is not"),
        (("--laravel-key", "base64:x"), "--laravel-key is set but --session-handler is not"),
        (("--laravel-cipher", "aes-256-gcm"), "--laravel-cipher is set but --session-handler is not"),
        (("--session-handler", "files:/tmp", "--laravel-cipher", "aes-256-gcm"), "--laravel-cipher is set but no Laravel key is"),
        (("--session-handler", "files:/tmp", "--session-name", "a b"), "--session-name 'a b': give the session cookie's name"),
        (("--session-handler", "files:/tmp", "--session-serializer", "igbinary"), "one of php, php_binary, php_serialize"),
        (("--session-handler", "files:/tmp", "--session-gc-maxlifetime", "0"), "--session-gc-maxlifetime '0': give PHP's"),
        (("--session-handler", "files:/tmp", "--session-user-key", " "), "--session-user-key is empty"),
    ],
)
def test_mistakes_are_one_line_naming_the_flag(args, expected):
    assert expected in error("--route", "/chat", *args)


def test_the_user_key_needs_a_built_in_chat():
    assert "no built-in chat is routed" in error(
        "--route", "/echo", "--session-handler", "files:/tmp", "--session-user-key", "name"
    )


def php_logged_in(tmp_path: Path, serialize_handler: str = "php") -> tuple[Path, str]:
    """PHP (files handler) stores a session with ``name`` Zoë; returns its directory and id."""
    require_php("session")
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    sid = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(32))
    run_php(
        "<?php session_id($argv[1]); session_start(); $_SESSION['name'] = 'Zoë'; session_write_close();",
        ini={
            "session.save_handler": "files",
            "session.save_path": str(sessions),
            "session.serialize_handler": serialize_handler,
        },
        args=[sid],
    )
    return sessions, sid


@pytest.mark.slow
def test_a_twistd_chat_greets_the_user_php_logged_in(twistd, tmp_path):
    sessions, sid = php_logged_in(tmp_path)
    os.chmod(sessions / f"sess_{sid}", 0o640)
    server = twistd(
        "--route", "/chat", "--session-handler", f"files:{sessions}", "--session-user-key", "name",
    )
    server.wait_listening()
    url = f"ws://127.0.0.1:{server.port}/chat"
    with connect(url, additional_headers={"Cookie": f"PHPSESSID={sid}"}, open_timeout=seconds(10)) as ws:
        welcome = json.loads(ws.recv(timeout=seconds(10)))
    assert welcome["type"] == "welcome" and welcome["user"] == "Zoë"
    with connect(url, open_timeout=seconds(10)) as ws:
        anonymous = json.loads(ws.recv(timeout=seconds(10)))
    assert "user" not in anonymous


def test_the_laravel_key_from_the_environment(tmp_path, monkeypatch):
    key = "base64:" + base64.b64encode(b"k" * 32).decode()
    monkeypatch.setenv("RATCHETPY_LARAVEL_KEY", key)
    settings = parse("--route", "/chat", "--session-handler", f"files:{tmp_path}")["session"]
    assert settings["laravel_key"] == key
    assert settings["handler"].prefix == ""  # Laravel's files are named by the id alone
    options = parse(
        "--route", "/chat", "--session-handler", f"files:{tmp_path}", "--laravel-cipher", "AES-256-GCM"
    )
    provider = makeService(options, MemoryReactorClock()).session_providers[0]
    assert provider.laravel and provider.name == "laravel_session"
    assert provider.encrypter.cipher == "aes-256-gcm"


def test_a_bad_laravel_key_is_one_line_naming_where_it_came_from(tmp_path, monkeypatch):
    message = error("--route", "/chat", "--session-handler", f"files:{tmp_path}", "--laravel-key", "base64:c2hvcnQ=")
    assert message.startswith("twistd ratchetpy: error: --laravel-key: ") and "APP_KEY" in message
    assert "c2hvcnQ" not in message  # never the key itself
    monkeypatch.setenv("RATCHETPY_LARAVEL_KEY", "not-base64-and-too-short")
    message = error("--route", "/chat", "--session-handler", f"files:{tmp_path}")
    assert "RATCHETPY_LARAVEL_KEY: " in message
    assert "--laravel-cipher 'aes-512': give the Laravel app's config/app.php 'cipher'" in error(
        "--route", "/chat", "--session-handler", f"files:{tmp_path}", "--laravel-cipher", "aes-512"
    )
    assert "memcached session store is not supported" in error(
        "--route", "/chat", "--session-handler", "memcached:127.0.0.1:11211"
    )


@pytest.mark.slow
def test_the_demo_page_says_hello_to_the_php_user(twistd, tmp_path):
    """No code: the built-in chat's page, in Chromium with the PHP session cookie, greets the user."""
    from tests.integration.test_demo_browser import CHROMIUM, chromium
    from tests.support.ci import require_tool

    require_tool(CHROMIUM is not None, "chromium is not installed", "apt-get install chromium (.ci/run does)")
    sessions, sid = php_logged_in(tmp_path, serialize_handler="php_binary")
    server = twistd("--route", "/chat", "--session-handler", f"files:{sessions}", "--session-user-key", "name")
    server.wait_listening()
    with chromium(tmp_path) as tools:
        tools.call("Storage.setCookies", cookies=[
            {"name": "PHPSESSID", "value": sid, "domain": "127.0.0.1", "path": "/", "httpOnly": True},
        ])
        target = tools.call("Target.createTarget", url=f"http://127.0.0.1:{server.port}/")["targetId"]
        page = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        hello = tools.wait_for(
            page, "(document.querySelector('#log li.hello') || {}).textContent", "the page's hello"
        )
    assert hello == "Hello Zoë!"
