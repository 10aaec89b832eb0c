# -*- test-case-name: tests.websocket.test_flow -*-
"""
Backpressure: what happens when a client reads slower than the server sends.

Each connection's outgoing bytes that the kernel has not taken yet are
``conn.buffered_amount``. When they pass ``WsServer(max_buffered_bytes=...)``
the server applies its ``overflow_policy``:

- ``"close"`` (default): close the connection with ``overflow_close_code``
  (1008 by default) and the reason "send buffer full"; later sends are
  dropped, and a peer that does not read the close frame either is dropped
  after ``close_timeout``. Memory stays bounded by the limit plus the one
  message that crossed it.
- ``"drop"``: drop this client's messages until its buffer drains below
  half the limit (``conn.dropped_messages`` counts them).
- ``"notify"``: only call the hooks below; the application decides.

A single message bigger than the limit still goes out when nothing else is
queued; the queue stays under the limit plus one message.

Hooks on the component, both optional: ``on_backpressure(conn, buffered)``
when the limit is crossed, and ``on_drain(conn)`` once the buffer is back
under half the limit. Exceptions from them go to ``on_error``.

The other direction (a client sending faster than the application
consumes) is ``conn.pause_reading()`` / ``conn.resume_reading()``, which
pause the transport (Twisted's producer API): the kernel's receive window
then pushes back on the client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from ._engine import STATE_OPEN
from ._tcpwrite import buffered_bytes

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from .protocol import WsServerProtocol

__all__ = ["SendBufferWatch", "OVERFLOW_POLICIES", "DRAIN_POLL_SECONDS"]

OVERFLOW_POLICIES = ("close", "drop", "notify")
"""Accepted values of ``WsServer(overflow_policy=...)``."""

DRAIN_POLL_SECONDS = 0.05
"""How often an over-limit connection's buffer is checked for draining."""

_log = Logger(namespace="ratchetpy.websocket")


class SendBufferWatch:
    """The send-buffer state of one connection; created on its first backlog."""

    __slots__ = ("_protocol", "over", "dropped", "_timer")

    def __init__(self, protocol: WsServerProtocol) -> None:
        self._protocol = protocol
        self.over = False
        self.dropped = 0
        self._timer: IDelayedCall | None = None

    def buffered(self) -> int:
        """Bytes queued for this connection: transport buffer plus Autobahn's queue."""
        protocol = self._protocol
        # Only an existing queue: reading the attribute would create one
        # (see _engine._LazySendQueue).
        queue = protocol.__dict__.get("send_queue") or ()
        queued = sum(len(entry[0]) for entry in queue)
        transport = protocol.transport
        return queued + (buffered_bytes(transport) if transport is not None else 0)

    def check(self, size: int) -> None:
        """
        Called after a write of ``size`` bytes that left bytes queued. The
        policy applies once the queue passes the limit with more in it than
        that one write, so a single message larger than the limit alone never
        trips it, and the queue stays under the limit plus one message.
        """
        protocol = self._protocol
        server = protocol._server
        limit = server.max_buffered_bytes
        if limit is None or self.over:
            return
        amount = self.buffered()
        if amount <= limit or amount <= size:
            return
        self.over = True
        conn = protocol.conn
        policy = server.overflow_policy
        _log.warn(
            "WebSocket #{rid} from {peer} is not reading: {amount} bytes queued, over "
            "max_buffered_bytes={limit}; policy {policy!r}",
            rid=conn.resource_id,
            peer=conn.remote_address,
            amount=amount,
            limit=limit,
            policy=policy,
        )
        server.hub.counters.backpressure_event(policy)
        hook = getattr(protocol._component, "on_backpressure", None)
        if hook is not None:
            try:
                hook(conn, amount)
            except Exception as exc:  # noqa: BLE001 - user hook: goes to on_error
                protocol._handler_error(exc)
        if policy == "close":
            protocol.close_with(server.overflow_close_code, "send buffer full")
        else:
            self._schedule()

    def should_drop(self) -> bool:
        """True if the next message to this connection must be dropped."""
        if not self.over or self._protocol._server.overflow_policy != "drop":
            return False
        self.dropped += 1
        return True

    def _schedule(self) -> None:
        if self._timer is None:
            reactor = self._protocol._server._reactor
            self._timer = reactor.callLater(DRAIN_POLL_SECONDS, self._poll)

    def _poll(self) -> None:
        self._timer = None
        protocol = self._protocol
        if protocol.state != STATE_OPEN:
            return
        limit = protocol._server.max_buffered_bytes or 0
        if self.buffered() > limit // 2:
            self._schedule()
            return
        self.over = False
        hook = getattr(protocol._component, "on_drain", None)
        if hook is not None:
            try:
                hook(protocol.conn)
            except Exception as exc:  # noqa: BLE001 - user hook: goes to on_error
                protocol._handler_error(exc)

    def cancel(self) -> None:
        """Stop polling (the connection is gone)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
