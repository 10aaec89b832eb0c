# -*- test-case-name: tests.swoole.test_server -*-
"""
The connection-facing half of the Swoole-style ``Server``.

``push``, ``exist``, ``is_established``, ``disconnect``, ``close``,
``bind``, ``get_client_info`` and ``stats`` reach the open connections
through the hub of the ``App`` the server runs in, by connection id
(``fd``). ``Server`` inherits them from ``Connections``; its configuration
and lifecycle are ``ratchetpy.swoole.server``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from ..exceptions import SwooleError
from ..hub import Hub
from ..websocket.connection import protocol_of
from .events import (
    WEBSOCKET_OPCODE_PING,
    WEBSOCKET_STATUS_ACTIVE,
    WEBSOCKET_STATUS_CLOSING,
    Frame,
    message_for,
)
from .http import _address
from .settings import Settings
from .tasks import Tasks, reactor_only
from .timers import Timers

if TYPE_CHECKING:
    from ..app import App

__all__ = ["Connections"]


class Connections:
    """
    The methods of ``Server`` that act on its connections (a mixin: it uses
    the server's App, settings, timers and tasks).
    """

    _attached: App | None
    _reactor: Any
    _settings: Settings
    _requests: int
    _start_time: float
    timers: Timers
    tasks: Tasks

    @property
    def hub(self) -> Hub | None:
        """The App's hub once the server runs (users, channels, ``publish``); else ``None``."""
        return self._attached.hub if self._attached is not None else None

    @property
    def connections(self) -> list[str]:
        """Ids of the open connections (Swoole's ``$server->connections``), a snapshot."""
        hub = self.hub
        return hub.ids() if hub is not None else []

    def push(self, fd: str, data: str | bytes | Frame, opcode: int | None = None) -> bool:
        """
        Send one message to connection ``fd``.

        ``str`` goes as a text frame, ``bytes`` as binary; ``opcode``
        (``WEBSOCKET_OPCODE_TEXT``/``BINARY``) converts (text must be
        UTF-8), ``WEBSOCKET_OPCODE_PING`` sends a ping.

        Returns:
            ``False`` if ``fd`` is not an open WebSocket here (never raises
            for a bad id), else ``True``.

        Raises:
            SwooleError: an opcode other than text, binary or ping, data
                that is neither ``str`` nor ``bytes``, or bytes that are not
                UTF-8 sent as text.
        """
        reactor_only("push")
        if isinstance(data, Frame):
            opcode = opcode or data.opcode
            data = data.data
        message = message_for(data, opcode)
        hub = self.hub
        if hub is None:
            return False
        if opcode == WEBSOCKET_OPCODE_PING:
            conn = hub.get(fd)
            protocol = protocol_of(conn)
            payload = message if isinstance(message, bytes) else message.encode("utf-8")
            if len(payload) > 125:
                raise SwooleError(f"a ping carries at most 125 bytes, not {len(payload)}")
            if conn is None or protocol is None or not hub.is_established(fd):
                return False
            protocol.sendPing(payload)
            return True
        return hub.send(fd, message)

    def exist(self, fd: str) -> bool:
        """True if ``fd`` is a connection of this server (Swoole's ``exist``)."""
        hub = self.hub
        return hub is not None and hub.exists(fd)

    def is_established(self, fd: str) -> bool:
        """True if ``fd`` is a WebSocket open for messages (Swoole's ``isEstablished``)."""
        hub = self.hub
        return hub is not None and hub.is_established(fd)

    def disconnect(self, fd: str, code: int = 1000, reason: str = "") -> bool:
        """
        Close WebSocket ``fd`` with ``code`` and ``reason`` (a reason over
        123 bytes of UTF-8 is cut). ``False`` for an unknown or closing id.

        Raises:
            HubError: ``code`` is not one a server may send.
        """
        reactor_only("disconnect")
        hub = self.hub
        if hub is None:
            return False
        return _result(hub.disconnect(fd, code, reason))

    def close(self, fd: str, reset: bool = False) -> bool:
        """
        Close connection ``fd``: with the closing handshake (1000), or with
        ``reset=True`` at once, dropping what is not yet sent.
        """
        reactor_only("close")
        hub = self.hub
        conn = hub.get(fd) if hub is not None else None
        if conn is None:
            return False
        if not reset:
            return self.disconnect(fd)
        transport = getattr(conn, "transport", None)
        if transport is None:
            return False
        transport.abortConnection()
        return True

    def bind(self, fd: str, uid: str | int) -> bool:
        """Bind connection ``fd`` to user ``uid`` (``server.hub.push_user(uid, ...)`` reaches every tab)."""
        reactor_only("bind")
        hub = self.hub
        conn = hub.get(fd) if hub is not None else None
        if hub is None or conn is None:
            return False
        hub.bind(conn, uid)
        return True

    def get_client_info(self, fd: str) -> dict[str, Any] | None:
        """
        What is known of connection ``fd`` (Swoole's ``getClientInfo``), or
        ``None``: Swoole's keys (``remote_ip``, ``remote_port``,
        ``server_port``, ``connect_time``, ``last_time``,
        ``last_recv_time``, ``websocket_status``, ``uid``,
        ``send_queued_bytes``) and the hub's (``id``, ``route``, ``user``,
        ``channels``, ``messages_in``, ``bytes_out``, ...).
        """
        hub = self.hub
        info = hub.local_client_info(fd) if hub is not None else None
        if hub is None or info is None:
            return None
        transport = getattr(hub.get(fd), "transport", None)
        _, remote_port = _address(transport, "getPeer")
        _, server_port = _address(transport, "getHost")
        return {
            "remote_ip": info.remote_address,
            "remote_port": remote_port,
            "server_port": server_port,
            "connect_time": int(info.connected_at),
            "last_time": int(info.last_activity),
            "last_recv_time": info.last_activity,
            "websocket_status": WEBSOCKET_STATUS_ACTIVE if hub.is_established(fd) else WEBSOCKET_STATUS_CLOSING,
            "uid": info.user,
            "send_queued_bytes": info.buffered_bytes,
            **info.as_dict(),
        }

    def stats(self) -> dict[str, Any]:
        """
        Counters: Swoole's keys (``start_time``, ``connection_num``,
        ``accept_count``, ``close_count``, ``request_count`` (HTTP requests
        the ``request`` handler got), ``tasking_num``, ``task_worker_num``,
        ``timer_num``) and the hub's ``stats()``.
        """
        hub = self.hub if self.hub is not None else Hub()
        counters = hub.counters
        pool = getattr(self._reactor, "threadpool", None)
        return {
            "start_time": int(self._start_time),
            "connection_num": counters.open,
            "accept_count": counters.accepted,
            "close_count": sum(counters.closed.values()),
            "request_count": self._requests,
            "task_worker_num": pool.max if pool is not None else self._settings.thread_pool_size or 10,
            "tasking_num": self.tasks.running,
            "timer_num": len(self.timers),
            **hub.local_stats(),
        }

    def _count_request(self) -> None:
        self._requests += 1


def _result(d: Deferred[bool]) -> bool:
    # The in-process hub's Deferreds have fired when returned.
    results: list[bool] = []
    d.addCallback(results.append)
    return bool(results and results[0])
