"""The sequencer releases inbox events strictly in cursor order, each exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk._sequencer import Sequencer


def offer_all(sequencer: Sequencer[int], cursors: list[int], *, now: float = 0.0) -> list[int]:
    released: list[int] = []
    for cursor in cursors:
        released.extend(sequencer.offer(cursor, cursor, now=now))
    return released


@st.composite
def shuffled_with_duplicates(draw: st.DrawFn) -> tuple[int, list[int]]:
    """Cursors 1..n, each at least once, some several times, in any order."""
    n = draw(st.integers(min_value=1, max_value=60))
    cursors = list(range(1, n + 1))
    duplicates = draw(st.lists(st.sampled_from(cursors), max_size=2 * n))
    return n, draw(st.permutations(cursors + duplicates))


@given(shuffled_with_duplicates())
def test_any_arrival_order_with_duplicates_releases_each_cursor_once(case: tuple[int, list[int]]) -> None:
    # Given cursors 1..n arriving shuffled and duplicated
    n, arrivals = case
    sequencer: Sequencer[int] = Sequencer()

    # When they are all offered
    released = offer_all(sequencer, arrivals)

    # Then every cursor came out once, in order, and nothing is left waiting
    assert released == list(range(1, n + 1))
    assert sequencer.processed == n
    assert not sequencer.has_gap


@given(
    st.integers(min_value=1, max_value=60).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.integers(min_value=1, max_value=n), max_size=3 * n))
    )
)
def test_a_sync_after_live_losses_fills_every_gap(case: tuple[int, list[int]]) -> None:
    # Given some live events (any subset, shuffled, duplicated) and then a sync replaying 1..n in order
    n, live = case
    sequencer: Sequencer[int] = Sequencer()

    # When the live events and then the sync entries are offered
    released = offer_all(sequencer, live) + offer_all(sequencer, list(range(1, n + 1)))

    # Then the app saw 1..n exactly once, in order
    assert released == list(range(1, n + 1))
    assert not sequencer.has_gap


@given(st.integers(min_value=0, max_value=1000), shuffled_with_duplicates())
def test_cursors_at_or_below_the_resume_point_are_duplicates(start: int, case: tuple[int, list[int]]) -> None:
    # Given a sequencer resuming after cursor `start`
    n, arrivals = case
    sequencer: Sequencer[int] = Sequencer(processed=start)

    # When old cursors 1..start and new ones start+1..start+n arrive mixed
    released = offer_all(sequencer, list(range(1, start + 1)) + [start + c for c in arrivals])

    # Then only the new ones come out, in order
    assert released == list(range(start + 1, start + n + 1))


def test_a_gap_becomes_due_after_the_gap_timeout() -> None:
    # Given cursor 1 processed and cursor 3 arriving at t=10 (2 is missing)
    sequencer: Sequencer[str] = Sequencer(gap_timeout=0.3)
    sequencer.offer(1, "one", now=9.0)
    assert sequencer.offer(3, "three", now=10.0) == []

    # Then the gap is reported, and due only once the timeout has passed
    assert sequencer.has_gap
    assert sequencer.gap_deadline == pytest.approx(10.3)
    assert not sequencer.gap_due(now=10.2)
    assert sequencer.gap_due(now=10.3)


def test_filling_the_gap_releases_the_buffered_successors() -> None:
    # Given 1 processed and 3, 4 buffered behind the missing 2
    sequencer: Sequencer[str] = Sequencer()
    offer = sequencer.offer
    offer(1, "one", now=0.0)
    offer(3, "three", now=0.0)
    offer(4, "four", now=0.0)

    # When 2 arrives
    released = offer(2, "two", now=0.1)

    # Then 2, 3, 4 come out together and no gap is left
    assert released == ["two", "three", "four"]
    assert sequencer.processed == 4
    assert sequencer.gap_deadline is None
    assert not sequencer.gap_due(now=100.0)


def test_partial_progress_restarts_the_gap_clock() -> None:
    # Given 2 and 4 buffered behind the missing 1 since t=0
    sequencer: Sequencer[int] = Sequencer(gap_timeout=0.3)
    sequencer.offer(2, 2, now=0.0)
    sequencer.offer(4, 4, now=0.0)

    # When 1 arrives at t=0.2 (releasing 1, 2; 3 is still missing)
    assert sequencer.offer(1, 1, now=0.2) == [1, 2]

    # Then the remaining gap is measured from t=0.2
    assert sequencer.gap_deadline == pytest.approx(0.5)


def test_restarting_the_gap_clock_postpones_the_next_sync() -> None:
    # Given a gap opened at t=0
    sequencer: Sequencer[int] = Sequencer(gap_timeout=0.3)
    sequencer.offer(2, 2, now=0.0)

    # When a sync is sent at t=0.3
    sequencer.restart_gap_clock(now=0.3)

    # Then the next one is not due before t=0.6
    assert not sequencer.gap_due(now=0.5)
    assert sequencer.gap_due(now=0.6)


def test_a_duplicate_of_a_buffered_cursor_keeps_the_first_copy() -> None:
    # Given cursor 2 buffered as "first"
    sequencer: Sequencer[str] = Sequencer()
    sequencer.offer(2, "first", now=0.0)

    # When 2 arrives again, then 1
    sequencer.offer(2, "second", now=0.0)
    released = sequencer.offer(1, "one", now=0.0)

    # Then the first copy is the one released
    assert released == ["one", "first"]
    assert sequencer.buffered == 0


def test_none_items_hold_their_place_in_the_order() -> None:
    # Given an unreadable event (None) buffered at cursor 2
    sequencer: Sequencer[str | None] = Sequencer()
    sequencer.offer(2, None, now=0.0)

    # When cursor 1 arrives
    released = sequencer.offer(1, "one", now=0.0)

    # Then both are released, so the inbox does not stall on the bad event
    assert released == ["one", None]
    assert sequencer.processed == 2


def test_a_negative_resume_point_is_refused() -> None:
    # When a sequencer resumes after cursor -1, Then it is a ValueError
    with pytest.raises(ValueError, match="processed must be >= 0"):
        Sequencer[int](processed=-1)


def test_a_cursor_below_one_is_refused() -> None:
    # Given a sequencer
    sequencer: Sequencer[int] = Sequencer()

    # When cursor 0 is offered, Then it is a ValueError
    with pytest.raises(ValueError, match="cursor must be >= 1"):
        sequencer.offer(0, 0, now=0.0)
