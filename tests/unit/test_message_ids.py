"""Message ids: 32 hex digits, the time in milliseconds then 80 random bits, made one at a time or
a batch at a time (one read of the random source for a batch of stored messages)."""

from __future__ import annotations

import time

import pytest

from broker.admin_schema import MESSAGE_ID_RE
from workers.stores.rules.messages import new_message_id, new_message_ids


@pytest.mark.parametrize("count", [1, 2, 20, 500])
def test_a_batch_of_ids_is_as_many_ids_of_the_one_form_all_different(count: int) -> None:
    before = time.time_ns() // 1_000_000

    ids = new_message_ids(count)

    after = time.time_ns() // 1_000_000
    assert len(ids) == count == len(set(ids))
    for message_id in ids:
        assert MESSAGE_ID_RE.fullmatch(message_id)
        assert before <= int(message_id[:12], 16) <= after


def test_ids_made_later_sort_later() -> None:
    first = new_message_ids(3)
    time.sleep(0.002)

    later = [new_message_id(), *new_message_ids(2)]

    assert max(first) < min(later)
