# -*- test-case-name: tests.hub.test_history -*-
"""
Channel history: what a channel with history keeps, and the in-process store.

A channel with history (``hub.enable_history("chat:*", size=100, ttl=300)``)
is a *stream*: every publication gets the next **offset** (1, 2, 3, ...)
in the stream's **epoch**, a random string drawn when the stream is
created. The stream keeps its last ``size`` publications for ``ttl``
seconds after the latest one; its epoch and top offset live on for
``meta_ttl`` seconds (a day by default), so a position handed out stays
meaningful long after the publications themselves are gone.

A position ``(epoch, offset)`` names the last publication a receiver has.
Reading the stream *since* a position answers with what came after it, in
order, or with ``reset=True`` when that cannot be told any more: the
epoch changed (the store lost its data: Redis restarted empty, the
process restarted, the stream's metadata expired), or the publications
right after the position were trimmed (more than ``size`` came since) or
expired.

``MemoryHistory`` keeps streams in this process for a hub without a
backplane; the Redis backplane keeps them in Redis
(``ratchetpy.hub.redis_history``) with the same semantics.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..exceptions import HubError
from ..websocket.broadcast import PreparedMessage, prepare

__all__ = [
    "StreamPosition",
    "Publication",
    "HistoryResult",
    "HistoryPolicy",
    "HistoryPolicies",
    "MemoryHistory",
    "new_epoch",
    "position_of",
    "DEFAULT_HISTORY_SIZE",
    "DEFAULT_HISTORY_TTL",
    "DEFAULT_META_TTL",
    "MAX_HISTORY_SIZE",
]

DEFAULT_HISTORY_SIZE = 100
"""Publications a stream keeps unless told otherwise."""

DEFAULT_HISTORY_TTL = 300.0
"""Seconds a stream's publications live after the latest one."""

DEFAULT_META_TTL = 86400.0
"""Seconds a stream's epoch and offset live after the latest publication."""

MAX_HISTORY_SIZE = 1_000_000
"""Largest ``size`` accepted (a stream this long costs real memory per channel)."""


def new_epoch() -> str:
    """A fresh epoch: 12 random hex digits (never reused in practice)."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class StreamPosition:
    """Where a receiver is in a stream: the last offset it has, in ``epoch``."""

    epoch: str
    offset: int


def position_of(since: object) -> StreamPosition | None:
    """
    ``since`` as a ``StreamPosition`` (a position, an ``(epoch, offset)``
    pair, or ``None``).

    Raises:
        HubError: it is none of these, the epoch is not a non-empty
            printable string of at most 64 characters, or the offset is
            not an int >= 0.
    """
    if since is None:
        return None
    if isinstance(since, StreamPosition):
        epoch, offset = since.epoch, since.offset
    elif isinstance(since, (tuple, list)) and len(since) == 2:
        epoch, offset = since
    else:
        raise HubError(f"a stream position is (epoch, offset), not {since!r}")
    if not isinstance(epoch, str) or not epoch or len(epoch) > 64 or not epoch.isprintable():
        raise HubError(f"a stream position's epoch is a short printable string, not {epoch!r}")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 2**63:
        raise HubError(f"a stream position's offset is an int >= 0, not {offset!r}")
    return since if isinstance(since, StreamPosition) else StreamPosition(epoch, offset)


class Publication:
    """
    One message published on a channel, with its place in the channel's
    stream (``offset`` and ``epoch`` are ``None`` when it was not stored:
    the channel has no history, or the store could not be reached).

    ``exclude`` holds the connection ids it was not for.
    """

    __slots__ = ("channel", "offset", "epoch", "exclude", "_prepared", "_rendered")

    def __init__(
        self,
        channel: str,
        prepared: PreparedMessage,
        offset: int | None = None,
        epoch: str | None = None,
        exclude: frozenset[str] = frozenset(),
    ) -> None:
        self.channel = channel
        self.offset = offset
        self.epoch = epoch
        self.exclude = exclude
        self._prepared = prepared
        self._rendered: dict[Any, PreparedMessage] | None = None

    @classmethod
    def of(
        cls,
        channel: str,
        message: str | bytes,
        offset: int | None = None,
        epoch: str | None = None,
        exclude: Iterable[str] = (),
    ) -> Publication:
        return cls(channel, prepare(message), offset, epoch, frozenset(exclude))

    @property
    def message(self) -> str | bytes:
        """The message as published: ``str`` for text, ``bytes`` for binary."""
        return self._prepared.message

    @property
    def prepared(self) -> PreparedMessage:
        """The message framed once for every receiver."""
        return self._prepared

    @property
    def position(self) -> StreamPosition | None:
        if self.offset is None or self.epoch is None:
            return None
        return StreamPosition(self.epoch, self.offset)

    def rendered(self, render: Callable[[Publication], str | bytes]) -> PreparedMessage:
        """``render(self)`` framed, computed once per ``render`` however many receive it."""
        cache = self._rendered
        if cache is None:
            cache = self._rendered = {}
        prepared = cache.get(render)
        if prepared is None:
            prepared = cache[render] = prepare(render(self))
        return prepared

    def __repr__(self) -> str:
        return f"Publication({self.channel!r}, offset={self.offset}, epoch={self.epoch!r})"


@dataclass(frozen=True)
class HistoryResult:
    """
    What a history read answered.

    Attributes:
        publications: oldest first.
        epoch, offset: the stream's position now (its newest offset; 0 for
            a stream nothing was published on yet).
        reset: the publications after the position asked for are gone
            (see the module docs); ``publications`` is then empty.
    """

    publications: tuple[Publication, ...]
    epoch: str
    offset: int
    reset: bool = False

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(self.epoch, self.offset)


@dataclass(frozen=True)
class HistoryPolicy:
    """How much of a channel's stream is kept, and for how long (see the module docs)."""

    size: int = DEFAULT_HISTORY_SIZE
    ttl: float = DEFAULT_HISTORY_TTL
    meta_ttl: float = DEFAULT_META_TTL

    @classmethod
    def checked(cls, size: object, ttl: object, meta_ttl: object = None) -> HistoryPolicy:
        """
        A policy from caller values.

        Raises:
            HubError: ``size`` is not an int from 1 to ``MAX_HISTORY_SIZE``,
                or a TTL is not a positive number of seconds.
        """
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_HISTORY_SIZE:
            raise HubError(f"history size is a whole number from 1 to {MAX_HISTORY_SIZE}, not {size!r}")
        for name, value in (("ttl", ttl), ("meta_ttl", meta_ttl)):
            if value is None and name == "meta_ttl":
                continue
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not 0.001 <= value < 10**9
            ):
                raise HubError(f"history {name} is a positive number of seconds, not {value!r}")
        ttl_f = float(ttl)  # type: ignore[arg-type]
        meta = float(meta_ttl) if meta_ttl is not None else max(DEFAULT_META_TTL, ttl_f)  # type: ignore[arg-type]
        if meta < ttl_f:
            raise HubError(f"history meta_ttl ({meta:g} s) must be at least its ttl ({ttl_f:g} s)")
        return cls(size, ttl_f, meta)


class HistoryPolicies:
    """
    Which channels keep history: by exact name, or by prefix (a pattern
    ending in ``*``: ``"chat:*"``). An exact name wins over prefixes, and
    the longest matching prefix over shorter ones.
    """

    def __init__(self) -> None:
        self._exact: dict[str, HistoryPolicy] = {}
        self._prefixes: list[tuple[str, HistoryPolicy]] = []

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes)

    def set(self, pattern: str, policy: HistoryPolicy | None) -> None:
        """Apply ``policy`` to ``pattern`` (``None``: no history there any more)."""
        if pattern.endswith("*"):
            prefix = pattern[:-1]
            kept = [(p, pol) for p, pol in self._prefixes if p != prefix]
            if policy is not None:
                kept.append((prefix, policy))
            self._prefixes = sorted(kept, key=lambda item: -len(item[0]))
        elif policy is None:
            self._exact.pop(pattern, None)
        else:
            self._exact[pattern] = policy

    def get(self, channel: str) -> HistoryPolicy | None:
        """The policy of ``channel``, or ``None``: no history."""
        policy = self._exact.get(channel)
        if policy is not None:
            return policy
        for prefix, policy in self._prefixes:
            if channel.startswith(prefix):
                return policy
        return None


class _Stream:
    __slots__ = ("epoch", "top", "entries", "last_publish", "policy")

    def __init__(self, policy: HistoryPolicy, now: float) -> None:
        self.epoch = new_epoch()
        self.top = 0
        self.entries: deque[Publication] = deque(maxlen=policy.size)
        self.last_publish = now
        self.policy = policy


class MemoryHistory:
    """
    Streams kept in this process (a hub without a backplane).

    Expired streams are dropped as later operations come by (oldest
    first, per ``meta_ttl``), so memory holds at most the streams touched
    within their ``meta_ttl``, each at most ``size`` publications long.

    Args:
        clock: a function returning the current time in seconds.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._streams: dict[str, _Stream] = {}
        # per meta_ttl, channels in the order they were last touched
        self._ages: dict[float, OrderedDict[str, None]] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def _expire(self, now: float) -> None:
        for meta_ttl, order in self._ages.items():
            while order:
                channel = next(iter(order))
                stream = self._streams.get(channel)
                if stream is not None and stream.policy.meta_ttl == meta_ttl:
                    if stream.last_publish + meta_ttl > now:
                        break
                    del self._streams[channel]
                # expired, or a stale entry (the stream moved to another meta_ttl)
                order.popitem(last=False)

    def _stream(self, channel: str, policy: HistoryPolicy, now: float) -> _Stream:
        self._expire(now)
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(policy, now)
            self._touch(channel, stream, now)
        elif stream.policy != policy:
            # the policy changed: keep the epoch and offset, apply the new bounds
            stream.entries = deque(stream.entries, maxlen=policy.size)
            stream.policy = policy
            self._touch(channel, stream, stream.last_publish)
        if stream.entries and now - stream.last_publish >= policy.ttl:
            stream.entries.clear()
        return stream

    def _touch(self, channel: str, stream: _Stream, when: float) -> None:
        stream.last_publish = when
        order = self._ages.setdefault(stream.policy.meta_ttl, OrderedDict())
        order[channel] = None
        order.move_to_end(channel)

    def append(
        self,
        channel: str,
        prepared: PreparedMessage,
        exclude: frozenset[str],
        policy: HistoryPolicy,
    ) -> Publication:
        """Store a publication: it gets the stream's next offset."""
        now = self._clock()
        stream = self._stream(channel, policy, now)
        stream.top += 1
        publication = Publication(channel, prepared, stream.top, stream.epoch, exclude)
        stream.entries.append(publication)
        self._touch(channel, stream, now)
        return publication

    def read(
        self,
        channel: str,
        since: StreamPosition | None,
        limit: int | None,
        policy: HistoryPolicy,
    ) -> HistoryResult:
        """
        Read ``channel``'s stream (``Hub.history`` has the rules); creates
        the stream's epoch if it has none yet.
        """
        stream = self._stream(channel, policy, self._clock())
        epoch, top = stream.epoch, stream.top
        entries = stream.entries
        if since is None:
            if limit is None:
                chosen = tuple(entries)
            else:
                chosen = tuple(entries)[max(0, len(entries) - limit) :] if limit else ()
            return HistoryResult(chosen, epoch, top)
        if since.epoch != epoch or since.offset > top:
            return HistoryResult((), epoch, top, reset=True)
        if since.offset == top:
            return HistoryResult((), epoch, top)
        first = entries[0].offset if entries else None
        if first is None or first > since.offset + 1:
            return HistoryResult((), epoch, top, reset=True)
        start = since.offset + 1 - first
        stop = len(entries) if limit is None else min(len(entries), start + limit)
        chosen = tuple(entries[i] for i in range(start, stop))
        return HistoryResult(chosen, epoch, top)
