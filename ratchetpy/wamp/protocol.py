# -*- test-case-name: tests.test_wamp_protocol -*-
"""
``ServerProtocol``: WAMP v1 over a WebSocket connection, topics as strings.

It parses each message, checks it, resolves CURIEs and calls the
application's ``on_call``/``on_subscribe``/``on_unsubscribe``/``on_publish``
with the topic URI as a ``str``. ``WampServer`` puts a ``TopicManager`` in
between to give the application ``Topic`` objects; use ``ServerProtocol``
directly for the string form, as Ratchet's ``ServerProtocol`` allows.

Malformed messages raise ``WampError`` (``JsonError`` for bad JSON), which
``WampServer`` turns into close 1007; under a bare ``ServerProtocol`` they
reach the application's ``on_error``, as in Ratchet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..exceptions import ConfigurationError, WampError
from ..interfaces import MessageComponentInterface, check_component
from ..version import RATCHET_COMPAT
from ..websocket.interfaces import WsServerInterface
from ._json import decode
from ._messages import (
    MSG_CALL,
    MSG_CALL_ERROR,
    MSG_CALL_RESULT,
    MSG_EVENT,
    MSG_PREFIX,
    MSG_PUBLISH,
    MSG_SUBSCRIBE,
    MSG_UNSUBSCRIBE,
    MSG_WELCOME,
)
from .connection import WampConnection, check_default_close_code
from .interfaces import WAMP_METHODS

__all__ = [
    "ServerProtocol",
    "DEFAULT_SERVER_IDENT",
    "MSG_WELCOME",
    "MSG_PREFIX",
    "MSG_CALL",
    "MSG_CALL_RESULT",
    "MSG_CALL_ERROR",
    "MSG_SUBSCRIBE",
    "MSG_UNSUBSCRIBE",
    "MSG_PUBLISH",
    "MSG_EVENT",
]

DEFAULT_SERVER_IDENT = RATCHET_COMPAT
"""The server ident in WELCOME: PHP Ratchet's, which JS apps may display or check."""

_NAMES = {
    MSG_WELCOME: "WELCOME",
    MSG_CALL_RESULT: "CALLRESULT",
    MSG_CALL_ERROR: "CALLERROR",
    MSG_EVENT: "EVENT",
}


def _php_truthy(value: Any) -> bool:
    # PHP's (boolean) cast, which decides publish's non-list `exclude`.
    return value not in (None, False, 0, "", "0") and value != [] and value != {}


def _is_id(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _session_list(name: str, value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # a PHP array is either; its values count
        return list(value.values())
    raise WampError(f"PUBLISH {name} must be a list of session ids, not {value!r}"[:200])


class ServerProtocol(MessageComponentInterface, WsServerInterface):
    """
    The WAMP v1 protocol layer over ``app``, a ``WampServerInterface``
    that receives topic URIs as strings.

    Args:
        app: the application (``on_call``, ``on_subscribe``,
            ``on_unsubscribe``, ``on_publish`` and the usual three).
        server_ident: the server name sent in WELCOME.
        default_close_code: what ``WampConnection.close()`` without a code
            sends; 0 reproduces PHP Ratchet's invalid close code.
    """

    MSG_WELCOME = MSG_WELCOME
    MSG_PREFIX = MSG_PREFIX
    MSG_CALL = MSG_CALL
    MSG_CALL_RESULT = MSG_CALL_RESULT
    MSG_CALL_ERROR = MSG_CALL_ERROR
    MSG_SUBSCRIBE = MSG_SUBSCRIBE
    MSG_UNSUBSCRIBE = MSG_UNSUBSCRIBE
    MSG_PUBLISH = MSG_PUBLISH
    MSG_EVENT = MSG_EVENT

    def __init__(
        self,
        app: Any,
        *,
        server_ident: str = DEFAULT_SERVER_IDENT,
        default_close_code: int = 1000,
    ) -> None:
        check_component(app, WAMP_METHODS, "ServerProtocol")
        if not isinstance(server_ident, str):
            raise ConfigurationError(f"server_ident must be a str, not {server_ident!r}")
        self.app = app
        self.server_ident = server_ident
        self.default_close_code = check_default_close_code(default_close_code)
        self._connections: dict[Any, WampConnection] = {}

    def get_sub_protocols(self) -> Sequence[str]:
        """``["wamp"]``, plus the application's own subprotocols."""
        get = getattr(self.app, "get_sub_protocols", None)
        extra = [p for p in get() if p != "wamp"] if get is not None else []
        return ["wamp", *extra]

    def connection(self, conn: Any) -> WampConnection | None:
        """The ``WampConnection`` for the underlying ``conn``, if open."""
        return self._connections.get(conn)

    def on_open(self, conn: Any) -> None:
        wamp_conn = WampConnection(conn, self.server_ident, self.default_close_code)
        self._connections[conn] = wamp_conn
        # Kept on the underlying view too, so an error raised by the app's
        # on_close still reaches on_error with the WampConnection.
        conn._wamp_connection = wamp_conn
        self.app.on_open(wamp_conn)

    def on_message(self, conn: Any, msg: str | bytes) -> None:
        """
        Handle one WAMP message from ``conn``.

        Raises:
            WampError: the message is malformed: not a JSON list, an unknown
                or server-to-client type, a topic/URI/call id that is not a
                string or number, or missing fields.
            JsonError: the message is not valid JSON (or not UTF-8).
        """
        from_ = self._connections[conn]
        data = decode(msg)
        if type(data) is not list or not data:
            raise WampError(
                f"Invalid WAMP message format: expected a JSON list [type, ...], got {_show(msg)}"
            )
        kind = data[0]
        if len(data) > 1 and not _is_id(data[1]):
            raise WampError(f"Invalid Topic, must be a string: {_show(msg)}")
        if type(kind) is not int:
            raise WampError(f"Invalid WAMP message type {kind!r}: expected an integer")
        if kind == MSG_CALL:
            if len(data) < 3:
                raise WampError(f"CALL needs [2, callId, procURI, args...], got {_show(msg)}")
            args = data[3:]
            if len(args) == 1 and isinstance(args[0], (list, dict)):
                args = args[0]
            self.app.on_call(from_, data[1], self._uri(from_, data[2]), args)
        elif kind == MSG_PUBLISH:
            if len(data) < 3:
                raise WampError(f"PUBLISH needs [7, topicURI, event, ...], got {_show(msg)}")
            exclude: Any = data[3] if len(data) > 3 else None
            if isinstance(exclude, (list, dict)):
                exclude = _session_list("exclude", exclude)
            else:
                exclude = [from_.session_id] if _php_truthy(exclude) else []
            eligible = data[4] if len(data) > 4 and data[4] is not None else []
            eligible = _session_list("eligible", eligible)
            self.app.on_publish(from_, self._uri(from_, data[1]), data[2], exclude, eligible)
        elif kind == MSG_SUBSCRIBE or kind == MSG_UNSUBSCRIBE:
            if len(data) < 2:
                raise WampError(f"SUBSCRIBE/UNSUBSCRIBE needs a topic URI, got {_show(msg)}")
            topic = self._uri(from_, data[1])
            if kind == MSG_SUBSCRIBE:
                self.app.on_subscribe(from_, topic)
            else:
                self.app.on_unsubscribe(from_, topic)
        elif kind == MSG_PREFIX:
            if len(data) < 3 or not isinstance(data[2], str):
                raise WampError(f"PREFIX needs [1, prefix, URI], got {_show(msg)}")
            from_.wamp.prefixes[str(data[1])] = data[2]
        else:
            name = _NAMES.get(kind)
            raise WampError(
                f"Invalid WAMP message type {kind}"
                + (f": {name} is sent by servers, not clients" if name else "")
            )

    @staticmethod
    def _uri(conn: WampConnection, value: Any) -> str:
        if isinstance(value, str):
            return conn.get_uri(value)
        if _is_id(value):  # Ratchet accepts numbers as topics
            return str(value)
        raise WampError(f"a URI must be a string, not {value!r}"[:200])

    def on_close(self, conn: Any) -> None:
        wamp_conn = self._connections.pop(conn, None)
        if wamp_conn is not None:
            self.app.on_close(wamp_conn)

    def on_error(self, conn: Any, exc: Exception) -> None:
        wamp_conn = self._connections.get(conn) or getattr(conn, "_wamp_connection", None)
        self.app.on_error(wamp_conn if wamp_conn is not None else conn, exc)


def _show(msg: str | bytes, limit: int = 80) -> str:
    text = repr(msg)
    return text if len(text) <= limit else text[:limit] + "..."
