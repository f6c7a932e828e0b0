"""The SDK's history and sync_reset handling without a network: the command builder refuses bad
arguments, a history answer reads into typed messages and receipt states and settles its request,
and a sync_reset makes the session jump to the server's cursor, tell the app which conversations
it knows, and sync on from there (another device's reset is not ours)."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk import HistoryPage, Message, ReceiptState, Status, SyncReset
from client_sdk._commands import history_command
from client_sdk._events import parse_inbox
from client_sdk.contract import dm_conversation_id
from tests.unit.test_sdk_session import commands, connect, message_event, new_session, page


def reset_event(ref: str, *, after: int, cursor: int) -> dict[str, Any]:
    return {"v": 1, "type": "sync_reset", "ref": ref, "after": after, "cursor": cursor, "reason": "pruned"}


def history_event(ref: str) -> dict[str, Any]:
    mine = message_event(1, "m1", sender="alice")["message"] | {"from": "alice", "to": "bob"}
    theirs = {
        **message_event(2, "m2")["message"],
        "seq": 2,
        "deleted": True,
        "deleted_at": 2.0,
        "deleted_by": "bob",
    }
    del theirs["text"]
    return {
        "v": 1,
        "type": "history",
        "ref": ref,
        "conversation": "dm:alice:bob",
        "messages": [mine, theirs],
        "receipts": {"m1": {"status": "read", "recipients": 1, "delivered": 1, "read": 1}},
        "more": True,
    }


def test_the_history_command_is_built_and_bad_arguments_are_refused() -> None:
    assert history_command(id="h1", conversation="dm:alice:bob", before=10, limit=20) == {
        "v": 1,
        "type": "history",
        "id": "h1",
        "conversation": "dm:alice:bob",
        "before": 10,
        "limit": 20,
    }
    assert history_command(id="h2", conversation="g:abc", after=0)["after"] == 0
    for bad in ("bob", "dm:a", "g:"):
        with pytest.raises(ValueError, match="conversation"):
            history_command(id="h3", conversation=bad)
    bad_seqs: list[dict[str, Any]] = [{"before": -1}, {"after": True}, {"limit": 0}, {"limit": "5"}]
    for bad_seq in bad_seqs:
        with pytest.raises(ValueError, match="integer"):
            history_command(id="h4", conversation="g:abc", **bad_seq)
    assert dm_conversation_id("bob", "alice") == dm_conversation_id("alice", "bob") == "dm:alice:bob"


def test_a_history_answer_reads_into_a_page_and_settles_its_request() -> None:
    session = new_session()
    connect(session)
    request, effects = session.request(
        lambda id: history_command(id=id, conversation="dm:alice:bob"), HistoryPage
    )
    (sent,) = commands(effects, "history")

    assert session.on_inbox(history_event(sent["id"]), now=1.0).events == []

    answer = request.wait(timeout=0)
    assert [m.id for m in answer.messages] == ["m1", "m2"] and answer.more
    assert all(isinstance(m, Message) and m.cursor == 0 for m in answer.messages)
    assert answer.messages[1].deleted and answer.messages[1].text == ""
    assert answer.receipts == {"m1": ReceiptState(Status.READ, 1, 1, 1)}
    assert (answer.first_seq, answer.last_seq) == (1, 2)
    bad = history_event("x")
    bad["receipts"]["m1"]["status"] = "seen"
    with pytest.raises(ValueError, match="status"):
        parse_inbox(bad)


def test_a_sync_reset_jumps_to_the_servers_cursor_and_syncs_on_from_there() -> None:
    # Given a session at cursor 2 that knows one conversation and a group
    session = new_session(cursor=0)
    first = connect(session)
    session.on_inbox(page(first, [message_event(1), message_event(2)]), now=0.0)
    session.on_inbox(
        {
            "v": 1,
            "type": "groups",
            "ref": "someone-elses",
            "groups": [{"id": "g:climb", "name": "c", "members": ["alice"], "admins": ["alice"]}],
        },
        now=0.0,
    )
    session.on_disconnected()
    sync_id = connect(session, now=1.0)

    # When the server says the inbox after 2 was pruned up to 40
    effects = session.on_inbox(reset_event(sync_id, after=2, cursor=40), now=1.1)

    # Then the app hears of it with the conversations to rebuild, and the session syncs after 40
    (reset,) = effects.events
    assert isinstance(reset, SyncReset) and (reset.after, reset.cursor) == (2, 40)
    assert reset.conversations == ("dm:alice:bob", "g:climb") and reset.history == {}
    (again,) = commands(effects, "sync")
    assert again["after"] == 40 and session.cursor == 40
    # and what follows comes in order from there; older live events are duplicates
    assert session.on_inbox(message_event(3), now=1.2).events == []
    resumed = session.on_inbox(page(again["id"], [message_event(41)]), now=1.3)
    assert [e.cursor for e in resumed.events if isinstance(e, Message)] == [41]
    assert session.synced


def test_another_devices_reset_is_not_ours() -> None:
    session = new_session(cursor=5)
    connect(session)

    effects = session.on_inbox(reset_event("their-sync", after=1, cursor=40), now=0.5)

    assert effects.events == [] and commands(effects) == [] and session.cursor == 5
