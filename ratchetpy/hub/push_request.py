# -*- test-case-name: tests.hub.test_push_request -*-
"""
The publish API's rules, without I/O: what a request asks for, and what
to answer when it is wrong.

``PushApi`` (``ratchetpy.hub.pushapi``) reads bytes and writes responses;
everything it decides is decided here, from plain values, so each rule is
tested on its own:

- :func:`plan_request`: the endpoint, the method, the key, the channel
  name and the body's length, in that order; the first that is wrong
  raises ``PushApiError`` with the status and the message to send.
- :func:`parse_push_body`: the JSON body as ``PushItem`` objects (one, or
  a batch), checked whole before anything is sent.
- :func:`push_answer`: the status and JSON answer for what was delivered.

Endpoints, under the API's base path (``/push`` below):

=========================  ======  ==========================================
``POST /push``             push    ``{"channel"|"client"|"user": ..., "data": ...}`` or a list
``GET /push/stats``        stats   ``Hub.stats()``
``GET /push/channels/C``   count   ``{"channel": C, "member_count": n}``
=========================  ======  ==========================================
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..exceptions import ConfigurationError, PushApiError
from .hub import HubError, check_name

__all__ = [
    "PushItem",
    "RequestPlan",
    "PushApiError",
    "MIN_KEY_LENGTH",
    "TARGETS",
    "check_key",
    "check_bearer",
    "body_length",
    "plan_request",
    "parse_push_body",
    "push_answer",
    "encode_answer",
]

MIN_KEY_LENGTH = 16
"""Shortest key accepted: shorter ones are refused at configuration time."""

TARGETS = ("channel", "client", "user")
"""The keys naming who a push item goes to; an item has exactly one."""

_KNOWN_KEYS = (*TARGETS, "data", "data_base64", "exclude")
_KEY_FIX = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"

Endpoint = Literal["push", "stats", "channel"]


@dataclass(frozen=True)
class PushItem:
    """
    One message to deliver.

    Attributes:
        target: ``"channel"``, ``"client"`` or ``"user"``.
        name: the channel name, connection id or user name.
        message: ``str`` (a text message) or ``bytes`` (binary).
        exclude: connection ids not to send to (channel and user targets).
    """

    target: Literal["channel", "client", "user"]
    name: str
    message: str | bytes
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestPlan:
    """
    What an accepted request head asks for.

    Attributes:
        endpoint: ``"push"``, ``"stats"`` or ``"channel"``.
        channel: the channel name (``"channel"`` endpoint only).
        body_length: bytes of body to read (0 for the read endpoints).
        expect_continue: the client waits for ``100 Continue`` before
            sending its body (``Expect: 100-continue``, as curl sends).
        head_only: a ``HEAD`` request: answer without a body.
    """

    endpoint: Endpoint
    channel: str | None = None
    body_length: int = 0
    expect_continue: bool = False
    head_only: bool = False


def check_key(key: object) -> str:
    """
    ``key`` as a publish API key, or ``ConfigurationError`` naming the fix.

    A key is at least ``MIN_KEY_LENGTH`` characters of printable ASCII
    without spaces (it travels in an HTTP header).
    """
    if key is None or key == "":
        raise ConfigurationError(
            "the publish API needs a key: App.push_api(path, key=...) / --push-key KEY / "
            f"RATCHETPY_PUSH_KEY; {_KEY_FIX}"
        )
    if not isinstance(key, str):
        raise ConfigurationError(f"the publish API key must be a str, not {type(key).__name__}")
    if not all("!" <= c <= "~" for c in key):
        raise ConfigurationError(
            "the publish API key must be printable ASCII without spaces (it is sent in the "
            f"Authorization header); {_KEY_FIX}"
        )
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigurationError(
            f"the publish API key is {len(key)} characters; use at least {MIN_KEY_LENGTH}: "
            + _KEY_FIX
        )
    return key


def check_bearer(authorization: str | None, key: str) -> bool:
    """
    True if ``authorization`` is ``Bearer <key>`` (the scheme in any case).

    The key is compared in constant time (``hmac.compare_digest``), so
    response times tell nothing about how much of a guess was right.
    """
    if not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Headers are read as latin-1; a key is ASCII, so bytes compare exactly.
    return hmac.compare_digest(token.strip().encode("latin-1"), key.encode("ascii"))


def body_length(headers: Mapping[str, str], max_body: int) -> int:
    """
    The length of a request body from its head.

    Raises:
        PushApiError: 411 for a chunked body or no ``Content-Length``, 400
            for a malformed one, 413 for one over ``max_body`` bytes.
    """
    if "transfer-encoding" in headers:
        raise PushApiError(
            f"Transfer-Encoding {headers['transfer-encoding']!r} is not accepted: send the "
            "body with a Content-Length (curl -d / --data-binary and PHP's stream context "
            "with a 'content' string do)",
            status=411,
        )
    if "content-length" not in headers:
        raise PushApiError(
            "a POST needs a Content-Length header and a JSON body", status=411
        )
    values = {v.strip() for v in headers["content-length"].split(",")}
    value = values.pop() if len(values) == 1 else ""
    if not value.isdigit() or not value.isascii():
        raise PushApiError(
            f"Content-Length {headers['content-length'][:40]!r} is not a number of bytes"
        )
    length = int(value)
    if length > max_body:
        raise PushApiError(
            f"the body is {length} bytes, over the limit of {max_body} bytes: send smaller "
            "batches (the server's limit is App.push_api(max_body=...))",
            status=413,
        )
    return length


def _endpoint(base: str, subpath: str) -> tuple[Endpoint, str | None]:
    if subpath in ("", "/"):
        return "push", None
    if subpath == "/stats":
        return "stats", None
    if subpath.startswith("/channels/") and len(subpath) > len("/channels/"):
        return "channel", subpath[len("/channels/") :]
    raise PushApiError(
        f"no endpoint {base}{subpath[:100]}: the publish API has POST {base}, "
        f"GET {base}/stats and GET {base}/channels/NAME",
        status=404,
    )


def plan_request(
    method: str,
    base: str,
    subpath: str,
    headers: Mapping[str, str],
    key: str,
    max_body: int,
) -> RequestPlan:
    """
    Check a request head: endpoint (404), method (405), key (401), channel
    name (400), body length (411/400/413), in that order.

    Args:
        method: the request method.
        base: the API's base path (``/push``), for messages.
        subpath: the percent-decoded path after ``base`` (``""``,
            ``/stats``, ``/channels/room:1``).
        headers: the request's header fields (case-insensitive).
        key: the key the ``Authorization: Bearer`` header must carry.
        max_body: the largest body accepted, in bytes.

    Raises:
        PushApiError: with the status and message to answer.
    """
    endpoint, channel = _endpoint(base, subpath)
    allowed = ("POST",) if endpoint == "push" else ("GET", "HEAD")
    if method not in allowed:
        raise PushApiError(
            f"{method} is not allowed on {base}{subpath}: use {' or '.join(allowed)}",
            status=405,
            headers=[("Allow", ", ".join(allowed))],
        )
    if not check_bearer(headers.get("authorization"), key):
        what = "no" if "authorization" not in headers else "a wrong"
        raise PushApiError(
            f"{what} key: send the header 'Authorization: Bearer <key>' with the server's "
            "push key",
            status=401,
            headers=[("WWW-Authenticate", 'Bearer realm="ratchetpy"')],
        )
    if channel is not None:
        try:
            channel = check_name("channel", channel)
        except HubError as exc:
            raise PushApiError(str(exc)) from exc
    if endpoint != "push":
        # A body sent with GET is read and ignored, so it cannot be taken
        # for the next request.
        length = _declared_length(headers)
        return RequestPlan(endpoint, channel, length, head_only=method == "HEAD")
    length = body_length(headers, max_body)
    if length == 0:
        raise PushApiError('the body is empty: send JSON such as {"channel": "news", "data": "hi"}')
    expect = headers.get("expect", "").strip().lower() == "100-continue"
    return RequestPlan(endpoint, None, length, expect_continue=expect)


def _declared_length(headers: Mapping[str, str]) -> int:
    value = headers.get("content-length", "0").strip()
    return int(value) if value.isdigit() and value.isascii() else 0


# -- bodies ------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def parse_push_body(body: bytes) -> tuple[list[PushItem], bool]:
    """
    The push items of a request body, and whether it was a batch.

    The body is a JSON object, or a non-empty list of them (a batch). Each
    has exactly one of ``channel``, ``client`` (a connection id) or
    ``user``, and exactly one of ``data`` (a string goes out as a text
    message, any other JSON value as its JSON text) or ``data_base64``
    (standard base64: a binary message); ``exclude`` is an optional list
    of connection ids (channel and user targets). A batch is checked
    whole: one bad item refuses all of it, naming the item.

    Raises:
        PushApiError: 400, saying what is wrong.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PushApiError(f"the body is not UTF-8 (byte {exc.start}); send JSON text") from exc
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise PushApiError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except ValueError as exc:
        raise PushApiError(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PushApiError("the body is not acceptable JSON: nested too deeply") from exc
    if isinstance(document, dict):
        return [_item(document, "")], False
    if isinstance(document, list):
        if not document:
            raise PushApiError("the batch is an empty list: send at least one item")
        return [_item(entry, f"item {i}: ") for i, entry in enumerate(document)], True
    raise PushApiError(
        f"the body must be a JSON object or a list of objects, not {_json_type(document)}"
    )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _item(entry: object, where: str) -> PushItem:
    if not isinstance(entry, dict):
        raise PushApiError(f"{where}must be a JSON object, not {_json_type(entry)}")
    unknown = [k for k in entry if k not in _KNOWN_KEYS]
    if unknown:
        raise PushApiError(
            f"{where}unknown key {unknown[0][:50]!r}; the keys are {', '.join(_KNOWN_KEYS)}"
        )
    targets = [t for t in TARGETS if t in entry]
    if len(targets) != 1:
        given = f"got {' and '.join(targets)}" if targets else "got none"
        raise PushApiError(f"{where}give exactly one of channel, client or user ({given})")
    target = targets[0]
    try:
        if target == "client":
            name = _client_id(entry["client"], where)
        else:
            name = check_name(target, entry[target])
    except HubError as exc:
        raise PushApiError(f"{where}{exc}") from exc
    message = _message(entry, where)
    exclude: tuple[str, ...] = ()
    if "exclude" in entry:
        if target == "client":
            raise PushApiError(f"{where}exclude applies to channel and user targets, not client")
        exclude = _exclude(entry["exclude"], where)
    return PushItem(target, name, message, exclude)  # type: ignore[arg-type]


def _client_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PushApiError(
            f"{where}client must be a connection id string (conn.id), not {_json_type(value)}"
        )
    if len(value) > 255 or not value.isprintable():
        raise PushApiError(f"{where}client {value[:50]!r}... is not a connection id")
    return value


def _message(entry: dict[str, Any], where: str) -> str | bytes:
    if ("data" in entry) == ("data_base64" in entry):
        raise PushApiError(
            f"{where}give exactly one of data (text or any JSON value) or data_base64 (binary)"
        )
    if "data" in entry:
        data = entry["data"]
        if isinstance(data, str):
            return data
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    encoded = entry["data_base64"]
    if not isinstance(encoded, str):
        raise PushApiError(f"{where}data_base64 must be a string, not {_json_type(encoded)}")
    try:
        return base64.b64decode(encoded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise PushApiError(f"{where}data_base64 is not valid base64: {exc}") from exc


def _exclude(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PushApiError(f"{where}exclude must be a list of connection id strings")
    return tuple(value)


# -- answers -----------------------------------------------------------------


def push_answer(
    items: Sequence[PushItem], delivered: Sequence[int], batch: bool
) -> tuple[int, Any]:
    """
    The status and JSON answer once every item was handed to the hub.

    A single item answers ``200 {"delivered": n}``, or ``404 {"error":
    "unknown client"}`` for a client nobody holds. A batch answers 200 with
    a list holding that object for each item, in order (an unknown client
    is ``{"delivered": 0, "error": "unknown client"}``).
    """
    results: list[dict[str, Any]] = []
    for item, count in zip(items, delivered, strict=True):
        if item.target == "client" and not count:
            results.append({"delivered": 0, "error": "unknown client"})
        else:
            results.append({"delivered": count})
    if batch:
        return 200, results
    if "error" in results[0]:
        return 404, {"error": "unknown client"}
    return 200, results[0]


def encode_answer(document: Any) -> bytes:
    """A JSON answer as sent: compact UTF-8 with a final newline (for curl)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
