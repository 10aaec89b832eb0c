# -*- test-case-name: tests.test_builtins_chat -*-
"""
The components ``twistd ratchetpy`` serves without any code: ``chat`` and
``echo``, and the browser page that talks to the chat.

``twistd -n ratchetpy --route /chat`` serves :class:`Chat` at ``/chat`` and
:func:`demo_page` at ``/``: open it in two browser tabs and type.
``--route /room/{name}=chat`` gives one room per name (``/room/lobby``,
``/room/dev``, ...), and the page at ``/`` has a field to pick one.

The chat goes through the hub only (``conn.hub``: join a channel on open,
``publish`` each message to it), so a hub spanning processes makes one
chat across all of them with no change here.

With history (``Chat(history=50)``, ``twistd ratchetpy --chat-history 50``)
each room keeps its last messages, and a client that connects with
``?positions=1`` speaks the positioned protocol (docs/hub.md: "History and
recovery"): every message carries its position, and a reconnecting client
gets what it missed. Clients that do not ask keep the plain relay.

With ``session_user_key`` (``twistd ratchetpy --session-user-key name``) and
a ``SessionProvider`` in front (``--session-handler``), the user logged in
on the PHP site is known: the welcome carries ``"user"`` (the session's
value under that key) and the connection is bound to that user in the hub
(``hub.bind``), so ``hub.push_user`` reaches every tab of theirs.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import unquote
from weakref import WeakKeyDictionary, WeakSet

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from .http.controllers import StaticResponse
from .http.router import _PARAM, compile_pattern
from .hub import Hub, HubError
from .hub.history import DEFAULT_HISTORY_TTL, HistoryPolicy, StreamPosition
from .hub.hub import MAX_NAME_LENGTH, check_name
from .hub.recovery import JsonPositions
from .interfaces import ConnectionInterface, MessageComponentInterface
from .phpws.server import PhpWsServer
from .server.echo import EchoServer

__all__ = [
    "Chat",
    "EchoServer",
    "BUILTINS",
    "demo_page",
    "demo_endpoint",
    "room_of",
    "DEMO_PAGE_PLACEHOLDER",
    "DEFAULT_DEMO_ROOM",
]

_log = Logger(namespace="ratchetpy.builtins")

DEMO_PAGE_PLACEHOLDER = "__RATCHETPY_WS_PATH__"

DEFAULT_DEMO_ROOM = "lobby"
"""The room the demo page joins first on a route with a parameter."""

DEFAULT_ROOM = "chat"
"""The room of a connection that came with no HTTP request (raw TCP, test doubles)."""


def room_of(conn: ConnectionInterface) -> str:
    """
    The chat room a connection asked for.

    With route parameters (``/room/{name}``), their values in the order the
    route captured them, joined with ``/`` (``/room/lobby`` → ``lobby``;
    ``/t/{org}/{name}`` → ``acme/lobby``). Without (``/chat``), the request
    path without its leading ``/`` (``chat``); with no HTTP request at all
    (raw TCP), ``chat``.
    """
    request = getattr(conn, "http_request", None)
    if request is None:
        return DEFAULT_ROOM
    params = getattr(request, "route_params", None)
    if params:
        return "/".join(str(value) for value in params.values())
    # Decoded as the router matched it: /%63hat is the room of /chat.
    path = unquote(str(getattr(request, "path", "") or "")).lstrip("/")
    return path or DEFAULT_ROOM


class Chat(MessageComponentInterface):
    """
    The socketo.me tutorial chat, with rooms, through the hub.

    On open the client gets one JSON text message,
    ``{"type": "welcome", "id": conn.id, "room": room}`` (the room is
    :func:`room_of` the connection), and joins the hub channel
    ``channel_prefix + room``. From then on every message a client sends
    goes, as it is, to the other members of its room: text stays text,
    binary stays binary, nothing is wrapped, so clients written for the
    Ratchet tutorial keep working (they just see the welcome first).
    Over raw TCP (no HTTP request) the welcome ends with a newline.

    A room name the hub cannot take (longer than 255 characters with the
    prefix, control characters) closes the connection with 1008 and a
    reason saying why.

    Args:
        hub: the hub to publish through. By default each connection's own
            (``conn.hub``, the ``App``'s or the ``WsServer``'s); for
            connections without one (raw TCP under ``IoServer``, test
            doubles) a hub of this chat's own.
        channel_prefix: put before the room to make the channel name, so
            the chat's channels never mix with channels of your own code.
            Chats with the same prefix on one hub share their rooms.
        history: keep each room's last ``history`` messages (``None`` or
            0: no history) for ``history_ttl`` seconds after the latest,
            and speak the positioned protocol with clients that connect
            with ``?positions=1`` (see :meth:`keep_history`).
        session_user_key: the PHP session key naming the logged-in user
            (``conn.session.get(session_user_key)``, set by a
            ``SessionProvider``). When it holds a non-empty string or
            integer, the welcome carries it as ``"user"`` and the connection
            is bound to that user in the hub. ``None`` (default): no users.
    """

    register_with_hub = True

    def __init__(
        self,
        hub: Hub | None = None,
        *,
        channel_prefix: str = "chat:",
        history: int | None = None,
        history_ttl: float = DEFAULT_HISTORY_TTL,
        session_user_key: str | None = None,
    ) -> None:
        if not isinstance(channel_prefix, str) or len(channel_prefix) >= MAX_NAME_LENGTH:
            raise HubError(
                f"channel_prefix must be a string shorter than {MAX_NAME_LENGTH} characters, "
                f"not {channel_prefix!r}"
            )
        self._hub = hub
        self._fallback: Hub | None = None
        self.channel_prefix = channel_prefix
        # Each connection's channel, to publish to; delivery itself is the
        # hub's (there is no client set here).
        self._channels: WeakKeyDictionary[ConnectionInterface, str] = WeakKeyDictionary()
        self.history: HistoryPolicy | None = None
        self._history_hubs: WeakSet[Hub] = WeakSet()
        # positioned clients whose first message (recover or not) is still to come
        self._awaiting: WeakKeyDictionary[ConnectionInterface, bool] = WeakKeyDictionary()
        self._format = JsonPositions()
        self.session_user_key = session_user_key
        self.keep_history(history, history_ttl)

    def keep_history(self, size: int | None, ttl: float = DEFAULT_HISTORY_TTL) -> None:
        """
        Keep each room's last ``size`` messages for ``ttl`` seconds after
        the latest (``None`` or 0: none, the default), on every hub this
        chat uses (``hub.enable_history(channel_prefix + "*", ...)``).

        Raises:
            HubError: ``size`` or ``ttl`` is out of range (the message says which).
        """
        if size is None or size == 0:
            self.history = None
            return
        self.history = HistoryPolicy.checked(size, ttl)
        self._history_hubs = WeakSet()
        if self._hub is not None:
            self._enable_history(self._hub)

    def _enable_history(self, hub: Hub) -> None:
        policy = self.history
        if policy is not None and hub not in self._history_hubs:
            hub.enable_history(self.channel_prefix + "*", size=policy.size, ttl=policy.ttl)
            self._history_hubs.add(hub)

    def hub_of(self, conn: ConnectionInterface) -> Hub:
        """The hub ``conn``'s messages go through (see ``hub`` above)."""
        if self._hub is not None:
            return self._hub
        hub = getattr(conn, "hub", None)
        if isinstance(hub, Hub):
            return hub
        if self._fallback is None:
            self._fallback = Hub()
        return self._fallback

    def on_open(self, conn: ConnectionInterface) -> None:
        room = room_of(conn)
        limit = MAX_NAME_LENGTH - len(self.channel_prefix)
        try:
            channel = check_name("channel", self.channel_prefix + room)
        except HubError as exc:
            _log.info(
                "Chat: refused connection {id} from {peer}: room {room!r} is not usable ({error}); "
                "use a printable name of at most {limit} characters",
                id=conn.id,
                peer=getattr(conn, "remote_address", None),
                room=room[:80],
                error=exc,
                limit=limit,
            )
            conn.close(1008, f"bad room name: use printable text, at most {limit} characters")
            return
        hub = self.hub_of(conn)
        self._enable_history(hub)
        positioned = self.history is not None and _asks_positions(conn)
        hello: dict[str, Any] = {"type": "welcome", "id": conn.id, "room": room}
        user = self._session_user(conn)
        if user is not None:
            hello["user"] = user
            hub.bind(conn, user)
        if positioned:
            hello["positions"] = True
        welcome = json.dumps(hello)
        if getattr(conn, "http_request", None) is None:
            welcome += "\n"  # raw TCP (telnet): a line of its own
        conn.send(welcome)
        self._channels[conn] = channel
        if positioned:
            # Joined at its first message, which may ask to recover from a position.
            self._awaiting[conn] = True
        else:
            hub.join(conn, channel)

    def on_message(self, from_: ConnectionInterface, msg: str | bytes) -> Deferred[int] | None:
        channel = self._channels.get(from_)
        if channel is None:
            return None  # refused in on_open, closing
        hub = self.hub_of(from_)
        if self._awaiting.pop(from_, False):
            try:
                recover = _recover_request(msg)
            except ValueError as exc:
                _log.info(
                    "Chat: closing {id}: bad recover message ({error})", id=from_.id, error=exc
                )
                from_.close(1008, f"bad recover message: {exc}")
                return None
            since, previous = recover if recover is not None else (None, [])
            joined = hub.join_positioned(
                from_, channel, self._format, since=since, previous_ids=previous
            )
            joined.addErrback(self._recovery_failed, from_)
            if recover is not None:
                return None
        # Returned so that with a hub spanning processes this sender's next
        # message waits for this one (order kept), and a failure reaches on_error.
        return hub.publish(channel, msg, exclude=[from_.id])

    def _session_user(self, conn: ConnectionInterface) -> str | None:
        key = self.session_user_key
        session = getattr(conn, "session", None)
        if key is None or session is None:
            return None
        value = session.get(key)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None
        user = str(value)
        try:
            check_name("user", user)
        except HubError:
            _log.info(
                "Chat: session key {key!r} of {id} holds no usable user name (empty, too long "
                "or control characters); connection kept without a user",
                key=key,
                id=conn.id,
            )
            return None
        return user

    @staticmethod
    def _recovery_failed(failure: Any, conn: ConnectionInterface) -> None:
        _log.warn(
            "Chat: recovering {id}'s missed messages failed ({error})",
            id=getattr(conn, "id", None),
            error=failure.getErrorMessage(),
        )

    def on_close(self, conn: ConnectionInterface) -> None:
        self._awaiting.pop(conn, None)
        channel = self._channels.pop(conn, None)
        if channel is None:
            return
        hub = self.hub_of(conn)
        hub.leave(conn, channel)
        if hub is self._fallback:
            # Connections of a ratchetpy server leave the hub on their own;
            # test doubles do not.
            hub.unregister(conn)

    def on_error(self, conn: ConnectionInterface, exc: Exception) -> None:
        _log.error(
            "Chat: error on #{rid} ({id}): {error!r}; closing it",
            rid=getattr(conn, "resource_id", None),
            id=getattr(conn, "id", None),
            error=exc,
        )
        conn.close(1011)


def _asks_positions(conn: ConnectionInterface) -> bool:
    request = getattr(conn, "http_request", None)
    query = getattr(request, "query", None) or {}
    return str(query.get("positions", "")).lower() in ("1", "true", "yes")


def _recover_request(msg: str | bytes) -> tuple[StreamPosition | None, list[str]] | None:
    """
    ``(since, previous ids)`` if ``msg`` is ``{"type": "recover", ...}``,
    ``None`` for any other message.

    Raises:
        ValueError: a recover message with bad fields (the text says which).
    """
    if not isinstance(msg, str) or not msg.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(msg)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") != "recover":
        return None
    epoch, offset, previous = data.get("epoch"), data.get("offset"), data.get("id")
    if previous is not None and not isinstance(previous, str):
        raise ValueError("id is your previous connection id, a string")
    if epoch is None and offset is None:
        return None, [previous] if previous else []
    if (
        not isinstance(epoch, str)
        or not 0 < len(epoch) <= 64
        or not isinstance(offset, int)
        or isinstance(offset, bool)
        or not 0 <= offset < 2**63
    ):
        raise ValueError("give epoch (a string) and offset (an integer >= 0) as last received")
    return StreamPosition(epoch, offset), [previous] if previous else []


BUILTINS: dict[str, type] = {"chat": Chat, "echo": EchoServer, "phpws": PhpWsServer}
"""Components ``--route /name`` can serve by name."""


def demo_endpoint(pattern: str) -> dict[str, str] | None:
    """
    How the demo page connects to a chat served at route ``pattern``.

    Returns:
        ``{"path": "/chat"}`` for a pattern without parameters;
        ``{"prefix": "/room/", "suffix": "", "room": "lobby"}`` for one
        with a single parameter (the page puts the room between prefix and
        suffix); ``None`` if the page cannot use the route (more than one
        parameter, or a requirement ``lobby`` does not meet).
    """
    params = list(_PARAM.finditer(pattern))
    if not params:
        return {"path": pattern}
    if len(params) > 1:
        return None
    param = params[0]
    requirement = param.group(2)
    if requirement is not None:
        probe = compile_pattern(pattern).fullmatch(
            pattern[: param.start()] + DEFAULT_DEMO_ROOM + pattern[param.end() :]
        )
        if probe is None:
            return None
    return {
        "prefix": pattern[: param.start()],
        "suffix": pattern[param.end() :],
        "room": DEFAULT_DEMO_ROOM,
    }


def demo_page(ws_path: str = "/chat") -> StaticResponse:
    """
    The browser chat page, talking to the chat at route ``ws_path`` on the
    same host and port (``ws://`` or ``wss://`` as the page was loaded).

    It shows the client's id and room from the chat's welcome message; for
    a route with a parameter (``/room/{name}``) it has a room field and
    starts in ``lobby``. It reconnects on its own after a lost connection,
    waiting longer each time (1 s doubling to 30 s, with jitter).

    Raises:
        ValueError: the page cannot connect to ``ws_path`` (see
            :func:`demo_endpoint`).
    """
    endpoint = demo_endpoint(ws_path)
    if endpoint is None:
        raise ValueError(
            f"the demo page needs a chat route with at most one parameter that accepts "
            f"{DEFAULT_DEMO_ROOM!r}, not {ws_path!r}"
        )
    template = resources.files("ratchetpy").joinpath("static/chat.html").read_text("utf-8")
    # json.dumps gives a JS object literal; escape '<' so no '</script>' can close the tag.
    literal = json.dumps(endpoint).replace("<", "\\u003c")
    body = template.replace(DEMO_PAGE_PLACEHOLDER, literal)
    return StaticResponse(
        body,
        "text/html; charset=utf-8",
        headers=[("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff")],
    )
