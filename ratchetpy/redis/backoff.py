# -*- test-case-name: tests.redis.test_backoff -*-
"""
``Backoff``: how long to wait before the next connection attempt.

Exponential with "equal jitter": attempt ``n`` (0-based) waits a random time
between half and all of ``min(maximum, initial * factor ** n)``. The random
half spreads the reconnections of many nodes after a Redis restart, so they
do not all arrive in the same instant; the fixed half keeps a node from
retrying in a tight loop.

The attempt count is kept here rather than taken from ``ClientService``,
which resets its count whenever TCP connects: a server that accepts TCP but
never answers AUTH (paused, overloaded, wrong password) must still see the
waits grow.
"""

from __future__ import annotations

import math
import random as _random
from collections.abc import Callable

from ..exceptions import ConfigurationError

__all__ = ["Backoff"]


class Backoff:
    """
    Jittered exponential backoff with a failure count of its own.

    Args:
        initial: the longest first wait, in seconds.
        maximum: no wait is longer.
        factor: how much the longest wait grows per failed attempt.
        random: a 0-argument callable returning a float in [0, 1) (tests pass
            a fixed one).
    """

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        factor: float = 2.0,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if not (0 < initial <= maximum and math.isfinite(maximum)):
            raise ConfigurationError(
                f"backoff needs 0 < initial <= maximum (finite), not initial={initial} maximum={maximum}"
            )
        if factor < 1:
            raise ConfigurationError(f"backoff factor must be 1 or more, not {factor}")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.random = random
        self.failures = 0

    def ceiling(self, attempt: int) -> float:
        """The longest wait before attempt ``attempt`` (0-based)."""
        if attempt > 200:  # factor ** attempt would overflow long before
            return self.maximum
        return min(self.maximum, self.initial * self.factor**attempt)

    def next_delay(self) -> float:
        """The wait before the next attempt; counts one more failure."""
        ceiling = self.ceiling(self.failures)
        self.failures += 1
        return ceiling / 2 + self.random() * ceiling / 2

    def reset(self) -> None:
        """A connection worked: the next wait starts from ``initial`` again."""
        self.failures = 0

    def __call__(self, attempt: int) -> float:
        """``ClientService``'s retry policy: its own ``attempt`` is ignored (see the module docs)."""
        return self.next_delay()
