"""Backoff: grows, is capped, jitters between half and all of its ceiling, resets."""

from __future__ import annotations

import pytest

from ratchetpy.exceptions import ConfigurationError
from ratchetpy.redis.backoff import Backoff


def test_waits_grow_to_the_cap_with_jitter_between_half_and_all() -> None:
    low, high = (
        Backoff(0.5, 4.0, 2.0, random=lambda: 0.0),
        Backoff(0.5, 4.0, 2.0, random=lambda: 0.999999),
    )
    lows = [low.next_delay() for _ in range(6)]
    highs = [high.next_delay() for _ in range(6)]
    assert lows == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert highs == pytest.approx([0.5, 1.0, 2.0, 4.0, 4.0, 4.0], rel=1e-5)


def test_clientservice_attempt_numbers_are_ignored_and_reset_starts_over() -> None:
    backoff = Backoff(1.0, 60.0, 2.0, random=lambda: 1.0)
    assert [backoff(1), backoff(1), backoff(1)] == [1.0, 2.0, 4.0]
    backoff.reset()
    assert backoff(7) == 1.0


def test_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(1.0, 30.0, 2.0)
    backoff.failures = 10_000
    assert 15.0 <= backoff.next_delay() <= 30.0


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"initial": 0}, "0 < initial"),
        ({"initial": 5, "maximum": 1}, "initial <= maximum"),
        ({"factor": 0.5}, "factor"),
    ],
)
def test_bad_settings(kwargs: dict[str, float], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        Backoff(**kwargs)
