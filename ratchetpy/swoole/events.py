# -*- test-case-name: tests.swoole.test_server -*-
"""
How a Swoole server sits in ratchetpy's stack.

``Dispatcher`` is the ``HttpServerInterface`` the ``Router`` hands every
request under the server's path to: a WebSocket upgrade goes to the
server's ``WsServer`` (through an ``OriginCheck`` if origins are
restricted), any other request to an ``HttpExchange`` running the
``request`` handler, or, with no ``request`` handler, to the ``WsServer``
too, which answers 426 (Swoole answers 400). ``Events`` is the message
component inside that ``WsServer``: it turns ``on_open``/``on_message``/
``on_close`` into Swoole's ``open(server, request)``,
``message(server, frame)`` and ``close(server, fd)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from twisted.logger import Logger
from twisted.python.failure import Failure

from ..exceptions import ConfigurationError, SwooleError
from ..http.interfaces import HttpServerInterface
from ..http.request import Request as HttpRequest
from ..http.response import close_response
from ..http.router import NoOpHttpServerController, Route
from ..interfaces import ConnectionInterface, MessageComponentInterface
from .http import HttpExchange, Request

if TYPE_CHECKING:
    from .server import Server

__all__ = [
    "EVENTS",
    "NOT_SUPPORTED_EVENTS",
    "Frame",
    "message_for",
    "Dispatcher",
    "Events",
    "PrefixRoute",
    "is_upgrade",
    "WEBSOCKET_OPCODE_TEXT",
    "WEBSOCKET_OPCODE_BINARY",
    "WEBSOCKET_OPCODE_CLOSE",
    "WEBSOCKET_OPCODE_PING",
    "WEBSOCKET_OPCODE_PONG",
    "WEBSOCKET_STATUS_ACTIVE",
    "WEBSOCKET_STATUS_CLOSING",
]

_log = Logger(namespace="ratchetpy.swoole")

WEBSOCKET_OPCODE_TEXT = 1
WEBSOCKET_OPCODE_BINARY = 2
WEBSOCKET_OPCODE_CLOSE = 8
WEBSOCKET_OPCODE_PING = 9
WEBSOCKET_OPCODE_PONG = 10
WEBSOCKET_STATUS_ACTIVE = 3
"""``get_client_info(fd)["websocket_status"]`` of an open WebSocket (Swoole's value)."""
WEBSOCKET_STATUS_CLOSING = 4
"""... of one whose closing handshake has started."""


@dataclass(frozen=True)
class Frame:
    """
    One message, as Swoole's ``WebSocket\\Frame``.

    Attributes:
        fd: the sender's connection id (a string here, Swoole's int ``$fd``).
        data: ``str`` for a text message, ``bytes`` for a binary one.
        opcode: ``WEBSOCKET_OPCODE_TEXT`` (1) or ``WEBSOCKET_OPCODE_BINARY`` (2).
        finish: always ``True``: fragmented messages arrive reassembled.
    """

    fd: str
    data: str | bytes
    opcode: int = WEBSOCKET_OPCODE_TEXT
    finish: bool = True


def is_upgrade(request: HttpRequest) -> bool:
    """True if the request asks for a WebSocket (``Upgrade: websocket``)."""
    tokens = request.headers.get("upgrade", "").split(",")
    return any(token.strip().lower() == "websocket" for token in tokens)


class PrefixRoute(Route):
    """A route for ``path`` and every path under it, any method."""

    def __post_init__(self) -> None:
        if "{" in self.path:
            raise ConfigurationError(
                f"a Swoole server is served under a plain path prefix such as '/' or '/ws', not {self.path!r}"
            )
        super().__post_init__()
        self._prefix = self.path.rstrip("/") + "/"

    def match_path(self, path: str) -> dict[str, str] | None:
        if path == self.path or path.startswith(self._prefix):
            return {}
        return None

    def describe(self) -> str:
        return f"{self.path} (and below; a Swoole server)"


class Events(MessageComponentInterface):
    """The component inside the server's ``WsServer``: Swoole's events."""

    def __init__(self, server: Server, sub_protocol: str | None = None) -> None:
        self._server = server
        self._sub_protocols = [sub_protocol] if sub_protocol else []

    def get_sub_protocols(self) -> list[str]:
        return self._sub_protocols

    def on_open(self, conn: ConnectionInterface) -> Any:
        handler = self._server._handler("open")
        if handler is not None:
            return handler(self._server, Request(conn, conn.http_request))
        return None

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        handler = self._server._handler("message")
        if handler is None:
            return None
        opcode = WEBSOCKET_OPCODE_TEXT if isinstance(msg, str) else WEBSOCKET_OPCODE_BINARY
        return handler(self._server, Frame(str(conn.id), msg, opcode))

    def on_close(self, conn: ConnectionInterface) -> Any:
        handler = self._server._handler("close")
        if handler is not None:
            return handler(self._server, str(conn.id))
        return None

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        # Swoole would lose the worker; here the connection stays open
        # (Ratchet's contract) and the traceback is logged.
        _log.failure(
            "A handler raised for connection {fd} from {peer}: {error!r}",
            Failure(exc),
            fd=str(conn.id),
            peer=conn.remote_address,
            error=exc,
        )


EVENTS: dict[str, str] = {
    "open": "open(server, request): a WebSocket opened",
    "message": "message(server, frame): a message arrived (required)",
    "close": "close(server, fd): a WebSocket closed",
    "request": "request(request, response): a plain HTTP request on the same port",
    "task": "task(server, task_id, src_worker_id, data): runs task(data) in a thread",
    "finish": "finish(server, task_id, result): a task handler returned a value",
    "start": "start(server): the server started",
    "workerstart": "workerStart(server, worker_id): the server started (worker 0)",
    "shutdown": "shutdown(server): the server is stopping",
}
"""Events ``on()`` accepts (case does not matter: ``workerStart``)."""

NOT_SUPPORTED_EVENTS = {
    "handshake": "a custom handshake is not supported; check the request in 'open' and "
    "server.disconnect(request.fd, 4000, 'reason') to refuse, or restrict origins with "
    "set({'allowed_origins': [...]})",
    "connect": "WebSocket servers report connections in 'open'",
    "receive": "raw TCP is served by ratchetpy's IoServer (see the telnet chat in docs/porting-ratchet.md)",
    "packet": "UDP is not served",
    "pipemessage": "there is one process: call your function directly",
    "workerstop": "use 'shutdown'",
    "workererror": "there are no worker processes; handler errors are logged",
    "managerstart": "there is no manager process",
    "managerstop": "there is no manager process",
}

def message_for(data: Any, opcode: int | None) -> str | bytes:
    """
    What ``push(fd, data, opcode)`` sends: ``data`` as ``str`` (text) or
    ``bytes`` (binary), converted for ``opcode``.

    Raises:
        SwooleError: ``data`` is neither ``str`` nor ``bytes``, bytes that
            are not UTF-8 are sent as text, or ``opcode`` is not text,
            binary or ping.
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, (str, bytes)):
        raise SwooleError(f"push() sends str or bytes, not {type(data).__name__}")
    if opcode is None or opcode == WEBSOCKET_OPCODE_PING:
        return data
    if opcode == WEBSOCKET_OPCODE_TEXT:
        if isinstance(data, bytes):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise SwooleError(
                    "push(fd, data, WEBSOCKET_OPCODE_TEXT): data is not UTF-8; send it as "
                    "WEBSOCKET_OPCODE_BINARY"
                ) from None
        return data
    if opcode == WEBSOCKET_OPCODE_BINARY:
        return data.encode("utf-8") if isinstance(data, str) else data
    raise SwooleError(
        f"push() opcode {opcode!r} is not supported: use WEBSOCKET_OPCODE_TEXT (1), "
        "WEBSOCKET_OPCODE_BINARY (2) or WEBSOCKET_OPCODE_PING (9); disconnect() sends a close"
    )



_REFUSED = NoOpHttpServerController()


class Dispatcher(HttpServerInterface):
    """
    Sends each request to the WebSocket side or to the ``request`` handler.

    Args:
        server: the Swoole server.
        websocket: what upgrade requests go to (``WsServer`` or an
            ``OriginCheck`` around it).
        body_limit: the largest request body for the ``request`` handler.
    """

    def __init__(self, server: Server, websocket: Any, body_limit: int) -> None:
        self.server = server
        self.component = websocket
        self.body_limit = body_limit
        self._targets: WeakKeyDictionary[ConnectionInterface, Any] = WeakKeyDictionary()

    def on_open(self, conn: ConnectionInterface, request: HttpRequest) -> Any:
        handler = self.server._handler("request")
        if is_upgrade(request) or handler is None:
            target: Any = self.component
        else:
            target = HttpExchange(self.server, handler, self.body_limit)
        self._targets[conn] = target
        return target.on_open(conn, request)

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        return self._targets.get(conn, _REFUSED).on_message(conn, msg)

    def on_close(self, conn: ConnectionInterface) -> Any:
        target = self._targets.pop(conn, None)
        return target.on_close(conn) if target is not None else None

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Any:
        target = self._targets.get(conn)
        if target is not None:
            return target.on_error(conn, exc)
        _log.failure("Error dispatching a request from {peer}", Failure(exc), peer=conn.remote_address)
        close_response(conn, 500)
        return None
