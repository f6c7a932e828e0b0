"""Groups in the store, on SQLite and PostgreSQL: membership, roles, fan-out and aggregate receipts."""

from __future__ import annotations

import pytest

from client_sdk.contract import ErrorCode, Status
from tests.stores.conftest import users
from workers.errors import CommandError
from workers.stores import GroupInfo, ReceiptRequest, Store


def make_group(store: Store, n: int = 3) -> tuple[GroupInfo, list[str]]:
    people = users(store, *[f"u{i}" for i in range(n)])
    change = store.create_group(
        creator=people[0], name="team", members=people[1:], now=1.0, ref="c", max_members=10
    )
    return change.group, people


def code_of(excinfo: pytest.ExceptionInfo[CommandError]) -> ErrorCode:
    return excinfo.value.code


def test_create_puts_the_event_in_every_members_inbox(store: Store) -> None:
    group, people = make_group(store, 4)

    assert group.members == people and group.admins == [people[0]]
    for person in people:
        entries, _ = store.sync(user=person, after=0, limit=10)
        assert [e.payload["action"] for e in entries] == ["created"]
        assert entries[0].payload["group"]["id"] == group.id
        assert entries[0].payload["ref"] == ("c" if person == people[0] else None)


def test_a_group_message_is_one_message_with_one_seq_in_every_other_members_inbox(store: Store) -> None:
    group, people = make_group(store, 4)

    first = store.accept_message(
        sender=people[1], command_id="m1", recipient=group.id, text="hi all", now=2.0
    )
    second = store.accept_message(sender=people[2], command_id="m1", recipient=group.id, text="hey", now=3.0)

    assert (first.message.seq, second.message.seq) == (1, 2)
    assert first.message.conversation == group.id == first.message.recipient
    got = {e.user: e.payload for e in first.entries if e.payload["type"] == "message"}
    assert sorted(got) == sorted(p for p in people if p != people[1])
    assert {p["message"]["id"] for p in got.values()} == {first.message.id}


def test_only_members_can_send(store: Store) -> None:
    group, _ = make_group(store)
    (outsider,) = users(store, "outsider")

    with pytest.raises(CommandError) as excinfo:
        store.accept_message(sender=outsider, command_id="x", recipient=group.id, text="let me in", now=2.0)
    assert code_of(excinfo) == ErrorCode.NOT_MEMBER
    with pytest.raises(CommandError) as excinfo:
        store.accept_message(sender=outsider, command_id="y", recipient="g:nope", text="?", now=2.0)
    assert code_of(excinfo) == ErrorCode.UNKNOWN_GROUP


def test_receipts_per_member_and_all_when_everyone_is_there(store: Store) -> None:
    group, (alice, bob, carol) = make_group(store, 3)
    message = store.accept_message(
        sender=alice, command_id="m", recipient=group.id, text="t", now=2.0
    ).message

    bob_delivered = store.apply_receipts(user=bob, status=Status.DELIVERED, message_ids=[message.id], now=3.0)
    carol_read = store.apply_receipts(user=carol, status=Status.READ, message_ids=[message.id], now=4.0)
    bob_read = store.apply_receipts(user=bob, status=Status.READ, message_ids=[message.id], now=5.0)

    def seen(result: object) -> list[tuple[str, str, bool]]:
        entries = [e for e in result.entries if e.payload["type"] == "receipt"]  # type: ignore[attr-defined]
        return [(e.payload["by"], e.payload["status"], e.payload["all"]) for e in entries]

    assert seen(bob_delivered) == [(bob, "delivered", False)]
    # carol going straight to read completes "delivered" for everyone too
    assert seen(carol_read) == [(carol, "delivered", True), (carol, "read", False)]
    assert seen(bob_read) == [(bob, "read", True)]
    senders = [
        e
        for e in bob_delivered.entries + carol_read.entries + bob_read.entries
        if e.payload["type"] == "receipt"
    ]
    assert all(e.user == alice for e in senders)


def test_a_member_added_later_does_not_see_earlier_messages_and_a_removed_one_gets_nothing_more(
    store: Store,
) -> None:
    group, (alice, bob, carol) = make_group(store, 3)
    (dave,) = users(store, "dave")
    store.accept_message(sender=alice, command_id="before", recipient=group.id, text="before dave", now=2.0)

    store.add_members(group=group.id, actor=alice, members=[dave], now=3.0, ref="a", max_members=10)
    store.remove_members(group=group.id, actor=alice, members=[carol], now=4.0, ref="r")
    store.accept_message(sender=alice, command_id="after", recipient=group.id, text="after", now=5.0)

    def texts(user: str) -> list[str]:
        entries, _ = store.sync(user=user, after=0, limit=50)
        return [e.payload["message"]["text"] for e in entries if e.payload["type"] == "message"]

    assert texts(dave) == ["after"]
    assert texts(carol) == ["before dave"]
    assert texts(bob) == ["before dave", "after"]
    carol_events = [
        e.payload["action"]
        for e in store.sync(user=carol, after=0, limit=50)[0]
        if e.payload["type"] == "group"
    ]
    assert carol_events == ["created", "added", "removed"]


def test_only_admins_manage_and_clear_errors_otherwise(store: Store) -> None:
    group, (alice, bob, carol) = make_group(store, 3)
    (dave, eve) = users(store, "dave", "eve")

    cases = [
        (
            lambda: store.add_members(
                group=group.id, actor=bob, members=[dave], now=2, ref="x", max_members=10
            ),
            ErrorCode.NOT_ADMIN,
        ),
        (
            lambda: store.add_members(
                group=group.id, actor=eve, members=[dave], now=2, ref="x", max_members=10
            ),
            ErrorCode.NOT_MEMBER,
        ),
        (
            lambda: store.add_members(
                group="g:missing", actor=alice, members=[dave], now=2, ref="x", max_members=10
            ),
            ErrorCode.UNKNOWN_GROUP,
        ),
        (
            lambda: store.add_members(
                group=group.id, actor=alice, members=[bob], now=2, ref="x", max_members=10
            ),
            ErrorCode.BAD_REQUEST,
        ),
        (
            lambda: store.add_members(
                group=group.id, actor=alice, members=["ghost-user"], now=2, ref="x", max_members=10
            ),
            ErrorCode.UNKNOWN_USER,
        ),
        (
            lambda: store.add_members(
                group=group.id, actor=alice, members=[dave, eve], now=2, ref="x", max_members=4
            ),
            ErrorCode.GROUP_FULL,
        ),
        (
            lambda: store.remove_members(group=group.id, actor=bob, members=[carol], now=2, ref="x"),
            ErrorCode.NOT_ADMIN,
        ),
        (
            lambda: store.remove_members(group=group.id, actor=alice, members=[dave], now=2, ref="x"),
            ErrorCode.BAD_REQUEST,
        ),
        (
            lambda: store.promote(group=group.id, actor=alice, members=[alice], now=2, ref="x"),
            ErrorCode.BAD_REQUEST,
        ),
        (
            lambda: store.rename_group(group=group.id, actor=carol, name="mine", now=2, ref="x"),
            ErrorCode.NOT_ADMIN,
        ),
        (lambda: store.leave_group(group=group.id, user=eve, now=2, ref="x"), ErrorCode.NOT_MEMBER),
        (
            lambda: store.create_group(
                creator=alice, name="big", members=[bob, carol, dave], now=2, ref="x", max_members=3
            ),
            ErrorCode.GROUP_FULL,
        ),
        (
            lambda: store.create_group(
                creator=alice, name="me", members=[alice, bob], now=2, ref="x", max_members=10
            ),
            ErrorCode.BAD_REQUEST,
        ),
    ]
    for action, expected in cases:
        with pytest.raises(CommandError) as excinfo:
            action()
        assert code_of(excinfo) == expected, excinfo.value.message

    # nothing changed
    assert store.groups_of(alice) == [GroupInfo(group.id, "team", [alice, bob, carol], [alice])]


def test_promote_rename_and_the_last_admin_leaving(store: Store) -> None:
    group, (alice, bob, carol) = make_group(store, 3)

    renamed = store.rename_group(group=group.id, actor=alice, name="crew", now=2.0, ref="r").group
    left = store.leave_group(group=group.id, user=alice, now=3.0, ref="l").group

    assert renamed.name == "crew"
    assert left.members == [bob, carol] and left.admins == [bob]  # the longest-standing member took over
    promoted = store.promote(group=group.id, actor=bob, members=[carol], now=4.0, ref="p").group
    assert promoted.admins == [bob, carol]
    assert store.groups_of(alice) == []
    alice_events = [e.payload["action"] for e in store.sync(user=alice, after=0, limit=50)[0]]
    assert alice_events == ["created", "renamed", "left"]


def test_concurrent_receipts_complete_the_status_exactly_once(store: Store) -> None:
    import threading

    group, people = make_group(store, 6)
    sender, members = people[0], people[1:]
    messages = [
        store.accept_message(sender=sender, command_id=f"m{i}", recipient=group.id, text="t", now=2.0).message
        for i in range(5)
    ]
    completions: list[str] = []
    lock = threading.Lock()

    def acknowledge(member: str) -> None:
        result = store.apply_receipts(
            user=member, status=Status.DELIVERED, message_ids=[m.id for m in messages], now=3.0
        )
        with lock:
            completions.extend(e.payload["message_id"] for e in result.entries if e.payload["all"])

    threads = [threading.Thread(target=acknowledge, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(completions) == sorted(m.id for m in messages)


def test_concurrent_batches_of_receipts_complete_the_status_exactly_once(store: Store) -> None:
    import threading

    # Given a group of nine and five messages to it, and the members' receipts in four batches
    group, people = make_group(store, 9)
    sender, members = people[0], people[1:]
    ids = [
        store.accept_message(
            sender=sender, command_id=f"m{i}", recipient=group.id, text="t", now=2.0
        ).message.id
        for i in range(5)
    ]
    completions: list[str] = []
    lock = threading.Lock()

    def acknowledge(pair: list[str]) -> None:
        requests = [ReceiptRequest(member, Status.DELIVERED, ids) for member in pair]
        with store.batch():
            results = store.apply_receipts_of(requests, now=3.0)
            if results is None:  # the store could not: one by one
                results = [
                    store.apply_receipts(user=m, status=Status.DELIVERED, message_ids=ids, now=3.0)
                    for m in pair
                ]
        with lock:
            completions.extend(
                e.payload["message_id"] for r in results for e in r.entries if e.payload["all"]
            )

    # When the batches are applied at once
    threads = [threading.Thread(target=acknowledge, args=(members[i : i + 2],)) for i in range(0, 8, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then exactly one of them completed each message
    assert sorted(completions) == sorted(ids)
