# -*- test-case-name: tests.wamp.test_wamp_protocol -*-
"""
``WampConnection``: a connection as a WAMP v1 application sees it.

It decorates the ``WsConnection`` (one object for the connection's life, all
layers sharing one attribute bag) and adds WAMP's server-to-client messages:
``call_result``, ``call_error``, ``event`` and ``prefix``.

The WAMP session state (``conn.wamp``) lives on the ``WampConnection``
itself, not in the shared attribute bag: whatever names an application
sets on a connection cannot break the WAMP layer, and when the connection
closes its state is freed with it.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from ..connection import AbstractConnectionDecorator
from ..exceptions import ConfigurationError
from ..interfaces import ConnectionInterface
from ..websocket.connection import is_valid_close_code, protocol_of
from ._json import encode
from ._messages import MSG_CALL_ERROR, MSG_CALL_RESULT, MSG_EVENT, MSG_PREFIX, MSG_WELCOME

if TYPE_CHECKING:
    from .topic import Topic

__all__ = ["WampConnection", "WampState", "new_session_id", "check_default_close_code"]

_EMPTY: Any = object()

_FULL_URI = re.compile(r"https*://")


def new_session_id() -> str:
    """
    A session id: 32 lowercase hex digits from the OS CSPRNG.

    Ratchet's are 30-32 hex-like characters from ``mt_rand``/``uniqid``,
    which are guessable; clients treat the id as an opaque string.
    """
    return secrets.token_hex(16)


class WampState:
    """
    Ratchet's ``$conn->WAMP``: the WAMP session state of one connection,
    ``conn.wamp`` on its ``WampConnection`` (read-only there).

    Attributes:
        session_id: the id sent in WELCOME, used in publish exclude/eligible.
        prefixes: CURIE prefix -> URI, from the client's PREFIX messages
            and ``conn.prefix()``.
        subscriptions: the ``Topic`` objects the connection is subscribed
            to (kept by ``WampServer``'s topic manager).
    """

    __slots__ = ("session_id", "prefixes", "subscriptions")

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.prefixes: dict[str, str] = {}
        self.subscriptions: set[Topic] = set()

    def __repr__(self) -> str:
        return f"<WampState {self.session_id} {len(self.subscriptions)} subscriptions>"


class WampConnection(AbstractConnectionDecorator):
    """
    One WAMP client. Creating it sends the WELCOME message
    ``[0, session_id, 1, server_ident]``, as Ratchet's constructor does.

    Args:
        wrapped: the ``WsConnection``.
        server_ident: the server name in WELCOME (AutobahnJS exposes it as
            ``session._server``).
        default_close_code: what ``close()`` with no code sends (see
            :meth:`close`).
    """

    def __init__(
        self,
        wrapped: ConnectionInterface,
        server_ident: str,
        default_close_code: int = 1000,
        session_id: str | None = None,
    ) -> None:
        super().__init__(wrapped)
        self.__state = WampState(session_id or new_session_id())
        self.__default_close_code = default_close_code
        self.get_connection().send(encode([MSG_WELCOME, self.__state.session_id, 1, server_ident]))

    @property
    def wamp(self) -> WampState:
        """
        The WAMP session state (Ratchet's ``$conn->WAMP``): ``session_id``,
        ``prefixes``, ``subscriptions``. Read-only; unlike Ratchet it is
        not in the shared attribute bag, so other layers' views of the
        connection do not have it.
        """
        return self.__state

    @property
    def session_id(self) -> str:
        """This client's WAMP session id (Ratchet's ``$conn->WAMP->sessionId``)."""
        return self.__state.session_id

    @property
    def prefixes(self) -> dict[str, str]:
        """The CURIE prefixes known for this client."""
        return self.__state.prefixes

    @property
    def subscriptions(self) -> set[Topic]:
        """The topics this client is subscribed to."""
        return self.__state.subscriptions

    def call_result(self, id: Any, data: Any = _EMPTY) -> WampConnection:
        """
        Answer the call ``id`` with ``data``: ``[3, id, data]``. ``id`` must
        be the call id as received (a string stays a string).
        """
        return self.send(encode([MSG_CALL_RESULT, id, [] if data is _EMPTY else data]))

    def call_error(
        self, id: Any, error_uri: Any, desc: str = "", details: Any = None
    ) -> WampConnection:
        """
        Answer the call ``id`` with an error: ``[4, id, error_uri, desc]``,
        plus ``details`` when it is not ``None``. ``error_uri`` may be the
        call's ``Topic``.
        """
        data = [MSG_CALL_ERROR, id, str(error_uri), desc]
        if details is not None:
            data.append(details)
        return self.send(encode(data))

    def event(self, topic: Any, msg: Any) -> WampConnection:
        """Send ``msg`` to this client as an event of ``topic``: ``[8, topic, msg]``."""
        return self.send(encode([MSG_EVENT, str(topic), msg]))

    def prefix(self, curie: str, uri: Any) -> WampConnection:
        """
        Define the CURIE prefix ``curie`` for ``uri`` on both sides
        (``[1, curie, uri]``); Ratchet marks this as due for deprecation.
        """
        self.__state.prefixes[curie] = str(uri)
        return self.send(encode([MSG_PREFIX, curie, str(uri)]))

    def get_uri(self, uri: str) -> str:
        """
        Resolve a CURIE the way Ratchet does.

        ``prefix:action`` with a known prefix becomes
        ``prefixes[prefix] + "#" + action``: Ratchet inserts ``#`` even when
        the prefix already ends with one (AutobahnJS's usual
        ``prefix("calc", "http://example.com/calc#")`` then gives
        ``http://example.com/calc##add``), and that is kept so a ported
        application sees the URIs the PHP one saw. Strings containing
        ``http://`` or ``https://`` and unknown prefixes are unchanged.
        Unlike Ratchet, an action containing ``:`` is kept whole
        (Ratchet drops everything after a second colon).
        """
        if ":" not in uri or _FULL_URI.search(uri):
            return uri
        prefix, _, action = uri.partition(":")
        base = self.__state.prefixes.get(prefix)
        if base is None:
            return uri
        return f"{base}#{action}"

    def send(self, data: str | bytes) -> WampConnection:
        """Send a raw message (Ratchet marks this ``@internal``)."""
        self.get_connection().send(data)
        return self

    def close(self, code: int | None = None, reason: str = "") -> None:
        """
        Close the connection with ``code``.

        Without a code this sends the server's ``default_close_code``,
        1000 unless configured. PHP Ratchet sends the invalid code 0 here
        (``close($opt = null)`` packs ``null`` as 0), which browsers report
        as an unclean close, so AutobahnJS reconnects; ratchetpy sends a
        clean 1000 by default. Construct ``WampServer(app,
        default_close_code=0)`` to reproduce PHP.
        """
        if code is None:
            code = self.__default_close_code
            if code == 0:
                protocol = protocol_of(self.get_connection())
                if protocol is not None:
                    protocol.close_with(0)
                    return
        self.get_connection().close(code, reason)


def check_default_close_code(code: Any) -> int:
    """Validate ``default_close_code``: 0 (PHP's quirk) or a sendable code."""
    if isinstance(code, bool) or not isinstance(code, int) or not (
        code == 0 or is_valid_close_code(code)
    ):
        raise ConfigurationError(
            f"default_close_code must be 0 (PHP Ratchet's quirk) or a valid close "
            f"code (1000-1003, 1007-1014, 3000-4999), not {code!r}"
        )
    return code
