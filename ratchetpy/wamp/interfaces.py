# -*- test-case-name: tests.wamp.test_wamp_protocol -*-
"""``WampServerInterface``: what a WAMP v1 application implements."""

from __future__ import annotations

import abc
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeAlias

from ..interfaces import ComponentInterface

if TYPE_CHECKING:
    from .connection import WampConnection

__all__ = ["WampServerInterface", "WAMP_METHODS", "HandlerResult"]

HandlerResult: TypeAlias = Awaitable[object] | None
"""What a WAMP handler returns: nothing, or an awaitable (``async def``,
a ``Deferred``) that the server runs and waits for."""

WAMP_METHODS: tuple[str, ...] = (
    "on_open",
    "on_close",
    "on_error",
    "on_call",
    "on_subscribe",
    "on_unsubscribe",
    "on_publish",
)
"""The methods ``WampServer`` calls on its application."""


class WampServerInterface(ComponentInterface):
    """
    A WAMP v1 application (Ratchet's ``WampServerInterface``), as the
    AutobahnJS 0.8 client talks to it: RPC and publish/subscribe.

    Under ``WampServer`` every ``topic`` argument is a
    :class:`~ratchetpy.wamp.Topic`; under a bare ``ServerProtocol`` it is the
    resolved URI string. ``conn`` is a :class:`~ratchetpy.wamp.WampConnection`.
    Nothing is answered for you: reply to a call with ``conn.call_result()``
    or ``conn.call_error()``, and relay a publish with ``topic.broadcast()``.

    Every handler may be an ``async def`` (it may ``await`` Deferreds) or
    return a ``Deferred``; its return value is never sent, so an async
    ``on_call`` still answers with ``conn.call_result()``. Failures go
    where a raised exception would: an ``Exception`` to ``on_error`` with
    the ``WampConnection`` (also after the connection closed), a
    ``WampError`` from a message handler under ``WampServer`` to close
    1007. ``WampServer`` hands the WebSocket layer a Deferred for each
    async handler, so that layer can run one connection's handlers in
    order (see ``ratchetpy._handlers``).
    """

    @abc.abstractmethod
    def on_call(self, conn: WampConnection, id: Any, topic: Any, params: Any) -> HandlerResult:
        """
        The client called the procedure ``topic`` with call id ``id``.

        ``params`` is the list of arguments, except that a single list or
        object argument is passed as itself (``call(uri, [1, 2])`` and
        ``call(uri, 1, 2)`` both give ``[1, 2]``; ``call(uri, {"a": 1})``
        gives ``{"a": 1}``), as Ratchet does.
        """

    @abc.abstractmethod
    def on_subscribe(self, conn: WampConnection, topic: Any) -> HandlerResult:
        """
        ``conn`` subscribed to ``topic``. ``WampServer`` has already added
        it to the topic; a repeated subscribe is not reported.
        """

    @abc.abstractmethod
    def on_unsubscribe(self, conn: WampConnection, topic: Any) -> HandlerResult:
        """``conn`` unsubscribed from ``topic`` (already removed from it)."""

    @abc.abstractmethod
    def on_publish(
        self,
        conn: WampConnection,
        topic: Any,
        event: Any,
        exclude: list[Any],
        eligible: list[Any],
    ) -> HandlerResult:
        """
        ``conn`` published ``event`` to ``topic``.

        ``exclude`` lists session ids not to deliver to (the publisher's
        own when it asked ``excludeMe``); ``eligible``, when not empty, is
        the only session ids to deliver to. Pass both on:
        ``topic.broadcast(event, exclude, eligible)``.
        """
