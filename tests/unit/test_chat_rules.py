"""The chat list's rules and the group typing gate, without a store or a broker: the page cursor
(opaque, and anything else refused), the limit's clamp, what a former member sees, the wire form
of a chat; typing at most every 2 s per user and group, a stop always let through once."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import ChatSummary
from workers.stores.rules.chats import (
    chat_wire,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    peer_of,
    visible_last,
)
from workers.typing_gate import TypingGate


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=0), st.text(min_size=1, max_size=160))
def test_a_cursor_reads_back_as_it_was_made(ts: float, conversation: str) -> None:
    assert decode_cursor(encode_cursor(ts, conversation)) == (ts, conversation)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "nope",
        "c1.",
        "c1.!!!",
        "c1.WzEsMl0",
        "c1.eyJhIjoxfQ",
        "c1.WyJ4IiwiZG06YTpiIl0",
        "c1.W3RydWUsImEiXQ",
    ],
)
def test_anything_else_is_a_bad_request(cursor: str) -> None:
    with pytest.raises(CommandError) as refused:
        decode_cursor(cursor)
    assert refused.value.code == ErrorCode.BAD_REQUEST


@given(st.text(max_size=60))
def test_no_string_breaks_the_decoder(cursor: str) -> None:
    # a cursor or a bad_request, never another exception
    with contextlib.suppress(CommandError):
        assert isinstance(decode_cursor(cursor), tuple)


def test_the_limit_is_clamped() -> None:
    assert [clamp_limit(n) for n in (None, -5, 0, 1, 50, 100, 101, 10**9)] == [50, 1, 1, 1, 50, 100, 100, 100]


def test_a_member_sees_from_joining_and_a_former_member_up_to_leaving() -> None:
    assert visible_last(10, 0, None) == 10
    assert visible_last(10, 4, None) == 10  # joined at 4
    assert visible_last(4, 4, None) == 0  # nothing since joining
    assert visible_last(10, 4, 7) == 7  # left at 7
    assert visible_last(10, 7, 7) == 0  # left before anything came


def test_the_wire_form_of_a_chat() -> None:
    direct = ChatSummary("dm:alice:bob", 5.0, 3, 1, 2, None, presence={"status": "online", "last_seen": 4.0})
    assert peer_of("dm:alice:bob", "bob") == "alice" and peer_of("g:x", "bob") is None
    assert chat_wire(direct, "bob") == {
        "conversation": "dm:alice:bob",
        "kind": "direct",
        "peer": "alice",
        "presence": {"status": "online", "last_seen": 4.0},
        "last_message": None,
        "last_seq": 3,
        "read_seq": 1,
        "unread": 2,
        "ts": 5.0,
    }
    group = ChatSummary("g:x", 5.0, 0, 0, 0, None, group_name="Crag", member=False)
    assert chat_wire(group, "bob")["group"] == {"id": "g:x", "name": "Crag", "member": False}


def test_typing_goes_through_at_most_every_interval_and_a_stop_once() -> None:
    gate = TypingGate(interval=2.0)
    assert gate.allow("a", "g:1", "composing", now=0.0)
    assert not gate.allow("a", "g:1", "composing", now=1.0)
    assert gate.allow("b", "g:1", "composing", now=1.0)  # per user
    assert gate.allow("a", "g:2", "composing", now=1.0)  # and per group
    assert gate.allow("a", "g:1", "paused", now=1.5)  # a stop after a forwarded start
    assert not gate.allow("a", "g:1", "paused", now=1.6)
    assert not gate.allow("a", "g:1", "composing", now=1.7)  # no flip-flopping past the limit
    assert gate.allow("a", "g:1", "composing", now=3.6)


def test_the_gate_forgets_old_entries_when_full() -> None:
    gate = TypingGate(interval=2.0, max_entries=3)
    for n in range(10):
        assert gate.allow(f"u{n}", "g:1", "composing", now=float(n * 3))
    # the latest user is still held back: forgetting drops the old entries first
    assert not gate.allow("u9", "g:1", "composing", now=28.0)
