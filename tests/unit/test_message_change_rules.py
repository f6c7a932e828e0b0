"""The rules of changing a sent message (``rules.edits``, ``rules.deletion``, ``rules.hides``),
as both stores apply them: who may, until when, and what the entries that carried it become."""

from __future__ import annotations

from dataclasses import replace

import pytest

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import MessageFacts
from workers.stores.rules.carriers import patched
from workers.stores.rules.deletion import check_user_delete
from workers.stores.rules.edits import check_edit, edit_patch
from workers.stores.rules.hides import check_hide, hidden_stub, unless_hidden

DM = MessageFacts(
    id="m1",
    conversation="dm:alice:bob",
    seq=3,
    sender="alice",
    recipient="bob",
    ts=1000.0,
    deleted=False,
    media=False,
    holders=("alice", "bob"),
)
GROUP = replace(DM, conversation="g:x", recipient="g:x", holders=("alice", "bob", "carol"), admins=("carol",))


def code_of(call: object, *args: object, **kwargs: object) -> ErrorCode:
    with pytest.raises(CommandError) as raised:
        call(*args, **kwargs)  # type: ignore[operator]
    return raised.value.code


@pytest.mark.parametrize(
    ("facts", "user", "now", "code"),
    [
        (DM, "bob", 1001.0, ErrorCode.FORBIDDEN),
        (DM, "eve", 1001.0, ErrorCode.NOT_FOUND),
        (None, "alice", 1001.0, ErrorCode.NOT_FOUND),
        (DM, "alice", 1000.0 + 901, ErrorCode.TOO_LATE),
        (replace(DM, deleted=True), "alice", 1001.0, ErrorCode.NOT_FOUND),
        (GROUP, "carol", 1001.0, ErrorCode.FORBIDDEN),  # an admin may not edit another's message
    ],
)
def test_an_edit_is_refused(facts: MessageFacts | None, user: str, now: float, code: ErrorCode) -> None:
    assert code_of(check_edit, facts, message_id="m1", user=user, text="x", now=now, window=900) == code


def test_the_sender_edits_within_the_window_and_a_caption_within_its_limit() -> None:
    assert check_edit(DM, message_id="m1", user="alice", text="x", now=1900.0, window=900) is DM
    photo = replace(DM, media=True)
    assert code_of(
        check_edit, photo, message_id="m1", user="alice", text="x" * 1025, now=1001, window=900
    ) == (ErrorCode.TOO_LARGE)


@pytest.mark.parametrize(
    ("facts", "user", "now", "code"),
    [
        (DM, "bob", 1001.0, ErrorCode.FORBIDDEN),
        (DM, "eve", 1001.0, ErrorCode.NOT_FOUND),
        (DM, "alice", 1000.0 + 172_801, ErrorCode.TOO_LATE),
        (GROUP, "bob", 1001.0, ErrorCode.FORBIDDEN),
    ],
)
def test_a_delete_for_everyone_is_refused(
    facts: MessageFacts, user: str, now: float, code: ErrorCode
) -> None:
    assert code_of(check_user_delete, facts, message_id="m1", user=user, now=now, window=172_800) == code


def test_a_group_admin_deletes_any_time_and_a_tombstone_passes_again() -> None:
    late = 1000.0 + 10**7
    assert check_user_delete(GROUP, message_id="m1", user="carol", now=late, window=172_800) is GROUP
    gone = replace(DM, deleted=True)
    assert check_user_delete(gone, message_id="m1", user="alice", now=late, window=172_800) is gone


def test_whoever_holds_a_message_may_hide_it() -> None:
    assert check_hide(DM, message_id="m1", user="bob") is DM
    assert code_of(check_hide, DM, message_id="m1", user="eve") == ErrorCode.NOT_FOUND


def test_an_edit_patch_keeps_fields_it_does_not_own_and_leaves_tombstones_and_hidden_alone() -> None:
    message = {"id": "m1", "text": "old", "ts": 1.0, "reply": {"id": "m0"}, "reactions": {"bob": "👍"}}
    entry = {"type": "message", "cursor": 4, "message": message}
    patch = edit_patch("new", 5.0)

    assert patched(entry, patch) == {**entry, "message": {**message, "text": "new", "edited_at": 5.0}}
    assert patched({**entry, "message": {"id": "m1", "deleted": True}}, patch) is None
    assert patched({**entry, "message": hidden_stub(DM)}, patch) is None
    assert patched({**entry, "message": hidden_stub(DM)}, unless_hidden(lambda m: {**m, "x": 1})) is None


def test_a_hidden_stub_says_where_the_message_was_and_nothing_it_said() -> None:
    assert hidden_stub(DM) == {
        "id": "m1",
        "conversation": "dm:alice:bob",
        "seq": 3,
        "from": "alice",
        "to": "bob",
        "ts": 1000.0,
        "hidden": True,
    }
