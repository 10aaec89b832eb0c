# -*- test-case-name: tests.wamp.test_wamp_protocol -*-
"""
``ServerProtocol``: WAMP v1 over a WebSocket connection, topics as strings.

It parses each message, checks it, resolves CURIEs and calls the
application's ``on_call``/``on_subscribe``/``on_unsubscribe``/``on_publish``
with the topic URI as a ``str``. ``WampServer`` puts a ``TopicManager`` in
between to give the application ``Topic`` objects; use ``ServerProtocol``
directly for the string form, as Ratchet's ``ServerProtocol`` allows.

Malformed messages raise ``WampError`` (``JsonError`` for bad JSON, NaN or
an infinity), which ``WampServer`` turns into close 1007; under a bare
``ServerProtocol`` they reach the application's ``on_error``, as in Ratchet.

Close codes follow one rule: 1007 when a message is not valid WAMP v1 (or
a handler raised ``WampError``), 1008 when it is valid but goes over one
of the configured limits (``max_uri_length``, ``max_prefixes``; see
``ratchetpy.wamp.limits``).

Handlers may be ``async def`` or return Deferreds: ``on_open``,
``on_message`` and ``on_close`` then return a Deferred that fires when the
handler finished (see ``ratchetpy.wamp._outcome``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred

from ..exceptions import ConfigurationError, WampError
from ..interfaces import ConnectionInterface, MessageComponentInterface, check_component
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
from ._outcome import close_invalid, follow, follow_on_error, report
from .connection import WampConnection, check_default_close_code
from .interfaces import WAMP_METHODS
from .limits import DEFAULT_MAX_PREFIXES, DEFAULT_MAX_URI_LENGTH, check_limit, refuse

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
        max_uri_length: longest URI, CURIE or CURIE prefix name a client
            may send, and longest URI a CURIE may resolve to, in
            characters (``None``: no limit).
        max_prefixes: most CURIE prefixes a client may define with PREFIX
            (``None``: no limit); redefining one does not count.
        close_on_wamp_error: close with 1007 (and log) when a message is
            malformed or a message handler raises ``WampError``, instead of
            calling the application's ``on_error``. ``WampServer`` sets it.

    A client that goes over ``max_uri_length`` or ``max_prefixes`` is
    closed with 1008 and the log says which option to raise. Messages that
    arrive after the connection started closing are ignored: Ratchet closes
    the socket at once and never reads them.
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
        max_uri_length: int | None = DEFAULT_MAX_URI_LENGTH,
        max_prefixes: int | None = DEFAULT_MAX_PREFIXES,
        close_on_wamp_error: bool = False,
    ) -> None:
        check_component(app, WAMP_METHODS, "ServerProtocol")
        if not isinstance(server_ident, str):
            raise ConfigurationError(f"server_ident must be a str, not {server_ident!r}")
        self.app = app
        self.server_ident = server_ident
        self.default_close_code = check_default_close_code(default_close_code)
        self.max_uri_length = check_limit("max_uri_length", max_uri_length)
        self.max_prefixes = check_limit("max_prefixes", max_prefixes)
        self.close_on_wamp_error = bool(close_on_wamp_error)
        # The WAMP view of each open connection, keyed by the connection the
        # layer below passes in; kept here, never in the shared attribute bag.
        self._connections: dict[ConnectionInterface, WampConnection] = {}

    def get_sub_protocols(self) -> Sequence[str]:
        """``["wamp"]``, plus the application's own subprotocols."""
        get = getattr(self.app, "get_sub_protocols", None)
        extra = [p for p in get() if p != "wamp"] if get is not None else []
        return ["wamp", *extra]

    def connection(self, conn: ConnectionInterface) -> WampConnection | None:
        """The ``WampConnection`` for the underlying ``conn``, if open."""
        return self._connections.get(conn)

    def on_open(self, conn: ConnectionInterface) -> Deferred[None] | None:
        """
        Send WELCOME and call the application's ``on_open`` with the new
        ``WampConnection``; returns a Deferred if that is async.
        """
        wamp_conn = WampConnection(conn, self.server_ident, self.default_close_code)
        self._connections[conn] = wamp_conn
        return follow(self.app.on_open(wamp_conn), self.app, wamp_conn, False)

    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Deferred[None] | None:
        """
        Handle one WAMP message from ``conn``; returns a Deferred if the
        application's handler is async.

        Raises:
            WampError: the message is malformed: not a JSON list, an unknown
                or server-to-client type, a topic/URI/call id that is not a
                string or number, or missing fields (unless
                ``close_on_wamp_error``: then the connection is closed).
            JsonError: the message is not valid JSON (or not UTF-8, or has
                NaN or an infinity).
        """
        from_ = self._connections[conn]
        if getattr(from_, "closing", False):
            return None
        if not self.close_on_wamp_error:
            return follow(self._dispatch(from_, msg), self.app, from_, False)
        try:
            result = self._dispatch(from_, msg)
        except WampError as exc:
            close_invalid(from_, exc)
            return None
        return follow(result, self.app, from_, True)

    def _dispatch(self, from_: WampConnection, msg: str | bytes) -> object:
        # Returns what the application's handler returned.
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
            args: Any = data[3:]
            if len(args) == 1 and isinstance(args[0], (list, dict)):
                args = args[0]
            proc = self._uri(from_, data[2])
            return None if proc is None else self.app.on_call(from_, data[1], proc, args)
        if kind == MSG_PUBLISH:
            if len(data) < 3:
                raise WampError(f"PUBLISH needs [7, topicURI, event, ...], got {_show(msg)}")
            exclude: Any = data[3] if len(data) > 3 else None
            if isinstance(exclude, (list, dict)):
                exclude = _session_list("exclude", exclude)
            else:
                exclude = [from_.session_id] if _php_truthy(exclude) else []
            eligible = data[4] if len(data) > 4 and data[4] is not None else []
            eligible = _session_list("eligible", eligible)
            topic = self._uri(from_, data[1])
            if topic is None:
                return None
            return self.app.on_publish(from_, topic, data[2], exclude, eligible)
        if kind == MSG_SUBSCRIBE or kind == MSG_UNSUBSCRIBE:
            if len(data) < 2:
                raise WampError(f"SUBSCRIBE/UNSUBSCRIBE needs a topic URI, got {_show(msg)}")
            topic = self._uri(from_, data[1])
            if topic is None:
                return None
            if kind == MSG_SUBSCRIBE:
                return self.app.on_subscribe(from_, topic)
            return self.app.on_unsubscribe(from_, topic)
        if kind == MSG_PREFIX:
            if len(data) < 3 or not isinstance(data[2], str):
                raise WampError(f"PREFIX needs [1, prefix, URI], got {_show(msg)}")
            self._prefix(from_, str(data[1]), data[2])
            return None
        name = _NAMES.get(kind)
        raise WampError(
            f"Invalid WAMP message type {kind}"
            + (f": {name} is sent by servers, not clients" if name else "")
        )

    def _fits(self, conn: WampConnection, text: str, what: str) -> bool:
        # False (and ``conn`` closed with 1008) if ``text`` is over max_uri_length.
        limit = self.max_uri_length
        if limit is None or len(text) <= limit:
            return True
        refuse(conn, what, "max_uri_length", limit, len(text))
        return False

    def _prefix(self, conn: WampConnection, prefix: str, uri: str) -> None:
        if not self._fits(conn, prefix, "a CURIE prefix's name") or not self._fits(
            conn, uri, "a CURIE prefix's URI"
        ):
            return
        prefixes = conn.wamp.prefixes
        limit = self.max_prefixes
        if limit is not None and prefix not in prefixes and len(prefixes) >= limit:
            refuse(conn, "the number of CURIE prefixes", "max_prefixes", limit, len(prefixes) + 1)
            return
        prefixes[prefix] = uri

    def _uri(self, conn: WampConnection, value: Any) -> str | None:
        # The URI ``value`` stands for; None if it is over max_uri_length
        # (``conn`` is then closing).
        if isinstance(value, str):
            if not self._fits(conn, value, "a URI"):
                return None
            uri = conn.get_uri(value)
        elif _is_id(value):  # Ratchet accepts numbers as topics
            uri = str(value)
        else:
            raise WampError(f"a URI must be a string, not {value!r}"[:200])
        return uri if self._fits(conn, uri, "a URI") else None

    def on_close(self, conn: ConnectionInterface) -> Deferred[None] | None:
        """
        Call the application's ``on_close``; returns a Deferred if it is
        async. Its exceptions go to the application's ``on_error`` with the
        ``WampConnection`` (the layer below no longer knows it).
        """
        wamp_conn = self._connections.pop(conn, None)
        if wamp_conn is None:
            return None
        try:
            result = self.app.on_close(wamp_conn)
        except Exception as exc:  # noqa: BLE001 - goes to on_error (ratchetpy._handlers)
            return report(self.app, wamp_conn, exc)
        return follow(result, self.app, wamp_conn, False)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Deferred[None] | None:
        """Pass ``exc`` to the application's ``on_error``, with the ``WampConnection`` if open."""
        target: ConnectionInterface | None = self._connections.get(conn)
        if target is None:
            target = conn
        return follow_on_error(self.app.on_error(target, exc), self.app, target, exc)


def _show(msg: str | bytes, limit: int = 80) -> str:
    text = repr(msg)
    return text if len(text) <= limit else text[:limit] + "..."
