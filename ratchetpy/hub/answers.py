# -*- test-case-name: tests.hub.test_redis_backplane -*-
"""
Answers a node waits for from other nodes: how many a publish reached,
whether a push was delivered, a ``client_info``.

Each question gets a request id that travels in the envelope (``r``); the
answers come back as ``ack`` envelopes on the asking node's channel. A
question settles when as many answers as expected have come (the
expected number is known from PUBLISH's reply: how many nodes heard it),
or at ``timeout``, with what arrived: it never waits longer, and it never
fails.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

__all__ = ["Answers", "Question"]


class Question:
    """One question to other nodes and the answers so far."""

    __slots__ = ("deferred", "expected", "answers", "timer", "combine")

    def __init__(self, combine: Callable[[list[Any]], Any], timer: Any) -> None:
        self.deferred: defer.Deferred[Any] = defer.Deferred()
        self.expected: int | None = None
        self.answers: list[Any] = []
        self.timer = timer
        self.combine = combine

    def settle(self) -> None:
        """Fire with ``combine(answers)`` (once), whatever has arrived."""
        if self.deferred.called:
            return
        if self.timer.active():
            self.timer.cancel()
        self.deferred.callback(self.combine(self.answers))

    def check(self) -> None:
        """Settle if every expected answer has come."""
        if self.expected is not None and len(self.answers) >= self.expected:
            self.settle()


class Answers:
    """The open questions of one node, by request id."""

    def __init__(self, reactor: Any, timeout: float, on_timeout: Callable[[], object]) -> None:
        self._reactor = reactor
        self._timeout = timeout
        self._on_timeout = on_timeout
        self._open: dict[str, Question] = {}
        self._ids = itertools.count(1)

    def open(self, combine: Callable[[list[Any]], Any]) -> tuple[str, Question]:
        """A new question; its id and the question (whose ``deferred`` fires once)."""
        rid = f"{next(self._ids):x}"
        question = Question(combine, self._reactor.callLater(self._timeout, self._expired, rid))
        self._open[rid] = question
        question.deferred.addBoth(self._forget, rid)
        return rid, question

    def get(self, rid: str) -> Question | None:
        """The open question with this id, if any (late answers find none)."""
        return self._open.get(rid)

    def settle_all(self) -> None:
        """Settle every open question now (the connection that would answer is gone)."""
        for question in list(self._open.values()):
            question.settle()

    def __len__(self) -> int:
        return len(self._open)

    def _forget(self, result: Any, rid: str) -> Any:
        self._open.pop(rid, None)
        return result

    def _expired(self, rid: str) -> None:
        question = self._open.get(rid)
        if question is not None:
            self._on_timeout()
            question.settle()
