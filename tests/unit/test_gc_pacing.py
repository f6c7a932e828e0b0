"""workers/gc_pacing.py: what survives a full collection is frozen, and a refresh frees old cycles."""

from __future__ import annotations

import gc
import weakref

from workers.gc_pacing import GcPacing


class _Node:
    other: _Node


def _cycle() -> _Node:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a


def test_survivors_of_a_full_collection_are_frozen_and_refreshed_later() -> None:
    pacing = GcPacing(refresh=3600)
    pacing.start()
    try:
        assert gc.get_freeze_count() > 0  # what startup built
        # Given a connection's objects (a cycle) alive through a full collection: frozen
        connection = _cycle()
        gone = weakref.ref(connection)
        gc.collect()
        assert pacing.freezes >= 1
        assert gc.get_freeze_count() > 0
        # When the connection ends, its cycle is garbage that a frozen generation keeps
        del connection
        gc.collect()
        assert gone() is not None
        # Then once the refresh is due, the frozen objects go back and the cycle is freed
        pacing._refresh = 0
        gc.collect()  # due: unfreezes after this collection
        assert pacing.refreshes == 1
        gc.collect()
        assert gone() is None
    finally:
        pacing.stop()
    assert gc.get_freeze_count() == 0
    assert pacing._collected not in gc.callbacks


def test_survivors_of_a_middle_generation_collection_are_frozen_too() -> None:
    pacing = GcPacing(refresh=3600)
    pacing.start()
    try:
        before = gc.get_freeze_count()
        keep = [_cycle() for _ in range(1000)]
        gc.collect(1)
        assert gc.get_freeze_count() >= before + 2000
        del keep
    finally:
        pacing.stop()


def test_full_collections_walk_only_what_is_new_since_the_last_one() -> None:
    pacing = GcPacing(refresh=3600)
    pacing.start()
    try:
        survivors = [_cycle() for _ in range(20_000)]
        gc.collect()
        frozen = gc.get_freeze_count()
        assert frozen >= 40_000  # the survivors are out of the collector's generations
        assert len(gc.get_objects(generation=2)) < 1_000  # what a full collection walks now
        del survivors
    finally:
        pacing.stop()
