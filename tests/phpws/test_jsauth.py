"""The phpws session check (``jsauth``): PHP session files gate every client."""

from __future__ import annotations

import json

import pytest

from ratchetpy.exceptions import ConfigurationError
from ratchetpy.http.request import parse_request_head
from ratchetpy.phpws import JsAuth, PhpWsSettings
from ratchetpy.phpws.jsauth import php_truthy
from tests.phpws.support import PhpWsMemory, phpws_request
from tests.support.php import run_php

SID = "abcdef0123456789abcdef0123"


def request(cookie: str | None):
    extra = f"Cookie: theme=dark; PHPSESSID={cookie}\r\n" if cookie is not None else ""
    return parse_request_head(phpws_request("/web", extra=extra))


@pytest.fixture
def sessions(tmp_path):
    (tmp_path / f"sess_{SID}").write_bytes(b'user|s:3:"bob";allowconnect|b:1;')
    (tmp_path / "sess_denied0123456789abcdef").write_bytes(b'allowconnect|s:1:"0";')
    return tmp_path


def test_a_truthy_key_passes_and_anything_else_says_why(sessions):
    auth = JsAuth(str(sessions), "allowconnect")
    assert auth.check(request(SID)) is None
    assert auth.check(request(None)) == "no PHPSESSID cookie"
    assert "not a PHP session id" in auth.check(request("../../etc/passwd"))
    assert "no such session" in auth.check(request("unknown0123456789"))
    assert auth.check(request("denied0123456789abcdef")) == "the session's 'allowconnect' is not set"
    assert "is not set" in JsAuth(str(sessions), "admin").check(request(SID))


def test_php_truthiness():
    assert [php_truthy(v) for v in ("", "0", 0, 0.0, False, None, {}, [])] == [False] * 8
    assert [php_truthy(v) for v in ("1", "no", 1, 2.5, True, {"a": 1}, [0])] == [True] * 7


def test_configuration_is_checked(tmp_path):
    with pytest.raises(ConfigurationError, match="is not a directory"):
        JsAuth(str(tmp_path / "missing"), "allowconnect")
    with pytest.raises(ConfigurationError, match="needs the session key"):
        JsAuth(str(tmp_path), "")


def test_clients_without_a_good_session_are_closed_php_ones_too(sessions):
    server = PhpWsMemory(PhpWsSettings(jsauth=JsAuth(str(sessions), "allowconnect")))
    allowed = server.connect("/web", extra=f"Cookie: PHPSESSID={SID}\r\n")
    assert json.loads(allowed.payloads()[0])["opcode"] == "ready"
    refused = server.connect("/web")
    assert refused.payloads() == [b'{"opcode":"close","error":"Not authorized"}']
    assert not refused.connected
    claims_php = server.connect("/php", php=True)
    server.advance(0.2)
    assert claims_php.payloads() == [b'{"opcode":"close","error":"Not authorized"}']
    assert not claims_php.connected


@pytest.mark.slow
@pytest.mark.parametrize(("value", "passes"), [("true", True), ("'yes'", True), ("false", False), ("0", False)])
def test_sessions_written_by_php(tmp_path, value, passes):
    done = run_php(
        f"<?php session_start(); $_SESSION['user'] = ['id' => 7]; $_SESSION['allowconnect'] = {value};"
        " echo session_id(); session_write_close();",
        ini={"session.save_path": str(tmp_path), "session.use_cookies": "0", "session.serialize_handler": "php"},
    )
    session_id = done.stdout.decode().strip()
    assert (JsAuth(str(tmp_path), "allowconnect").check(request(session_id)) is None) is passes
