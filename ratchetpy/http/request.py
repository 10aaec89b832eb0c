# -*- test-case-name: tests.http.test_http -*-
"""
HTTP/1.x request heads: a strict parser and the ``Request`` it produces.

Only the head is parsed (request line and header fields, RFC 9112 §2–5):
a WebSocket handshake has no body, and anything after the blank line is
handed on untouched to the next layer. :func:`find_head_end` finds that
blank line exactly as :func:`parse_request_head` reads it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qsl

from ..exceptions import BadRequest, HttpError

__all__ = [
    "Headers",
    "Request",
    "find_head_end",
    "normalize_authority",
    "parse_request_head",
    "parse_cookies",
]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_FIELD_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

# The blank line ending a head, as parse_request_head reads lines: split at
# LF, one CR before it dropped. So CRLFCRLF, LFLF, CRLF LF and LF CRLF all end
# a head; every form starts at an LF and is at most 3 bytes long.
_HEAD_END = re.compile(rb"\n\r?\n")
_HEAD_END_MAX = 3

_SCHEMES = ("http", "https", "ws", "wss")
# absolute-URI with an authority (RFC 3986 §3): scheme "://" authority rest.
_ABSOLUTE_FORM = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)
# host [":" port] (RFC 3986 §3.2.2-3): an IPv6 literal in brackets or a
# reg-name (which covers IPv4), then at most 5 port digits.
_AUTHORITY = re.compile(
    r"(\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+)(?::([0-9]{0,5}))?"
)


def find_head_end(buffer: bytes | bytearray, searched: int = 0) -> int:
    """
    Find the blank line that ends a request head in ``buffer``.

    The head ends at the first empty line, whatever mix of CRLF and bare LF
    ends it and the line before (``\\r\\n\\r\\n``, ``\\n\\n``,
    ``\\r\\n\\n``, ``\\n\\r\\n``): exactly where
    :func:`parse_request_head` stops reading.

    Args:
        buffer: the bytes received so far.
        searched: how many leading bytes of ``buffer`` were already searched
            without success (its length before the latest read); a
            terminator straddling that boundary is still found.

    Returns:
        The index just past the terminator, or -1 if the head is incomplete.
    """
    match = _HEAD_END.search(buffer, max(0, searched - (_HEAD_END_MAX - 1)))
    return -1 if match is None else match.end()


def normalize_authority(value: str) -> str | None:
    """
    Check ``value`` as ``host[:port]`` (a Host field or a URL's authority).

    The host is a registered name or IPv4 address (RFC 3986 characters and
    %-escapes) or a bracketed IPv6 address; the port, if any, at most 5
    digits. Userinfo (``user@host``) is not accepted.

    Returns:
        ``value`` with an empty port (``"host:"``) dropped, or ``None`` if
        it is not a valid ``host[:port]``.
    """
    match = _AUTHORITY.fullmatch(value)
    if match is None:
        return None
    host, port = match.group(1), match.group(2)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
    return host if not port else f"{host}:{port}"


def _split_target(target: str) -> tuple[str | None, str]:
    # (authority, path-and-query) of a request-target checked by
    # _check_target: the authority is None unless it is in absolute-form.
    if target.startswith("/"):
        return None, target
    match = _ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        return None, target
    rest = match.group(3)
    # An empty path means "/" (RFC 9110 §4.2.3).
    return match.group(2), rest if rest.startswith("/") else "/" + rest


def _check_target(method: str, target: str) -> None:
    # RFC 9112 §3.2: origin-form and absolute-form are for any method,
    # authority-form only for CONNECT and asterisk-form only for OPTIONS.
    if target.startswith("/"):
        return
    if target == "*":
        if method == "OPTIONS":
            return
        raise BadRequest(
            f"request-target '*' is only valid with OPTIONS, not {method}; "
            "send a path such as '/chat'"
        )
    match = _ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        if method == "CONNECT":
            raise HttpError(
                f"CONNECT {target[:100]!r}: this server is not a proxy", status=501
            )
        raise BadRequest(
            f"request-target {target[:100]!r} is neither a path ('/chat') nor an "
            "absolute URL ('http://host/chat'); a bare 'host:port' is for CONNECT only"
        )
    scheme, authority = match.group(1), match.group(2)
    if scheme.lower() not in _SCHEMES:
        raise BadRequest(
            f"request-target scheme {scheme[:20]!r} is not served here "
            f"(use one of {', '.join(_SCHEMES)}, or a path such as '/chat')"
        )
    if "@" in authority:
        # RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
        raise BadRequest("request-target carries userinfo ('user@'); send no credentials in the URL")
    if normalize_authority(authority) is None:
        raise BadRequest(
            f"request-target {target[:100]!r} has no valid host[:port] after '{scheme}://'"
        )


class Headers(Mapping[str, str]):
    """
    Case-insensitive, ordered, multi-valued header fields.

    ``headers["Cookie"]`` joins repeated fields with ``", "``;
    ``get_all(name)`` returns each value; iteration yields each name once,
    lower-cased.
    """

    __slots__ = ("_items", "_index_cache")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = list(items or ())
        self._index_cache: dict[str, list[str]] | None = None

    @property
    def _index(self) -> dict[str, list[str]]:
        # Built on first lookup and dropped by _compact(): a long-lived
        # WebSocket connection keeps its request, rarely its header lookups.
        index = self._index_cache
        if index is None:
            index = {}
            for name, value in self._items:
                index.setdefault(name.lower(), []).append(value)
            self._index_cache = index
        return index

    def _compact(self) -> None:
        """Free the lookup index (rebuilt on the next lookup) to save memory."""
        self._index_cache = None

    def __getitem__(self, name: str) -> str:
        return ", ".join(self._index[name.lower()])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order; ``[]`` if absent."""
        return list(self._index.get(name.lower(), ()))

    def raw_items(self) -> list[tuple[str, str]]:
        """The fields as received: original names, in order, repeats kept."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def parse_cookies(headers: Headers) -> dict[str, str]:
    """
    Parse every ``Cookie`` field into a dict (a later repeat of a name loses).

    Values keep their bytes except surrounding double quotes; nothing is
    URL-decoded, so a session id reads exactly as the browser sent it.
    """
    cookies: dict[str, str] = {}
    for line in headers.get_all("cookie"):
        for part in line.split(";"):
            name, sep, value = part.strip().partition("=")
            if not sep or not name:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name.strip(), value)
    return cookies


@dataclass(eq=False)
class Request:
    """
    A parsed request head.

    The target may be in origin-form (``/chat?room=1``) or absolute-form
    (``http://example.com/chat?room=1``, RFC 9112 §3.2.2): ``path``,
    ``query_string``, ``authority`` and ``host`` read the same either way,
    and in absolute-form the target's authority overrides the Host field
    (which ``headers`` still holds as sent).

    Attributes:
        method: e.g. ``"GET"``.
        target: the request-target as sent (``/chat?room=1``).
        version: e.g. ``"HTTP/1.1"``.
        headers: a case-insensitive :class:`Headers`.
        raw: the head's exact bytes, blank line included.
        route_params: filled by ``Router`` from the matched route.
    """

    method: str
    target: str
    version: str
    headers: Headers
    raw: bytes = b""
    route_params: dict[str, str] = field(default_factory=dict)
    _query: dict[str, str] | None = field(default=None, repr=False)
    _cookies: dict[str, str] | None = field(default=None, repr=False)

    @cached_property
    def origin_form(self) -> str:
        """The path and query (``/chat?room=1``), whichever form the target had."""
        return _split_target(self.target)[1]

    @cached_property
    def path(self) -> str:
        """The path part of the target (``/chat``), not percent-decoded."""
        # Cached: components read it per message (``conn.http_request.path``).
        return self.origin_form.partition("?")[0]

    @property
    def query_string(self) -> str:
        """The part of the target after ``?`` (``""`` if none)."""
        return self.origin_form.partition("?")[2]

    @property
    def query(self) -> dict[str, str]:
        """The query as a dict; for a repeated name the last value wins (as PHP)."""
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    @query.setter
    def query(self, value: dict[str, str]) -> None:
        self._query = dict(value)

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies from every ``Cookie`` field, by name."""
        if self._cookies is None:
            self._cookies = parse_cookies(self.headers)
        return self._cookies

    @property
    def authority(self) -> str:
        """
        The ``host[:port]`` the request is for, as sent: the target's in
        absolute-form (RFC 9112 §3.2.2), else the ``Host`` field (``""`` if
        absent).
        """
        authority = _split_target(self.target)[0]
        if authority is not None:
            return authority
        return self.headers.get("host", "").strip()

    @property
    def host(self) -> str:
        """:attr:`authority` without its port, lower-cased (``""`` if absent)."""
        value = self.authority.lower()
        if value.startswith("["):
            return value[1 : value.find("]")] if "]" in value else value
        return value.rpartition(":")[0] if value.count(":") == 1 else value

    def get_header(self, name: str) -> list[str]:
        """PSR-7's ``getHeader``: every value of ``name``."""
        return self.headers.get_all(name)

    def get_header_line(self, name: str) -> str:
        """PSR-7's ``getHeaderLine``: the values joined by ``", "``."""
        return ", ".join(self.headers.get_all(name))

    def has_header(self, name: str) -> bool:
        return name in self.headers


def parse_request_head(head: bytes) -> Request:
    """
    Parse ``head`` (request line through the blank line).

    Line endings must be CRLF, or bare LF (tolerated as RFC 9112 §2.2
    allows); obsolete line folding and control characters are refused.
    The target must be in origin-form (``/chat``) or absolute-form with an
    http, https, ws or wss URL; ``*`` only with OPTIONS (RFC 9112 §3.2).

    Raises:
        BadRequest: the head is not a valid HTTP/1.x request; ``detail``
            says what is wrong.
        HttpError: 501 for a CONNECT to ``host:port`` (this is no proxy).
    """
    lines = head.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if lines and lines[-1] in (b"", b"\r"):
        lines.pop()
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if not lines:
        raise BadRequest("empty request")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not all(parts):
        raise BadRequest(f"malformed request line {lines[0][:100]!r}")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise BadRequest(f"malformed method {method[:50]!r}")
    if not _VERSION.fullmatch(version):
        raise BadRequest(f"malformed HTTP version {version[:50]!r}")
    if any(c <= 0x20 or c >= 0x7F for c in target):
        raise BadRequest("request-target contains spaces or non-ASCII bytes")
    _check_target(method.decode("ascii"), target.decode("ascii"))
    items: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise BadRequest("obsolete header line folding is not accepted")
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest(f"malformed header field {line[:100]!r}")
        value = value.strip(b" \t")
        if _FIELD_VALUE_BAD.search(value):
            raise BadRequest(f"control character in header {name.decode()!r}")
        items.append((name.decode("ascii"), value.decode("latin-1")))
    return Request(
        method=method.decode("ascii"),
        target=target.decode("ascii"),
        version=version.decode("ascii"),
        headers=Headers(items),
        raw=bytes(head),
    )
