# -*- test-case-name: tests.session.test_session -*-
"""
``Session``: the PHP application's session of one connection, read-only.

``conn.session`` has Symfony's read API (Ratchet gives ``$conn->Session``,
a Symfony ``Session``): ``get(name, default=None)``, ``has``, ``all``,
``get_id``, ``get_name``, ``is_started``, ``get_flash_bag()`` and
``get_metadata_bag()``.

Where the values are looked up:

- a Symfony application keeps its attributes under ``_sf2_attributes``,
  its flash messages under ``_sf2_flashes`` and metadata (created ``c``,
  last used ``u``, cookie lifetime ``l``) under ``_sf2_meta``;
- a plain PHP application (``$_SESSION['name'] = ...``) keeps them at the
  top level.

``get``/``has``/``all`` see both: the attribute bag first, then the plain
keys (never the ``_sf2_*`` keys themselves; ``raw`` has everything as
decoded). Ratchet only sees the bag, so plain ``$_SESSION`` keys looked
empty there (Ratchet#598).

**Why read-only.** PHP owns its sessions: it locks a session for the whole
of a request (the files handler with ``flock``, php-memcached and phpredis
with lock keys when enabled), rewrites it at the end, and garbage-collects
it. A second writer without those locks would lose updates (the PHP
request that ends later overwrites what was written meanwhile), so, as in
Ratchet, nothing here writes. To see what PHP changed since the
connection opened, ``yield conn.session.reload()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from twisted.internet import defer

__all__ = ["Session", "FlashBag", "MetadataBag", "ATTRIBUTES_KEY", "FLASHES_KEY", "META_KEY"]

ATTRIBUTES_KEY = "_sf2_attributes"
FLASHES_KEY = "_sf2_flashes"
META_KEY = "_sf2_meta"
_SYMFONY_KEYS = (ATTRIBUTES_KEY, FLASHES_KEY, META_KEY)

Loader = Callable[[], "defer.Deferred[tuple[dict[str, Any], str]]"]


def _as_dict(value: Any) -> dict[Any, Any]:
    # PHP arrays with keys 0..n-1 decode as lists.
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return dict(enumerate(value))
    return {}


class FlashBag:
    """
    Symfony's flash messages (``_sf2_flashes``), read without consuming them
    (PHP consumes them when it displays them).
    """

    def __init__(self, flashes: Mapping[Any, Any]) -> None:
        self._flashes = {str(k): v for k, v in flashes.items()}

    def peek(self, kind: str, default: list[Any] | None = None) -> list[Any]:
        """The messages of ``kind`` (``"notice"``, ``"error"``...), or ``default`` (``[]``)."""
        value = self._flashes.get(kind)
        if value is None:
            return [] if default is None else default
        return list(value) if isinstance(value, list) else list(_as_dict(value).values())

    get = peek  # read-only: getting does not remove, unlike Symfony's

    def peek_all(self) -> dict[str, list[Any]]:
        """Every kind with its messages."""
        return {kind: self.peek(kind) for kind in self._flashes}

    all = peek_all

    def has(self, kind: str) -> bool:
        """True if there are messages of ``kind``."""
        return bool(self.peek(kind))

    def keys(self) -> list[str]:
        """The kinds that have messages."""
        return [kind for kind in self._flashes if self.peek(kind)]


class MetadataBag:
    """Symfony's session metadata (``_sf2_meta``): times in seconds since the epoch."""

    def __init__(self, meta: Mapping[Any, Any]) -> None:
        self._meta = meta

    def _number(self, key: str) -> int:
        value = self._meta.get(key, 0)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    def get_created(self) -> int:
        """When the session was created (``c``), 0 if unknown."""
        return self._number("c")

    def get_last_used(self) -> int:
        """When PHP last used the session (``u``), 0 if unknown."""
        return self._number("u")

    def get_lifetime(self) -> int:
        """The session cookie's lifetime in seconds (``l``); 0: until the browser closes."""
        return self._number("l")


class Session:
    """
    A connection's PHP session, as read when it connected (see the module docs).

    Args:
        data: the decoded session (``$_SESSION``); ``{}`` for none.
        session_id: the session id from the cookie (``""`` without one).
        name: the cookie name (``session.name``).
        status: why the session is what it is: ``"found"``, ``"no-cookie"``,
            ``"missing"`` (the store has no such session), ``"expired"``,
            ``"invalid"`` (a bad id, or data that cannot be decoded),
            ``"unavailable"`` (the store is down or too slow).
        loader: reads the session again, for :meth:`reload`.

    Attributes:
        raw: the session exactly as decoded, ``_sf2_*`` keys included.
        status: see above.

    ``name in session``, ``session[name]``, ``len(session)`` and iteration
    work on the attributes too, so an empty session is falsy.
    """

    def __init__(
        self,
        data: Mapping[Any, Any] | None = None,
        session_id: str = "",
        name: str = "PHPSESSID",
        *,
        status: str = "found",
        loader: Loader | None = None,
        started: bool = True,
    ) -> None:
        self._id = session_id
        self._name = name
        self._loader = loader
        self._started = started
        self._set(dict(data or {}), status)

    def _set(self, data: dict[Any, Any], status: str) -> None:
        self.raw: dict[Any, Any] = data
        self.status = status
        bag = data.get(ATTRIBUTES_KEY)
        merged = {k: v for k, v in data.items() if k not in _SYMFONY_KEYS}
        merged.update(_as_dict(bag))
        self._attributes = merged

    # -- Symfony's SessionInterface, read side ------------------------------

    def get(self, name: str, default: Any = None) -> Any:
        """The attribute ``name`` (Symfony bag first, then plain ``$_SESSION`` keys), else ``default``."""
        return self._attributes.get(name, default)

    def has(self, name: str) -> bool:
        """True if the attribute ``name`` is set (even to ``null``)."""
        return name in self._attributes

    def all(self) -> dict[Any, Any]:
        """Every attribute: plain keys, overridden by the Symfony bag's (a copy)."""
        return dict(self._attributes)

    def get_id(self) -> str:
        """The session id (``""`` when the client sent no session cookie)."""
        return self._id

    def get_name(self) -> str:
        """The session cookie's name (``session.name``, e.g. ``PHPSESSID``)."""
        return self._name

    def is_started(self) -> bool:
        """True once the session was read (the provider reads it before ``on_open``)."""
        return self._started

    def is_empty(self) -> bool:
        """True if the session has no attribute (Symfony's ``isEmpty``)."""
        return not self._attributes

    def get_flash_bag(self) -> FlashBag:
        """Symfony's flash messages, readable without consuming them."""
        return FlashBag(_as_dict(self.raw.get(FLASHES_KEY)))

    @property
    def flashes(self) -> dict[str, list[Any]]:
        """Every flash message by kind (``get_flash_bag().peek_all()``)."""
        return self.get_flash_bag().peek_all()

    def get_metadata_bag(self) -> MetadataBag:
        """Symfony's metadata: created, last used, cookie lifetime."""
        return MetadataBag(_as_dict(self.raw.get(META_KEY)))

    def reload(self) -> defer.Deferred[Session]:
        """
        Read the session from the store again (what PHP changed since);
        fires with this same ``Session``, updated. Without a store (no
        cookie, or a Session built by hand) it stays as it is.
        """
        if self._loader is None:
            return defer.succeed(self)

        def update(result: tuple[dict[str, Any], str]) -> Session:
            data, status = result
            self._set(data, status)
            self._started = True
            return self

        return self._loader().addCallback(update)

    # -- Python conveniences -------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self._attributes

    def __getitem__(self, name: str) -> Any:
        return self._attributes[name]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._attributes)

    def __len__(self) -> int:
        return len(self._attributes)

    def __repr__(self) -> str:
        # The values may be personal data: never in a repr that ends up in logs.
        return f"<Session {self._name} {self.status}, {len(self._attributes)} attribute(s)>"
