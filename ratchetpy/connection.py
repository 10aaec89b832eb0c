"""
Connection decorators sharing one attribute bag, as in Ratchet.

Each layer gives the application its own view of a connection (the raw
``IoConnection``, a ``WsConnection`` around it, a ``WampConnection`` around
that), but they all share the attributes a user sets: ``conn.name = "x"``
on any view is visible from every other. Names starting with ``_`` and the
names a class defines stay on the view itself.

The framework's own links (the wrapped connection, the protocol) use
mangled names (``self.__wrapped``), so no attribute a user sets, however
it is spelled, can replace them.
"""

from __future__ import annotations

from typing import Any

from .interfaces import ConnectionInterface

__all__ = ["AbstractConnectionDecorator"]


class AbstractConnectionDecorator(ConnectionInterface):
    """
    Base class of a connection view wrapping another connection.

    Attribute reads that the decorator itself cannot answer are forwarded
    to the wrapped connection; public attribute writes go to the innermost
    connection, the shared bag.
    """

    def __init__(self, wrapped: ConnectionInterface) -> None:
        self.__wrapped = wrapped
        root = wrapped
        while isinstance(root, AbstractConnectionDecorator):
            root = root.get_connection()
        self.__root = root

    def get_connection(self) -> ConnectionInterface:
        """The connection this one decorates (Ratchet's ``getConnection()``)."""
        return self.__wrapped

    def get_root(self) -> ConnectionInterface:
        """The innermost connection: the shared attribute bag."""
        return self.__root

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: fall through to the bag.
        if name[0] == "_" and (name[:2] == "__" or name.startswith("_AbstractConnectionDecorator__")):
            raise AttributeError(name)
        return getattr(self.__wrapped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or hasattr(type(self), name):
            object.__setattr__(self, name, value)
        else:
            setattr(self.__root, name, value)

    def __delattr__(self, name: str) -> None:
        if name.startswith("_") or name in vars(self):
            object.__delattr__(self, name)
        else:
            delattr(self.__root, name)

    def __repr__(self) -> str:
        rid = getattr(self.__root, "resource_id", "?")
        return f"<{type(self).__name__} #{rid}>"
