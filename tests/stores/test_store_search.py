"""Full-text search of a user's own messages (every backend: SQLite FTS5, PostgreSQL tsvector,
MongoDB terms): who finds what, edits and deletes reflected at once, paging, and search strings
that are never syntax (hypothesis)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_sdk.contract import ErrorCode
from tests.stores.conftest import users
from workers.errors import CommandError
from workers.stores import Store, open_store
from workers.stores.records import TextSend
from workers.stores.rules.search import SearchPage, search_words


def search(store: Store, user: str, query: str, **options: Any) -> SearchPage:
    options.setdefault("conversation", None)
    options.setdefault("before", None)
    options.setdefault("limit", 20)
    return store.search_messages(user=user, query=query, **options)


def found(store: Store, user: str, query: str, **options: Any) -> list[str]:
    """The texts of the hits, newest first."""
    return [hit.get("text", "") for hit in search(store, user, query, **options).hits]


def send(store: Store, sender: str, to: str, text: str, now: float, command: str | None = None) -> str:
    # hits come newest first by message id, whose time part is in milliseconds: two messages of
    # one millisecond have no order between them, so each test message gets one of its own
    time.sleep(0.002)
    result = store.accept_message(
        sender=sender, command_id=command or f"c{now}", recipient=to, text=text, now=now
    )
    return result.message.id


def test_both_sides_find_a_message_by_a_prefix_of_its_words_and_nobody_else_does(store: Store) -> None:
    alice, bob, mallory = users(store, "alice", "bob", "mallory")
    send(store, alice, bob, "Dinner at Luigi's tonight?", 1.0)
    send(store, alice, bob, "the tickets are booked", 2.0)

    assert found(store, alice, "dinner") == ["Dinner at Luigi's tonight?"]
    assert found(store, bob, "LUIG tonig") == ["Dinner at Luigi's tonight?"]  # every word, as a prefix
    assert found(store, bob, "dinner tickets") == []
    assert found(store, mallory, "dinner") == []
    hit = search(store, bob, "tickets").hits[0]
    assert hit["from"] == alice and hit["to"] == bob and hit["conversation"].startswith("dm:")


def test_hits_come_newest_first_a_page_at_a_time(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    for i in range(7):
        send(store, alice, bob, f"report number {i}", float(i + 1))

    first = search(store, bob, "report", limit=3)
    assert [h["text"] for h in first.hits] == ["report number 6", "report number 5", "report number 4"]
    assert first.more and first.next is not None
    second = search(store, bob, "report", limit=3, before=first.next)
    assert [h["text"] for h in second.hits] == ["report number 3", "report number 2", "report number 1"]
    third = search(store, bob, "report", limit=3, before=second.next)
    assert [h["text"] for h in third.hits] == ["report number 0"]
    assert not third.more and third.next is None


def test_the_batch_path_indexes_texts_too(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    send(store, alice, bob, "hello", 1.0)  # the conversations exist: the batch can take them
    send(store, alice, carol, "hello", 1.5)
    sends = [TextSend(alice, "b1", bob, "apricot jam"), TextSend(alice, "b2", carol, "apricot pie")]
    results = store.accept_texts(sends, now=2.0)
    if results is None:  # MongoDB stores them one by one
        for s in sends:
            store.accept_message(
                sender=s.sender, command_id=s.command_id, recipient=s.recipient, text=s.text, now=2.0
            )

    # one batch, one millisecond: their order among themselves is not defined
    assert sorted(found(store, alice, "apricot")) == ["apricot jam", "apricot pie"]
    assert found(store, carol, "apricot") == ["apricot pie"]


def test_one_conversation_only_and_a_conversation_of_others_is_forbidden(store: Store) -> None:
    alice, bob, carol, mallory = users(store, "alice", "bob", "carol", "mallory")
    send(store, alice, bob, "meeting moved", 1.0)
    send(store, alice, carol, "meeting cancelled", 2.0)
    with_bob = search(store, alice, "meeting").hits[1]["conversation"]

    assert found(store, alice, "meeting", conversation=with_bob) == ["meeting moved"]
    for conversation in (with_bob, "dm:nobody:somebody", "g_doesnotexist0000"):
        with pytest.raises(CommandError) as refused:
            search(store, mallory, "meeting", conversation=conversation)
        assert refused.value.code == ErrorCode.FORBIDDEN


def test_a_member_who_left_a_group_finds_what_was_sent_while_they_were_in_it(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = store.create_group(
        creator=alice, name="g", members=[bob], now=1.0, ref="g1", max_members=10
    ).group.id
    send(store, alice, group, "picnic on saturday", 2.0)
    store.leave_group(group=group, user=bob, now=3.0, ref="g2")
    send(store, alice, group, "picnic moved to sunday", 4.0)
    store.add_members(group=group, actor=alice, members=[carol], now=5.0, ref="g3", max_members=10)

    assert found(store, bob, "picnic") == ["picnic on saturday"]
    assert found(store, bob, "picnic", conversation=group) == ["picnic on saturday"]
    assert found(store, carol, "picnic") == []  # joined after both
    assert found(store, alice, "picnic", conversation=group) == [
        "picnic moved to sunday",
        "picnic on saturday",
    ]


def test_edits_deletes_and_hides_are_reflected_at_once(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    edited = send(store, alice, bob, "the password is swordfish", 1.0)
    deleted = send(store, alice, bob, "secret plans attached", 2.0)
    hidden = send(store, alice, bob, "secret recipe", 3.0)

    store.edit_message(
        edited, user=alice, text="the password is marlin", command_id="e1", now=4.0, window=900
    )
    store.delete_for_everyone(deleted, by=alice, now=5.0)
    store.hide_message(hidden, user=bob, command_id="h1", now=6.0)

    assert found(store, bob, "swordfish") == []
    [hit] = search(store, bob, "marlin").hits
    assert hit["id"] == edited and hit["edited_at"] == 4.0
    assert found(store, bob, "plans") == [] and found(store, alice, "plans") == []
    assert found(store, bob, "secret") == []  # hidden for bob, deleted for all
    assert found(store, alice, "secret") == ["secret recipe"]  # alice did not hide it
    store.edit_message(edited, user=alice, text="no more secrets", command_id="e2", now=7.0, window=900)
    assert found(store, bob, "marlin") == [] and [h["id"] for h in search(store, alice, "secrets").hits] == [
        edited
    ]


def test_a_malformed_cursor_finds_nothing_it_should_not(store: Store) -> None:
    # the pipeline refuses a cursor that is not a message id; a well-formed one from nowhere pages
    # from there, and never past what the user may see
    alice, bob, mallory = users(store, "alice", "bob", "mallory")
    send(store, alice, bob, "quarterly figures", 1.0)
    assert found(store, bob, "quarterly", before="f" * 32) == ["quarterly figures"]
    assert found(store, bob, "quarterly", before="0" * 32) == []
    assert found(store, mallory, "quarterly", before="f" * 32) == []


HOSTILE = [
    '"',
    "\"' OR 1=1 --",
    "NEAR(a b)",
    "a AND b OR NOT c",
    "*",
    "col:value",
    "^start",
    "-minus",
    "(((",
    "\\",
    "\x00",
    "$where",
    '{"$gt": ""}',
    "x" * 200,
    "🎉🎉",
    "中文消息",
    "body:dinner",
    "dinner'):* | '",
    "!dinner",
    "dinner & ! tickets",
]


def test_hostile_strings_are_words_or_nothing(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    send(store, alice, bob, "dinner tonight, 中文消息 and NEAR the start", 1.0)
    for query in HOSTILE:
        page = search(store, bob, query)
        assert all(hit["from"] == alice for hit in page.hits)
    assert found(store, bob, "中文") == ["dinner tonight, 中文消息 and NEAR the start"]
    assert found(store, bob, '"dinner") AND (*') == ["dinner tonight, 中文消息 and NEAR the start"]
    assert found(store, bob, "NEAR(dinner start)") == ["dinner tonight, 中文消息 and NEAR the start"]
    assert found(store, bob, '{"$gt": ""}') == []  # "gt" is a word here, and not in the text


_NASTY = st.sampled_from(
    [
        '"',
        "'",
        "*",
        ":",
        "^",
        "-",
        "(",
        ")",
        "\\",
        "\x00",
        "$",
        "{",
        "}",
        "NEAR",
        "AND",
        "OR",
        "NOT",
        "&",
        "|",
        "!",
    ]
)
QUERIES = (
    st.lists(
        st.one_of(
            _NASTY, st.text(min_size=1, max_size=80), st.sampled_from(["dinner", "tonight", "🎉", "中文"])
        ),
        min_size=1,
        max_size=12,
    )
    .map("".join)
    .filter(lambda q: 0 < len(q) <= 200)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES)
def test_fuzz_a_search_never_fails_and_finds_only_what_it_should(store: Store, query: str) -> None:
    alice, bob, mallory = users(store, "alice", "bob", "mallory")
    text = "dinner tonight 中文 " + query.replace("\x00", " ")  # PostgreSQL text cannot hold NUL
    send(store, alice, bob, text, 1.0)

    page = search(store, bob, query)

    assert all(hit["from"] == alice for hit in page.hits)
    # its own words are in the text: it is found (for ASCII: beyond it, each engine's Unicode
    # tables decide where a word ends, e.g. a letter newer than SQLite's tables joins a word)
    if query.isascii() and search_words(query):
        assert [hit["text"] for hit in page.hits] == [text]
    assert search(store, mallory, query).hits == []


def test_messages_pruned_by_retention_leave_the_index_with_them(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    send(store, alice, bob, "ancient history", 1.0)
    send(store, alice, bob, "recent history", 1000.0)

    while not store.prune_messages(older_than=500.0, max_conversations=100).done:
        pass

    assert found(store, bob, "history") == ["recent history"]
    send(store, alice, bob, "more history", 2000.0)  # the index still takes new texts
    assert found(store, bob, "history") == ["more history", "recent history"]


def _forget_the_index(store: Store) -> None:
    """Make the store look like one from before search: messages, and no index of them."""
    from sqlalchemy import text

    from workers.stores.mongo import MongoStore
    from workers.stores.sql import SqlStore

    if isinstance(store, MongoStore):
        store._messages.update_many({}, {"$unset": {"terms": ""}})
        return
    assert isinstance(store, SqlStore)
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER message_fts_forget_indexed"))
            conn.execute(text("DROP TABLE message_search_mark"))
            conn.execute(text("DROP TABLE message_fts"))
            conn.execute(text("DROP TABLE message_search"))
        else:
            conn.execute(text("DROP TABLE message_tsv"))


def test_messages_from_before_search_are_indexed_at_start(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    for i in range(3):
        send(store, alice, bob, f"old message {i}", float(i + 1))
    gone = send(store, alice, bob, "old secret", 5.0)
    store.delete_for_everyone(gone, by=alice, now=6.0)
    _forget_the_index(store)

    store.create_schema()  # a node starts on the database
    store.create_schema()  # and another: nothing twice

    assert found(store, bob, "old") == ["old message 2", "old message 1", "old message 0"]
    send(store, alice, bob, "new message", 10.0)
    assert found(store, bob, "message") == ["new message", "old message 2", "old message 1", "old message 0"]


def test_a_long_word_is_found_by_a_long_prefix_and_not_by_a_wrong_one(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    send(store, alice, bob, "Supercalifragilisticexpialidocious indeed", 1.0)
    send(store, alice, bob, "supercalifragilistic alone", 2.0)

    assert found(store, bob, "supercalifragilisticexpi") == ["Supercalifragilisticexpialidocious indeed"]
    assert len(found(store, bob, "supercalifragilistic")) == 2
    assert found(store, bob, "supercalifragilisticexpo") == []


def test_edits_deletes_and_pruning_on_both_sides_of_the_index_catching_up(store: Store) -> None:
    """SQLite indexes texts a few transactions at a time: whether a message is in the index yet or
    still waits for it, an edit, a delete for everyone and a pruning reach search."""
    alice, bob, carol = users(store, "alice", "bob", "carol")
    indexed_edit = send(store, alice, bob, "alpha one", 1.0)
    indexed_gone = send(store, alice, bob, "alpha two", 2.0)
    assert len(found(store, bob, "alpha")) == 2  # the search took them into the index
    waiting_edit = send(store, alice, bob, "alpha three", 3.0)
    waiting_gone = send(store, alice, bob, "alpha four", 4.0)
    for message, text in ((indexed_edit, "beta one"), (waiting_edit, "beta three")):
        store.edit_message(message, user=alice, text=text, command_id=f"e{message}", now=5.0, window=900)
    for message in (indexed_gone, waiting_gone):
        store.delete_for_everyone(message, by=alice, now=6.0)
    # more than wait for the index at once (search_index._PENDING_DOCS): the next message's
    # transaction indexes them, and the edited and deleted ones as they are now
    time.sleep(0.002)
    sends = [TextSend(alice, f"m{i}", bob, f"gamma {i}") for i in range(70)]
    with store.batch():
        if store.accept_texts(sends, now=1000.0) is None:  # MongoDB stores them one by one
            for s in sends:
                store.accept_message(
                    sender=s.sender, command_id=s.command_id, recipient=s.recipient, text=s.text, now=1000.0
                )
    send(store, alice, carol, "delta old", 7.0)
    assert found(store, bob, "beta") == ["beta three", "beta one"]
    assert found(store, bob, "alpha") == []
    send(store, alice, carol, "delta older", 8.0)  # waits for the index; pruned before it

    while not store.prune_messages(older_than=500.0, max_conversations=100).done:
        pass

    assert found(store, bob, "beta") == [] and found(store, carol, "delta") == []
    assert len(found(store, bob, "gamma", limit=100)) == 70
    assert found(store, alice, "gamma 69") == ["gamma 69"]
    send(store, alice, carol, "delta new", 2000.0)
    assert found(store, carol, "delta") == ["delta new"]


def test_sqlite_texts_still_waiting_for_the_index_when_a_process_stops_are_found_after(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    stopped = open_store(url)
    stopped.create_schema()
    alice, bob = users(stopped, "alice", "bob")
    send(stopped, alice, bob, "sent before the crash", 1.0)
    edited = send(stopped, alice, bob, "typo befroe the crash", 2.0)
    stopped.edit_message(
        edited, user=alice, text="fixed before the crash", command_id="e1", now=3.0, window=900
    )
    try:  # the first process still holds its connection, as a killed one's file does
        restarted = open_store(url)
        restarted.create_schema()

        assert found(restarted, bob, "crash") == ["fixed before the crash", "sent before the crash"]
        assert found(restarted, bob, "befroe") == []
        restarted.close()
    finally:
        stopped.close()


# the trigger of a database from before texts waited for the index
_OLD_TRIGGER = (
    "CREATE TRIGGER message_fts_forget BEFORE DELETE ON messages WHEN old.body <> '' BEGIN"
    " INSERT INTO message_fts (message_fts, rowid, body, who, conv) SELECT 'delete', doc, old.body,"
    " (SELECT group_concat('u' || lower(hex(u)), ' ') FROM (SELECT old.sender_id AS u UNION"
    " SELECT user_id FROM receipts WHERE message_id = old.id ORDER BY 1)),"
    " 'c' || lower(hex(old.conversation_id)) FROM message_search WHERE message_id = old.id; END"
)


def test_a_sqlite_index_from_before_texts_waited_for_it_is_taken_as_it_is(tmp_path: Path) -> None:
    from sqlalchemy import text

    from workers.stores.sql import SqlStore

    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    assert isinstance(store, SqlStore)
    store.create_schema()
    try:
        alice, bob = users(store, "alice", "bob")
        for i in range(3):
            send(store, alice, bob, f"indexed message {i}", float(i + 1))
        assert len(found(store, bob, "indexed")) == 3
        with store.engine.begin() as conn:  # every doc in the index, and no mark of how far
            conn.execute(text("DROP TRIGGER message_fts_forget_indexed"))
            conn.execute(text("DROP TABLE message_search_mark"))
            conn.execute(text(_OLD_TRIGGER))

        store.create_schema()  # the new code starts on it

        assert found(store, bob, "indexed") == ["indexed message 2", "indexed message 1", "indexed message 0"]
        send(store, alice, bob, "waiting message", 500.0)
        while not store.prune_messages(older_than=2.5, max_conversations=100).done:
            pass
        assert found(store, bob, "message") == ["waiting message", "indexed message 2"]
    finally:
        store.close()
