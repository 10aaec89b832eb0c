# -*- test-case-name: tests.hub.test_history -*-
"""
The hub's history methods (``Hub`` inherits them): turn history on for
channels, read it, publish with a position, and join connections that
recover what they missed.

.. code-block:: python

    hub.enable_history("chat:*", size=100, ttl=300)      # every channel starting with chat:
    position = yield hub.publish_with_position("chat:lobby", "hi")   # StreamPosition(epoch, 7)
    result = yield hub.history("chat:lobby", since=("a1b2c3d4e5f6", 5))
    # HistoryResult(publications=(6, 7), epoch="a1b2c3d4e5f6", offset=7, reset=False)
    yield hub.join_positioned(conn, "chat:lobby", JsonPositions(), since=("a1b2c3d4e5f6", 5))

Without a backplane the streams live in this process (``MemoryHistory``);
with the Redis backplane they live in Redis (``redis_history``), stored
and published in one step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from ..exceptions import HubError
from ..interfaces import ConnectionInterface
from ..websocket.broadcast import PreparedMessage, prepare
from .history import (
    DEFAULT_HISTORY_SIZE,
    DEFAULT_HISTORY_TTL,
    HistoryPolicies,
    HistoryPolicy,
    HistoryResult,
    MemoryHistory,
    Publication,
    StreamPosition,
    position_of,
)
from .names import check_name
from .recovery import PositionedMembers, PositionFormat

if TYPE_CHECKING:
    from .backplane import Backplane

__all__ = ["ChannelHistoryMixin"]

_log = Logger(namespace="ratchetpy.hub.history")

ResetListener = Callable[[str, StreamPosition], object]


class ChannelHistoryMixin:
    """History and recovery on ``Hub`` (see the module docs)."""

    backplane: Backplane | None
    _clock: Callable[[], float]

    def _init_history(self) -> None:
        self.history_policies = HistoryPolicies()
        self.positioned = PositionedMembers(self)  # type: ignore[arg-type]
        self._memory_history: MemoryHistory | None = None
        self._reset_listeners: list[ResetListener] = []

    # -- policy --------------------------------------------------------------

    def enable_history(
        self,
        channels: str,
        *,
        size: int = DEFAULT_HISTORY_SIZE,
        ttl: float = DEFAULT_HISTORY_TTL,
        meta_ttl: float | None = None,
    ) -> HistoryPolicy:
        """
        Keep history for ``channels``: a channel name, or a prefix ending
        in ``*`` (``"chat:*"``). Each such channel keeps its last ``size``
        publications for ``ttl`` seconds after the latest; its epoch and
        offset live ``meta_ttl`` seconds (a day, or ``ttl`` if longer).
        Enabling again replaces the policy. With a backplane, give every
        node the same policies.

        Raises:
            HubError: a bad pattern, size or TTL (the message says which).
        """
        pattern = self._pattern(channels)
        policy = HistoryPolicy.checked(size, ttl, meta_ttl)
        self.history_policies.set(pattern, policy)
        return policy

    def disable_history(self, channels: str) -> None:
        """Stop keeping history for ``channels`` (as given to ``enable_history``)."""
        self.history_policies.set(self._pattern(channels), None)

    @staticmethod
    def _pattern(channels: object) -> str:
        if isinstance(channels, str) and channels.endswith("*") and len(channels) > 1:
            check_name("channel", channels[:-1])
            return channels
        if channels == "*":
            return "*"
        return check_name("channel", channels)

    def history_policy(self, channel: str) -> HistoryPolicy | None:
        """The history policy of ``channel``, or ``None`` (no history)."""
        return self.history_policies.get(channel) if self.history_policies else None

    # -- reading ---------------------------------------------------------------

    def history(
        self, channel: str, since: object = None, limit: int | None = None
    ) -> Deferred[HistoryResult]:
        """
        Read ``channel``'s stream.

        Args:
            since: ``None``: the newest ``limit`` publications (all when
                ``limit`` is ``None``; ``0`` reads only the position). A
                position (``StreamPosition`` or ``(epoch, offset)``): the
                publications after it, at most ``limit``, oldest first
                (page on from the last one's position), or ``reset=True``
                when they are gone (see ``ratchetpy.hub.history``).

        Returns:
            A Deferred firing with a ``HistoryResult``; with the Redis
            backplane it fails with ``RedisError`` when Redis cannot answer.

        Raises:
            HubError: the channel has no history, or a bad ``since``/``limit``.
        """
        name = check_name("channel", channel)
        policy = self.history_policy(name)
        if policy is None:
            raise HubError(
                f"channel {name!r} keeps no history: call hub.enable_history({name!r}) "
                "(or a pattern such as 'prefix:*') first"
            )
        position = position_of(since)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise HubError(f"limit is None or an int >= 0, not {limit!r}")
        backplane = self.backplane
        if backplane is not None:
            return backplane.history(name, position, limit, policy)
        try:
            return succeed(self._memory().read(name, position, limit, policy))
        except Exception:  # noqa: BLE001 - reported through the Deferred, as with Redis
            return fail()

    def _memory(self) -> MemoryHistory:
        if self._memory_history is None:
            self._memory_history = MemoryHistory(self._clock)
        return self._memory_history

    # -- publishing ------------------------------------------------------------

    def publish_with_position(
        self,
        channel: str,
        message: str | bytes | PreparedMessage,
        exclude: Iterable[str | ConnectionInterface] | None = None,
    ) -> Deferred[StreamPosition | None]:
        """
        ``publish`` (without counting receivers), firing with the
        publication's place in the stream: a ``StreamPosition``, or
        ``None`` when the channel keeps no history or the store could not
        be reached (the message then reached this node's members only).
        """
        from .hub import _ids

        name = check_name("channel", channel)
        policy = self.history_policy(name)
        if policy is None:
            return self.publish(name, message, exclude, count=False).addCallback(lambda _: None)
        prepared, excluded = prepare(message), _ids(exclude)
        return self._publish_stored(name, prepared, excluded, False, policy).addCallback(
            lambda answer: answer[1]
        )

    def _publish_stored(
        self,
        name: str,
        prepared: PreparedMessage,
        excluded: frozenset[str],
        count: bool,
        policy: HistoryPolicy,
    ) -> Deferred[tuple[int, StreamPosition | None]]:
        backplane = self.backplane
        if backplane is not None:
            # Redis stores it, then every subscribed node (this one too)
            # hears it with its position and delivers it, in stream order.
            return backplane.publish_stored(name, prepared, excluded, count, policy)
        publication = self._memory().append(name, prepared, excluded, policy)
        delivered = self.deliver_channel(name, prepared, excluded, publication)
        return succeed((delivered, publication.position))

    # -- positioned members ----------------------------------------------------

    def join_positioned(
        self,
        conn: ConnectionInterface,
        channel: str,
        format: PositionFormat,
        *,
        since: object = None,
        previous_ids: Iterable[str] = (),
    ) -> Deferred[HistoryResult]:
        """
        Join ``conn`` to ``channel`` (as ``join``) as a *positioned
        member*: it receives the channel's publications as ``format``
        renders them (with their positions), in stream order, exactly
        once, even across a reconnection of the backplane.

        With ``since`` (the last position the client had, from an earlier
        connection), the publications it missed are sent first, then
        ``format.recovered(...)`` (a ``recovered`` or, when they are gone,
        a ``reset`` message), then what was published meanwhile.
        Without, ``format.recovered`` tells the client where it starts.
        Publications that excluded one of ``previous_ids`` (the client's
        earlier connection ids, e.g. its own messages) are not sent again.

        Returns:
            A Deferred firing with the ``HistoryResult`` once the missed
            publications are sent (never, if ``conn`` leaves first).

        Raises:
            HubError: the channel keeps no history, or a bad ``since``.
        """
        name = check_name("channel", channel)
        if self.history_policy(name) is None:
            raise HubError(
                f"channel {name!r} keeps no history: call hub.enable_history({name!r}) first"
            )
        position = position_of(since)
        previous = frozenset(i for i in previous_ids if isinstance(i, str))
        self.join(conn, name)
        if name not in self.channels_of(conn):
            return Deferred()  # closing: not joined
        return self.positioned.add(conn, name, format, position, previous)

    # -- resets ------------------------------------------------------------------

    def on_history_reset(self, listener: ResetListener) -> None:
        """Call ``listener(channel, position)`` whenever this node finds publications of a channel lost for good."""
        self._reset_listeners.append(listener)

    def history_reset(self, channel: str, position: StreamPosition) -> None:
        """
        Publications of ``channel`` were lost for this node's members (the
        backplane calls this): positioned members get ``format.reset``,
        then every ``on_history_reset`` listener is called.
        """
        _log.warn(
            "History of channel {channel!r} was reset (new epoch {epoch}, offset {offset}): "
            "publications this node missed are lost",
            channel=channel,
            epoch=position.epoch,
            offset=position.offset,
        )
        self.positioned.reset(channel, position)
        for listener in list(self._reset_listeners):
            try:
                listener(channel, position)
            except Exception:  # noqa: BLE001 - one listener's bug must not stop the others
                _log.failure("A history reset listener failed for {channel!r}", channel=channel)

    # -- Hub's, for the type checker --------------------------------------------

    if TYPE_CHECKING:

        def join(self, conn: ConnectionInterface, channel: str) -> None: ...

        def channels_of(self, conn: ConnectionInterface | str) -> set[str]: ...

        def publish(
            self,
            channel: str,
            message: str | bytes | PreparedMessage,
            exclude: Iterable[str | ConnectionInterface] | None = None,
            *,
            count: bool = True,
        ) -> Deferred[int]: ...

        def deliver_channel(
            self,
            channel: str,
            prepared: PreparedMessage,
            exclude: frozenset[str] = frozenset(),
            publication: Publication | None = None,
        ) -> int: ...

    def _deliver_positioned(
        self,
        channel: str,
        prepared: PreparedMessage,
        exclude: frozenset[str],
        publication: Publication | None,
    ) -> tuple[int, frozenset[str]]:
        """
        Deliver to ``channel``'s positioned members; how many, and the
        ids the plain fan-out must leave out (those members).
        """
        members = self.positioned.members_of(channel)
        if not members:
            return 0, exclude
        if publication is None:
            publication = Publication(channel, prepared, exclude=exclude)
        count = self.positioned.deliver(channel, publication, exclude)
        return count, exclude.union(members)

