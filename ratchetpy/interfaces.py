"""
Ratchet's core interfaces, with Python (snake_case) method names.

A PHP ``class Chat implements MessageComponentInterface`` becomes
``class Chat(MessageComponentInterface)``. The interfaces are abstract base
classes: leaving out ``on_error`` fails at instantiation, as a missing
interface method fails in PHP. Defining a PHP-style name such as
``onMessage`` fails when the class is defined, with a message naming the
snake_case method to use instead: it would otherwise never be called.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .exceptions import ComponentError

__all__ = [
    "ConnectionEvents",
    "ComponentInterface",
    "MessageInterface",
    "MessageComponentInterface",
    "ConnectionInterface",
    "PHP_METHOD_NAMES",
    "check_component",
]

PHP_METHOD_NAMES: dict[str, str] = {
    "onOpen": "on_open",
    "onMessage": "on_message",
    "onClose": "on_close",
    "onError": "on_error",
    "onCall": "on_call",
    "onSubscribe": "on_subscribe",
    "onUnSubscribe": "on_unsubscribe",
    "onUnsubscribe": "on_unsubscribe",
    "onPublish": "on_publish",
    "getSubProtocols": "get_sub_protocols",
}
"""Ratchet's camelCase method names and their ratchetpy equivalents."""


def _php_names_error(owner: str, names: Iterable[str]) -> ComponentError:
    pairs = ", ".join(f"{n}() -> {PHP_METHOD_NAMES[n]}()" for n in sorted(names))
    return ComponentError(
        f"{owner} uses PHP-style method names that ratchetpy never calls; "
        f"rename them: {pairs}"
    )


def check_component(component: object, required: Iterable[str], layer: str) -> None:
    """
    Fail loudly if ``component`` cannot serve under ``layer``.

    Any object with the ``required`` methods is accepted (duck typing), so a
    component need not subclass the interfaces. PHP-style names are refused
    because they would be silently ignored.

    Raises:
        ComponentError: a method is missing, or a PHP-style name is defined.
    """
    owner = type(component).__name__
    php = [n for n in PHP_METHOD_NAMES if callable(getattr(component, n, None))]
    if php:
        raise _php_names_error(owner, php)
    missing = [m for m in required if not callable(getattr(component, m, None))]
    if missing:
        raise ComponentError(
            f"{layer} needs a component with {', '.join(m + '()' for m in missing)}; "
            f"{owner} has none (subclass the matching ratchetpy interface)"
        )


class ConnectionEvents(abc.ABC):
    """
    What every component has, whatever its ``on_open`` takes: ``on_close``
    and ``on_error``, and the refusal of PHP-style method names.

    ``ComponentInterface`` (``on_open(conn)``) and
    ``HttpServerInterface`` (``on_open(conn, request)``) are siblings
    under it, so neither overrides the other's signature.

    Any handler may be an ``async def`` or return a Deferred: see
    ``ratchetpy._handlers`` for the order and error rules.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        php = [n for n in PHP_METHOD_NAMES if n in vars(cls)]
        if php:
            raise _php_names_error(cls.__qualname__, php)

    @abc.abstractmethod
    def on_close(self, conn: ConnectionInterface) -> Any:
        """The connection closed; called exactly once for each opened one."""

    @abc.abstractmethod
    def on_error(self, conn: ConnectionInterface, exc: Exception) -> Any:
        """
        An exception was raised while handling ``conn``.

        The connection stays open unless this method closes it (Ratchet's
        contract). If this method itself raises, the exception is logged
        and the connection closed (1011 for a WebSocket).
        """


class ComponentInterface(ConnectionEvents):
    """
    A component receives the life-cycle events of each connection.

    Every layer of a ratchetpy stack is a component wrapping the next one,
    and your application is the innermost.
    """

    @abc.abstractmethod
    def on_open(self, conn: ConnectionInterface) -> Any:
        """A new connection was opened."""


class MessageInterface(abc.ABC):
    """Something that receives messages from a connection."""

    @abc.abstractmethod
    def on_message(self, conn: ConnectionInterface, msg: str | bytes) -> Any:
        """
        A message arrived on ``conn``.

        Over WebSocket a text message is a ``str`` and a binary message is
        ``bytes``; over raw TCP each read is ``bytes``.
        """


class MessageComponentInterface(ComponentInterface, MessageInterface):
    """The interface a Hello World application implements."""


class ConnectionInterface(abc.ABC):
    """
    One client connection, the same object for its whole life.

    Keep connections in sets and compare them with ``is``. Any attribute
    you set on a connection is shared by every layer's view of it.

    Attributes:
        resource_id: an ``int`` unique in this process (Ratchet's).
        id: a ``str`` unique across processes and hosts, unguessable
            (``ratchetpy.server.ids``).
        remote_address: the peer's host.
    """

    resource_id: int
    id: str
    remote_address: str

    if TYPE_CHECKING:
        # The attribute bag: a component may set any name, which reads back as Any.
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    @abc.abstractmethod
    def send(self, data: str | bytes) -> ConnectionInterface:
        """Send ``data``; dropped quietly once the connection is closing."""

    @abc.abstractmethod
    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (``code``/``reason`` apply to WebSocket)."""
