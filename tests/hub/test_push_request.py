"""The publish API's rules as pure functions: plans, bodies, answers (no I/O)."""

from __future__ import annotations

import json

import pytest

from ratchetpy.exceptions import ConfigurationError, PushApiError
from ratchetpy.http.request import Headers
from ratchetpy.hub.push_request import (
    MIN_KEY_LENGTH,
    PushItem,
    body_length,
    check_bearer,
    check_key,
    encode_answer,
    parse_push_body,
    plan_request,
    push_answer,
)

KEY = "k" * 20 + "-secret"


def headers(**fields: str) -> Headers:
    return Headers([(name.replace("_", "-"), value) for name, value in fields.items()])


def authed(**fields: str) -> Headers:
    return headers(Authorization=f"Bearer {KEY}", **fields)


def refused(function, *args) -> PushApiError:
    with pytest.raises(PushApiError) as caught:
        function(*args)
    return caught.value


# -- keys ----------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, ""])
def test_no_key_names_the_fix(key):
    """No key: the message names every way to give one and how to make one."""
    with pytest.raises(ConfigurationError) as caught:
        check_key(key)
    message = str(caught.value)
    assert "--push-key" in message and "RATCHETPY_PUSH_KEY" in message
    assert "secrets.token_urlsafe" in message


def test_short_key_is_refused():
    """Keys under MIN_KEY_LENGTH characters are refused (not just warned about)."""
    with pytest.raises(ConfigurationError, match=f"at least {MIN_KEY_LENGTH}"):
        check_key("x" * (MIN_KEY_LENGTH - 1))
    assert check_key("x" * MIN_KEY_LENGTH) == "x" * MIN_KEY_LENGTH


@pytest.mark.parametrize("key", ["with a space in it!!", "tab\there-long-enough", "é" * 20, 12345678901234567])
def test_key_must_be_header_safe(key):
    with pytest.raises(ConfigurationError):
        check_key(key)


@pytest.mark.parametrize(
    "header, ok",
    [
        (f"Bearer {KEY}", True),
        (f"bearer {KEY}", True),
        (f"BEARER   {KEY}  ", True),
        (f"Bearer {KEY}x", False),
        (f"Bearer {KEY[:-1]}", False),
        (f"Basic {KEY}", False),
        (KEY, False),
        ("Bearer", False),
        ("", False),
        (None, False),
        ("Bearer \xe9\xe9", False),
    ],
)
def test_bearer(header, ok):
    assert check_bearer(header, KEY) is ok


# -- request heads ---------------------------------------------------------------


def test_post_plan():
    plan = plan_request("POST", "/push", "", authed(Content_Length="12"), KEY, 100)
    assert (plan.endpoint, plan.body_length, plan.expect_continue) == ("push", 12, False)
    plan = plan_request("POST", "/push", "/", authed(Content_Length="12", Expect="100-Continue"), KEY, 100)
    assert plan.expect_continue


def test_read_plans():
    plan = plan_request("GET", "/push", "/stats", authed(), KEY, 100)
    assert (plan.endpoint, plan.body_length, plan.head_only) == ("stats", 0, False)
    plan = plan_request("HEAD", "/push", "/channels/room:1/a b", authed(), KEY, 100)
    assert (plan.endpoint, plan.channel, plan.head_only) == ("channel", "room:1/a b", True)


@pytest.mark.parametrize("subpath", ["/nope", "/channels/", "/stats/x", "x"])
def test_unknown_endpoint_is_404_listing_the_endpoints(subpath):
    exc = refused(plan_request, "POST", "/push", subpath, authed(), KEY, 100)
    assert exc.status == 404
    assert "POST /push" in exc.detail and "/push/stats" in exc.detail and "/push/channels/NAME" in exc.detail


@pytest.mark.parametrize(
    "method, subpath, allow",
    [("GET", "", "POST"), ("PUT", "", "POST"), ("DELETE", "/stats", "GET, HEAD"), ("POST", "/channels/a", "GET, HEAD")],
)
def test_other_methods_are_405_with_allow(method, subpath, allow):
    exc = refused(plan_request, method, "/push", subpath, authed(), KEY, 100)
    assert exc.status == 405 and dict(exc.headers)["Allow"] == allow


def test_gates_come_in_order():
    """Endpoint, then method, then key, then channel name, then body length."""
    no_key = headers(Content_Length="10000")
    assert refused(plan_request, "POST", "/push", "/x", no_key, KEY, 100).status == 404
    assert refused(plan_request, "GET", "/push", "", no_key, KEY, 100).status == 405
    assert refused(plan_request, "POST", "/push", "", no_key, KEY, 100).status == 401
    assert refused(plan_request, "GET", "/push", "/channels/a\x01", no_key, KEY, 100).status == 401
    assert refused(plan_request, "GET", "/push", "/channels/a\x01", authed(), KEY, 100).status == 400
    assert refused(plan_request, "POST", "/push", "", authed(Content_Length="10000"), KEY, 100).status == 413


def test_401_says_what_to_send_and_never_the_key():
    missing = refused(plan_request, "POST", "/push", "", headers(), KEY, 100)
    wrong = refused(plan_request, "POST", "/push", "", headers(Authorization="Bearer nope"), KEY, 100)
    assert missing.status == wrong.status == 401
    assert "no key" in missing.detail and "a wrong key" in wrong.detail
    assert "Authorization: Bearer" in wrong.detail and KEY not in wrong.detail
    assert dict(wrong.headers)["WWW-Authenticate"].startswith("Bearer")


def test_odd_channel_names_get_the_hubs_message():
    exc = refused(plan_request, "GET", "/push", "/channels/" + "c" * 300, authed(), KEY, 100)
    assert exc.status == 400 and "at most 255" in exc.detail


@pytest.mark.parametrize(
    "fields, status, words",
    [
        ({}, 411, "Content-Length"),
        ({"Transfer_Encoding": "chunked"}, 411, "Transfer-Encoding"),
        ({"Transfer_Encoding": "chunked", "Content_Length": "5"}, 411, "Transfer-Encoding"),
        ({"Content_Length": "abc"}, 400, "not a number"),
        ({"Content_Length": "-1"}, 400, "not a number"),
        ({"Content_Length": "5, 6"}, 400, "not a number"),
        ({"Content_Length": "١٢"}, 400, "not a number"),
        ({"Content_Length": "101"}, 413, "over the limit of 100 bytes"),
    ],
)
def test_body_length_refusals(fields, status, words):
    exc = refused(body_length, headers(**fields), 100)
    assert exc.status == status and words in exc.detail


def test_body_length_accepts_repeated_equal_values():
    assert body_length(headers(Content_Length="7, 7"), 100) == 7
    assert body_length(headers(Content_Length="100"), 100) == 100


def test_empty_post_body_is_400():
    exc = refused(plan_request, "POST", "/push", "", authed(Content_Length="0"), KEY, 100)
    assert exc.status == 400 and "empty" in exc.detail


# -- bodies ------------------------------------------------------------------------


def parse(document) -> tuple[list[PushItem], bool]:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return parse_push_body(raw)


def test_single_items():
    assert parse({"channel": "news", "data": "hi"}) == ([PushItem("channel", "news", "hi")], False)
    assert parse({"client": "n.1.s", "data": "hi"})[0][0] == PushItem("client", "n.1.s", "hi")
    assert parse({"user": 42, "data": "hi"})[0][0] == PushItem("user", "42", "hi")
    item = parse({"channel": "c", "data": "x", "exclude": ["a", "b"]})[0][0]
    assert item.exclude == ("a", "b")


@pytest.mark.parametrize(
    "data, message",
    [
        ("text", "text"),
        ("", ""),
        ({"b": [1, 2.5, None], "a": "é"}, '{"b":[1,2.5,null],"a":"é"}'),
        ([1, "two"], '[1,"two"]'),
        (3, "3"),
        (True, "true"),
        (None, "null"),
    ],
)
def test_data_string_is_text_other_json_is_its_json_text(data, message):
    assert parse({"channel": "c", "data": data})[0][0].message == message


def test_data_base64_is_binary():
    item = parse({"channel": "c", "data_base64": "AAH/"})[0][0]
    assert item.message == b"\x00\x01\xff" and isinstance(item.message, bytes)


def test_batch():
    items, batch = parse([{"channel": "c", "data": "1"}, {"client": "id", "data_base64": ""}])
    assert batch and [i.target for i in items] == ["channel", "client"]
    assert items[1].message == b""


@pytest.mark.parametrize(
    "body, words",
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (b"channel=news&data=hi", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"channel": "c", "data": NaN}', "NaN is not valid JSON"),
        (b'{"channel": "c", "data": -Infinity}', "-Infinity is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'"hello"', "a JSON object or a list of objects, not a string"),
        (b"null", "not null"),
        (b"[]", "empty list"),
        (b'[{"channel": "c", "data": 1}, 3]', "item 1: must be a JSON object, not a number"),
        (b'{"chanel": "c", "data": 1}', "unknown key 'chanel'"),
        (b'{"data": 1}', "exactly one of channel, client or user (got none)"),
        (b'{"channel": "c", "user": "u", "data": 1}', "(got channel and user)"),
        (b'{"channel": "c"}', "exactly one of data"),
        (b'{"channel": "c", "data": "x", "data_base64": ""}', "exactly one of data"),
        (b'{"channel": "c", "data_base64": "not base64!"}', "not valid base64"),
        (b'{"channel": "c", "data_base64": "\xc3\xa9"}', "not valid base64"),
        (b'{"channel": "c", "data_base64": 5}', "data_base64 must be a string"),
        (b'{"channel": "", "data": 1}', "must not be empty"),
        (b'{"channel": 5, "data": 1}', "must be a string, not int"),
        (b'{"channel": "a\\u0000b", "data": 1}', "control characters"),
        (b'{"user": true, "data": 1}', "user name must be a string"),
        (b'{"client": 5, "data": 1}', "client must be a connection id string"),
        (b'{"client": "", "data": 1}', "client must be a connection id string"),
        (b'{"client": "a", "data": 1, "exclude": []}', "exclude applies to channel and user"),
        (b'{"channel": "c", "data": 1, "exclude": "a"}', "exclude must be a list"),
        (b'{"channel": "c", "data": 1, "exclude": [1]}', "exclude must be a list"),
        (b'[{"channel": "c", "data": 1}, {"channel": "", "data": 1}]', "item 1: a channel name must not be empty"),
    ],
)
def test_bad_bodies_say_what_is_wrong(body, words):
    exc = refused(parse_push_body, body)
    assert exc.status == 400
    assert words in exc.detail


# -- answers -------------------------------------------------------------------------


def test_answers():
    channel, client = PushItem("channel", "c", "x"), PushItem("client", "id", "x")
    assert push_answer([channel], [3], False) == (200, {"delivered": 3})
    assert push_answer([channel], [0], False) == (200, {"delivered": 0})
    assert push_answer([client], [1], False) == (200, {"delivered": 1})
    assert push_answer([client], [0], False) == (404, {"error": "unknown client"})
    assert push_answer([channel, client, client], [2, 0, 1], True) == (
        200,
        [{"delivered": 2}, {"delivered": 0, "error": "unknown client"}, {"delivered": 1}],
    )


def test_encode_answer():
    assert encode_answer({"a": "é"}) == '{"a":"é"}\n'.encode()
