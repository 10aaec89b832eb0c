"""``Follower``: in order, exactly once, gaps filled from history, resets, held publications, retries."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock

from ratchetpy.exceptions import RedisUnavailable
from ratchetpy.hub.history import HistoryResult, Publication, StreamPosition
from ratchetpy.hub.recovery import MAX_HELD, Follower


def pub(offset: int, epoch: str = "E") -> Publication:
    return Publication.of("c", f"m{offset}", offset, epoch)


class Reads:
    """A history whose reads the test answers by hand."""

    def __init__(self) -> None:
        self.asked: list[StreamPosition | None] = []
        self.pending: list[defer.Deferred[HistoryResult]] = []

    def __call__(self, since):
        self.asked.append(since)
        d: defer.Deferred[HistoryResult] = defer.Deferred()
        self.pending.append(d)
        return d

    def answer(self, offsets, top, epoch="E", reset=False) -> None:
        self.pending.pop(0).callback(
            HistoryResult(tuple(pub(o, epoch) for o in offsets), epoch, top, reset)
        )


def follower(position=None, call_later=None):
    reads, got, resets = Reads(), [], []
    f = Follower(reads, lambda p: got.append(p.offset), resets.append, call_later, position)
    return f, reads, got, resets


def test_in_sequence_is_delivered_and_duplicates_are_dropped():
    f, reads, got, _ = follower()
    for offset in (1, 2, 2, 1, 3):
        f.offer(pub(offset))
    assert got == [1, 2, 3] and reads.asked == []
    assert f.position == StreamPosition("E", 3)


def test_a_gap_is_filled_from_history_before_what_was_held():
    f, reads, got, _ = follower(StreamPosition("E", 2))
    f.offer(pub(5))  # 3 and 4 missing
    f.offer(pub(6))
    assert got == [] and reads.asked == [StreamPosition("E", 2)]
    reads.answer([3, 4, 5], top=5)
    assert got == [3, 4, 5, 6]
    f.offer(pub(6))
    f.offer(pub(7))
    assert got == [3, 4, 5, 6, 7]


def test_another_epoch_is_a_reset_then_the_stream_goes_on_from_its_position():
    f, reads, got, resets = follower(StreamPosition("E", 9))
    f.offer(pub(3, "NEW"))  # heard live in the new epoch: delivered after the reset
    f.offer(pub(4, "NEW"))
    reads.answer([], top=4, epoch="NEW", reset=True)
    assert resets == [StreamPosition("NEW", 4)]
    assert got == [3, 4]
    f.offer(pub(4, "NEW"))
    f.offer(pub(5, "NEW"))
    assert got == [3, 4, 5]


def test_after_a_reset_the_stream_goes_on_from_the_position_read():
    f, reads, got, resets = follower(StreamPosition("E", 9))
    f.hold()
    f.recover()
    reads.answer([], top=6, epoch="NEW", reset=True)
    f.offer(pub(7, "NEW"))
    assert (resets, got) == ([StreamPosition("NEW", 6)], [7])


def test_held_during_a_lost_connection_then_recovered_exactly_once():
    f, reads, got, _ = follower(StreamPosition("E", 1))
    f.hold()
    f.offer(pub(4))  # heard after resubscribing, before the read
    f.offer(pub(5))
    assert got == [] and reads.asked == []
    f.recover()
    reads.answer([2, 3, 4], top=4)
    assert got == [2, 3, 4, 5]


def test_a_start_from_now_delivers_everything_held_even_what_the_read_counted():
    f, reads, got, _ = follower()
    announced = []
    d = f.recover(announce=lambda r: announced.append((r.offset, list(got))))
    f.offer(pub(7))  # heard live after the start, read later than published
    reads.answer([], top=7)
    assert announced == [(7, [])]
    assert got == [7] and d.result.offset == 7


def test_a_start_from_now_fills_a_gap_between_the_read_and_what_was_held():
    f, reads, got, _ = follower()
    f.recover()
    f.offer(pub(9))
    reads.answer([], top=6)
    assert reads.asked == [None, StreamPosition("E", 6)]
    reads.answer([7, 8, 9], top=9)
    assert got == [7, 8, 9]


def test_too_many_held_are_read_from_history_afterwards():
    f, reads, got, _ = follower(StreamPosition("E", 0))
    f.hold()
    for offset in range(1, MAX_HELD + 11):
        f.offer(pub(offset))
    f.recover()
    reads.answer([], top=0)  # nothing missed before the first held one
    assert got == list(range(1, MAX_HELD + 1))
    assert reads.asked[-1] == StreamPosition("E", MAX_HELD)
    reads.answer(range(MAX_HELD + 1, MAX_HELD + 11), top=MAX_HELD + 10)
    assert got == list(range(1, MAX_HELD + 11))


def test_a_failed_read_is_retried_with_growing_waits():
    clock = Clock()
    f, reads, got, _ = follower(StreamPosition("E", 1), clock.callLater)
    f.offer(pub(3))
    reads.pending.pop().errback(RedisUnavailable("down"))
    assert len(reads.asked) == 1
    clock.advance(0.5)
    reads.pending.pop().errback(RedisUnavailable("down"))
    clock.advance(0.5)
    assert len(reads.asked) == 2  # waits 1 s the second time
    clock.advance(0.5)
    assert len(reads.asked) == 3
    reads.answer([2, 3], top=3)
    assert got == [2, 3]


def test_without_retries_a_failed_read_delivers_what_was_held():
    f, reads, got, _ = follower(StreamPosition("E", 1))
    d = f.recover()
    f.offer(pub(3))
    reads.pending.pop().errback(RedisUnavailable("down"))
    assert got == [3]
    assert d.called  # failed, and reported in the log


def test_unstored_publications_pass_through_and_a_closed_follower_is_silent():
    f, reads, got, _ = follower(StreamPosition("E", 1))
    f.offer(Publication.of("c", "unstored"))
    assert got == [None]
    f.offer(pub(5))
    f.close()
    reads.answer([2, 3, 4, 5], top=5)
    f.offer(pub(6))
    assert got == [None]
