# -*- test-case-name: tests.swoole.test_http -*-
"""
Swoole's ``Http\\Request`` and ``Http\\Response`` for the ``open`` and
``request`` handlers, and the exchange that reads a request body and runs
the ``request`` handler.

A request body needs ``Content-Length`` (a chunked body gets 411) and may
be at most the server's body limit (``package_max_length``; 413 beyond);
``Expect: 100-continue`` is answered. Every response closes its connection
(``Connection: close``), as ratchetpy's other HTTP answers do. When the
handler returns (or, if ``async``, finishes) without ``end()``, the
response is ended with what it has, as Swoole does when its response
object goes away; call ``response.detach()`` to end it later yourself.
A handler that raises gets the client a 500 (if nothing was sent yet) and
its traceback logged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from twisted.logger import Logger
from twisted.python.failure import Failure

from .._handlers import as_deferred
from ..exceptions import SwooleError
from ..http.interfaces import HttpServerInterface
from ..http.request import Request as HttpRequest
from ..http.response import POWERED_BY, close_response
from ..interfaces import ConnectionInterface

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Request", "Response", "HttpExchange", "BODY_TIMEOUT"]

_log = Logger(namespace="ratchetpy.swoole")

BODY_TIMEOUT = 10.0
"""Seconds a client has to send the request body once the head is in."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _address(transport: Any, which: str) -> tuple[str, int]:
    get = getattr(transport, which, None)
    address = get() if get is not None else None
    return str(getattr(address, "host", "") or ""), int(getattr(address, "port", 0) or 0)


class Request:
    """
    A request as Swoole's ``Http\\Request`` shows it.

    Attributes:
        fd: the connection's id (Swoole's int ``$fd`` is ratchetpy's string
            ``conn.id``).
        header: header fields by lower-cased name (repeats joined by ``", "``).
        server: ``request_method``, ``request_uri``, ``path_info``,
            ``query_string``, ``server_protocol``, ``remote_addr``,
            ``remote_port``, ``server_port``, ``request_time``,
            ``request_time_float``, ``master_time``.
        get: the query string's parameters (always a dict).
        post: a form body's fields (``application/x-www-form-urlencoded``;
            always a dict).
        cookie: cookies by name.
        files: always empty: multipart bodies are not parsed (read
            ``raw_content()``).
        http_request: ratchetpy's parsed ``Request`` underneath.
    """

    def __init__(self, conn: ConnectionInterface, http_request: HttpRequest, body: bytes = b"") -> None:
        self.fd: str = str(conn.id)
        self.http_request = http_request
        headers = http_request.headers
        self.header: dict[str, str] = {name: headers[name] for name in headers}
        self.get: dict[str, str] = dict(http_request.query)
        self.cookie: dict[str, str] = dict(http_request.cookies)
        self.files: dict[str, Any] = {}
        self._body = body
        content_type = self.header.get("content-type", "").split(";")[0].strip().lower()
        self.post: dict[str, str] = {}
        if body and content_type == "application/x-www-form-urlencoded":
            self.post = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        transport = getattr(conn, "transport", None)
        remote_ip, remote_port = _address(transport, "getPeer")
        _, server_port = _address(transport, "getHost")
        now = time.time()
        self.server: dict[str, Any] = {
            "request_method": http_request.method,
            "request_uri": http_request.path,
            "path_info": http_request.path,
            "query_string": http_request.query_string,
            "server_protocol": http_request.version,
            "remote_addr": getattr(conn, "remote_address", remote_ip),
            "remote_port": remote_port,
            "server_port": server_port,
            "request_time": int(now),
            "request_time_float": now,
            "master_time": int(now),
        }

    def raw_content(self) -> bytes:
        """The request body (Swoole's ``rawContent()``); ``b""`` if none."""
        return self._body

    get_content = raw_content

    def get_method(self) -> str:
        """The request method (Swoole's ``getMethod()``)."""
        return self.http_request.method

    def __repr__(self) -> str:
        return f"<swoole Request {self.fd} {self.http_request.method} {self.http_request.target}>"


class Response:
    """
    Swoole's ``Http\\Response``: ``header``, ``status``, ``cookie``,
    ``write`` (chunked), ``end``, ``redirect``.

    Every method returns ``False`` once the response has ended or the
    client has gone (Swoole's "response is unavailable"); malformed
    arguments (a header value with a line break, a status out of range)
    raise ``SwooleError``.
    """

    def __init__(self, conn: ConnectionInterface, request: HttpRequest) -> None:
        self.fd: str = str(conn.id)
        self._conn = conn
        self._head_only = request.method == "HEAD"
        self._chunked_ok = request.version != "HTTP/1.0"
        self._status = 200
        self._reason: str | None = None
        self._headers: dict[str, tuple[str, str]] = {}
        self._cookies: list[str] = []
        self._head_sent = False
        self.ended = False
        self.detached = False

    # -- head ----------------------------------------------------------

    def is_writable(self) -> bool:
        """True while the response can still be written."""
        return not self.ended and not self._conn.closing

    def status(self, code: int, reason: str | None = None) -> bool:
        """Set the status code (and reason phrase) before anything is sent."""
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise SwooleError(f"response.status(code): code must be an int from 100 to 599, not {code!r}")
        if reason is not None and (not isinstance(reason, str) or _BAD_VALUE.search(reason)):
            raise SwooleError(f"response.status(code, reason): reason must be one line of text, not {reason!r}")
        if not self.is_writable() or self._head_sent:
            return False
        self._status, self._reason = code, reason
        return True

    set_status_code = status

    def header(self, key: str, value: str | int | float) -> bool:
        """Set one header field (replacing one of the same name) before anything is sent."""
        if not isinstance(key, str) or not _TOKEN.fullmatch(key):
            raise SwooleError(f"response.header(key, value): {key!r} is not a valid header name")
        text = str(value)
        if _BAD_VALUE.search(text):
            raise SwooleError(
                f"response.header({key!r}, value): the value must not hold line breaks or control characters"
            )
        if not self.is_writable() or self._head_sent:
            return False
        self._headers[key.lower()] = (key, text)
        return True

    set_header = header

    def cookie(
        self,
        name: str,
        value: str = "",
        expires: int = 0,
        path: str = "/",
        domain: str = "",
        secure: bool = False,
        httponly: bool = False,
        samesite: str = "",
    ) -> bool:
        """Add a ``Set-Cookie`` field (PHP's ``setcookie`` arguments); the value is URL-encoded."""
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise SwooleError(f"response.cookie(name, ...): {name!r} is not a valid cookie name")
        parts = [f"{name}={quote(str(value), safe='')}"]
        if expires:
            parts.append(f"expires={formatdate(expires, usegmt=True)}")
        for attribute, given in (("path", path), ("domain", domain), ("samesite", samesite)):
            if given:
                if _BAD_VALUE.search(given) or ";" in given:
                    raise SwooleError(f"response.cookie(..., {attribute}=): {given!r} is not valid")
                parts.append(f"{attribute}={given}")
        if secure:
            parts.append("secure")
        if httponly:
            parts.append("httponly")
        if not self.is_writable() or self._head_sent:
            return False
        self._cookies.append("; ".join(parts))
        return True

    def redirect(self, url: str, code: int = 302) -> bool:
        """Answer ``code`` with ``Location: url`` and end."""
        return self.status(code) and self.header("Location", url) and self.end()

    def detach(self) -> bool:
        """Keep the response open after the handler returns: you call ``end()`` later."""
        if not self.is_writable():
            return False
        self.detached = True
        return True

    def _head(self, body_length: int | None) -> bytes:
        fields = [value for name, value in self._headers.items() if name not in ("content-length", "connection",
                                                                                  "transfer-encoding")]
        if "content-type" not in self._headers:
            fields.append(("Content-Type", "text/html"))  # Swoole's default
        if "date" not in self._headers:
            fields.append(("Date", formatdate(usegmt=True)))
        fields.extend(("Set-Cookie", cookie) for cookie in self._cookies)
        if body_length is not None:
            fields.append(("Content-Length", str(body_length)))
        elif self._chunked_ok:
            fields.append(("Transfer-Encoding", "chunked"))
        fields.append(("Connection", "close"))
        fields.append(("X-Powered-By", POWERED_BY[0]))
        lines = [f"HTTP/1.1 {self._status} {self._reason or _phrase(self._status)}"]
        lines.extend(f"{name}: {value}" for name, value in fields)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")

    # -- body ----------------------------------------------------------

    def write(self, data: str | bytes) -> bool:
        """Send a part of the body now (chunked transfer encoding); ``end()`` finishes."""
        if not self.is_writable():
            return False
        chunk = _bytes(data)
        if not self._head_sent:
            self._conn.send(self._head(None))
            self._head_sent = True
        if chunk and not self._head_only:
            self._conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if self._chunked_ok else chunk)
        return True

    def end(self, data: str | bytes = b"") -> bool:
        """Send the rest of the body (or all of it), then close the connection."""
        if not self.is_writable():
            return False
        body = _bytes(data)
        if self._head_sent:
            self.write(body)
            if self._chunked_ok and not self._head_only:
                self._conn.send(b"0\r\n\r\n")
        else:
            self._head_sent = True
            self._conn.send(self._head(len(body)) + (b"" if self._head_only else body))
        self.ended = True
        self._conn.close()
        return True

    def _fail(self) -> None:
        # The handler raised: a 500 if nothing was sent, else cut it short.
        if self.ended:
            return
        self.ended = True
        if self._head_sent:
            self._conn.close()
        else:
            close_response(self._conn, 500, [("Content-Length", "0")])


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _bytes(data: str | bytes) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise SwooleError(f"a response body is str or bytes, not {type(data).__name__}")


class HttpExchange(HttpServerInterface):
    """
    One plain HTTP request to a Swoole server: read the body, call
    ``request(request, response)``, end the response.

    Args:
        server: the Swoole server (for its handler, limits and counters).
        handler: the ``request`` handler.
        body_limit: the largest body accepted, in bytes.
    """

    def __init__(self, server: Server, handler: Callable[..., Any], body_limit: int) -> None:
        self._server = server
        self._handler = handler
        self._body_limit = body_limit
        self._length = 0
        self._body = bytearray()
        self._request: HttpRequest | None = None
        self._response: Response | None = None
        self._timer: Any = None
        self._done = False

    def on_open(self, conn: ConnectionInterface, request: HttpRequest) -> Any:
        self._request = request
        if request.headers.get("transfer-encoding"):
            return self._refuse(conn, 411, "a chunked request body; send Content-Length")
        lengths = {v.strip() for v in request.headers.get_all("content-length")}
        if len(lengths) > 1 or (lengths and not next(iter(lengths)).isdigit()):
            return self._refuse(conn, 400, f"invalid Content-Length {sorted(lengths)}")
        self._length = int(next(iter(lengths))) if lengths else 0
        if self._length > self._body_limit:
            return self._refuse(
                conn,
                413,
                f"a body of {self._length} bytes is over the limit of {self._body_limit} "
                "(server.set({'package_max_length': N}) raises it)",
            )
        if self._length == 0:
            return self._dispatch(conn)
        if request.headers.get("expect", "").lower() == "100-continue":
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        self._timer = conn.reactor.callLater(BODY_TIMEOUT, self._timed_out, conn)
        return None

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        if self._done or self._request is None:
            return None  # pipelined bytes after the body: the connection closes after the answer
        data = msg.encode("utf-8") if isinstance(msg, str) else msg
        self._body += data[: self._length - len(self._body)]
        if len(self._body) >= self._length:
            return self._dispatch(conn)
        return None

    def on_close(self, conn: ConnectionInterface) -> None:
        self._cancel_timer()

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        request = self._request
        _log.failure(
            "The request handler raised for {method} {path} from {peer} ({error!r}); answered 500",
            Failure(exc),
            method=getattr(request, "method", "?"),
            path=getattr(request, "path", "?"),
            peer=conn.remote_address,
            error=exc,
        )
        if self._response is not None:
            self._response._fail()
        elif not conn.closing:
            close_response(conn, 500)

    def _dispatch(self, conn: ConnectionInterface) -> Any:
        self._done = True
        self._cancel_timer()
        assert self._request is not None
        self._server._count_request()
        response = self._response = Response(conn, self._request)
        request = Request(conn, self._request, bytes(self._body))
        self._body = bytearray()
        result = self._handler(request, response)
        d = as_deferred(result)
        if d is None:
            _finish(response)
            return None
        return d.addCallback(lambda _: _finish(response))

    def _refuse(self, conn: ConnectionInterface, status: int, detail: str) -> None:
        self._done = True
        request = self._request
        _log.info(
            "Refused {method} {path} from {peer} with {status}: {detail}",
            method=getattr(request, "method", "?"),
            path=getattr(request, "path", "?"),
            peer=conn.remote_address,
            status=status,
            detail=detail,
        )
        close_response(conn, status)

    def _timed_out(self, conn: ConnectionInterface) -> None:
        self._timer = None
        if not self._done and not conn.closing:
            self._refuse(
                conn, 408, f"the body ({len(self._body)} of {self._length} bytes) did not arrive within {BODY_TIMEOUT} s"
            )

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()


def _finish(response: Response) -> None:
    # Swoole ends a response nobody holds when the handler returns.
    if not response.ended and not response.detached:
        response.end()
