"""Wire payloads from the server become typed events; anything that breaks the contract is a ValueError."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from client_sdk import Group, GroupEvent, Message, Presence, Receipt, Sent, ServerError, Status, Typing
from client_sdk._events import GroupList, SyncPage, cursor_of, parse_inbox, parse_presence, parse_sequenced
from client_sdk.contract import load_schema

STORED = {
    "id": "m-1",
    "conversation": "dm:alice:bob",
    "seq": 3,
    "from": "alice",
    "to": "bob",
    "text": "hello",
    "ts": 1764100000.12,
}
MESSAGE = {"v": 1, "type": "message", "cursor": 7, "message": STORED}
SENT = {"v": 1, "type": "sent", "cursor": 4, "ref": "c-1", "message": STORED}
RECEIPT = {
    "v": 1,
    "type": "receipt",
    "cursor": 5,
    "status": "delivered",
    "message_id": "m-1",
    "conversation": "dm:alice:bob",
    "seq": 3,
    "by": "bob",
    "all": True,
    "ts": 1764100001.5,
}
GROUP_SNAPSHOT = {
    "id": "g:7f3a9c",
    "name": "Climbing",
    "members": ["alice", "bob", "carol"],
    "admins": ["alice"],
}
GROUP = {
    "v": 1,
    "type": "group",
    "cursor": 9,
    "ref": "c-7",
    "action": "created",
    "by": "alice",
    "affected": ["alice", "bob", "carol"],
    "group": GROUP_SNAPSHOT,
    "ts": 1764100002.0,
}
GROUPS = {"v": 1, "type": "groups", "ref": "c-13", "groups": [GROUP_SNAPSHOT]}
GROUP_MESSAGE = {
    "v": 1,
    "type": "message",
    "cursor": 10,
    "message": {**STORED, "conversation": "g:7f3a9c", "to": "g:7f3a9c"},
}
TYPING = {"v": 1, "type": "typing", "from": "alice", "state": "composing"}
ERROR = {"v": 1, "type": "error", "ref": "c-1", "code": "unknown_user", "message": "no user 'bobb'"}
SYNC_PAGE = {
    "v": 1,
    "type": "sync_page",
    "ref": "c-5",
    "entries": [SENT, RECEIPT, MESSAGE, GROUP],
    "more": True,
    "cursor": 9,
}
PRESENCE = {"v": 1, "type": "presence", "user": "bob", "status": "online", "last_seen": 1764100000.0}

ALL_EXAMPLES = [MESSAGE, SENT, RECEIPT, GROUP, GROUPS, GROUP_MESSAGE, TYPING, ERROR, SYNC_PAGE, PRESENCE]
"""One valid payload of each kind (presence last: it is not an inbox event)."""


@pytest.mark.parametrize("payload", ALL_EXAMPLES, ids=lambda p: p["type"])
def test_the_examples_here_follow_the_published_schema(payload: dict[str, Any]) -> None:
    # Given the JSON Schema of the contract, When an example is validated, Then it conforms
    Draft202012Validator(load_schema()).validate(payload)


def test_a_message_event_maps_the_wire_names() -> None:
    # When a message event is parsed
    event = parse_inbox(MESSAGE)

    # Then from/to become sender/recipient and the cursor is kept
    assert event == Message(
        id="m-1",
        conversation="dm:alice:bob",
        seq=3,
        sender="alice",
        recipient="bob",
        text="hello",
        ts=1764100000.12,
        cursor=7,
    )


def test_a_sent_event_carries_the_stored_message_at_its_cursor() -> None:
    # When a sent event is parsed
    event = parse_inbox(SENT)

    # Then it names the command and holds the stored message
    assert isinstance(event, Sent)
    assert (event.ref, event.cursor, event.message.id, event.message.cursor) == ("c-1", 4, "m-1", 4)


def test_a_receipt_event_has_a_status_enum() -> None:
    # When a read receipt is parsed
    event = parse_inbox({**RECEIPT, "status": "read"})

    # Then its status is Status.READ
    assert event == Receipt(
        message_id="m-1",
        conversation="dm:alice:bob",
        seq=3,
        status=Status.READ,
        by="bob",
        ts=1764100001.5,
        cursor=5,
        all=True,
    )


def test_a_receipt_for_one_member_of_a_group_is_not_for_all() -> None:
    # When a group receipt for one member (others still pending) is parsed
    event = parse_inbox({**RECEIPT, "conversation": "g:7f3a9c", "by": "carol", "all": False})

    # Then it says who and that it is not everyone's yet
    assert isinstance(event, Receipt)
    assert (event.by, event.all) == ("carol", False)


def test_a_group_message_names_its_group() -> None:
    # When a 1-on-1 message and a group message are parsed
    direct = parse_inbox(MESSAGE)
    group = parse_inbox(GROUP_MESSAGE)

    # Then only the group message has a group, and its recipient is the group id
    assert isinstance(direct, Message)
    assert isinstance(group, Message)
    assert direct.group is None
    assert (group.group, group.recipient, group.sender) == ("g:7f3a9c", "g:7f3a9c", "alice")


def test_a_group_event_holds_the_group_after_the_change() -> None:
    # When a group event is parsed
    event = parse_inbox(GROUP)

    # Then it is a GroupEvent with the group snapshot and the lists as tuples
    assert event == GroupEvent(
        action="created",
        group=Group(id="g:7f3a9c", name="Climbing", members=("alice", "bob", "carol"), admins=("alice",)),
        by="alice",
        affected=("alice", "bob", "carol"),
        ref="c-7",
        ts=1764100002.0,
        cursor=9,
    )


def test_a_group_event_made_by_someone_else_has_no_ref() -> None:
    # When a group event about a change bob made is parsed
    removed = {**GROUP_SNAPSHOT, "members": ["alice", "bob"]}
    payload = {
        **GROUP,
        "ref": None,
        "action": "removed",
        "by": "bob",
        "affected": ["carol"],
        "group": removed,
    }
    Draft202012Validator(load_schema()).validate(payload)
    event = parse_inbox(payload)

    # Then its ref is None and the group no longer lists carol
    assert isinstance(event, GroupEvent)
    assert (event.ref, event.action, event.affected) == (None, "removed", ("carol",))
    assert event.group.members == ("alice", "bob")


def test_an_action_a_newer_server_adds_still_makes_a_group_event() -> None:
    # When a group event with an action this SDK does not know is parsed
    event = parse_inbox({**GROUP, "action": "demoted"})

    # Then it is still a group event (so the group it carries is not lost)
    assert isinstance(event, GroupEvent)
    assert event.action == "demoted"


def test_the_answer_to_group_list_is_a_group_list() -> None:
    # When a groups answer (one group, and then none) is parsed
    answer = parse_inbox(GROUPS)
    empty = parse_inbox({**GROUPS, "groups": []})

    # Then it lists the groups and names the command it answers
    assert answer == GroupList(
        ref="c-13",
        groups=(Group(id="g:7f3a9c", name="Climbing", members=("alice", "bob", "carol"), admins=("alice",)),),
    )
    assert empty == GroupList(ref="c-13", groups=())


def test_live_only_events() -> None:
    # When typing and error events are parsed (an error may have no ref)
    typing = parse_inbox(TYPING)
    error = parse_inbox(ERROR)
    anonymous_error = parse_inbox({**ERROR, "ref": None, "code": "bad_json"})

    # Then they become Typing and ServerError
    assert typing == Typing(sender="alice", state="composing")
    assert error == ServerError(ref="c-1", code="unknown_user", message="no user 'bobb'")
    assert anonymous_error == ServerError(ref=None, code="bad_json", message="no user 'bobb'")


def test_a_sync_page_pairs_each_entry_with_its_cursor() -> None:
    # When a sync page is parsed
    page = parse_inbox(SYNC_PAGE)

    # Then its entries are parsed events keyed by cursor, in page order
    assert isinstance(page, SyncPage)
    assert (page.ref, page.more, page.cursor) == ("c-5", True, 9)
    assert [(cursor, type(event).__name__) for cursor, event in page.entries] == [
        (4, "Sent"),
        (5, "Receipt"),
        (7, "Message"),
        (9, "GroupEvent"),
    ]


def test_an_unreadable_sync_page_entry_keeps_its_cursor() -> None:
    # Given a page whose second entry is of a type this SDK does not know
    page_payload = {**SYNC_PAGE, "entries": [SENT, {"v": 1, "type": "reaction", "cursor": 5}]}

    # When it is parsed
    page = parse_inbox(page_payload)

    # Then the entry holds its place as (cursor, None)
    assert isinstance(page, SyncPage)
    assert page.entries[1] == (5, None)


def test_a_sync_page_entry_without_a_cursor_breaks_the_page() -> None:
    # When a page has an entry without a usable cursor, Then the page is refused
    with pytest.raises(ValueError, match="entry 0 has no usable cursor"):
        parse_inbox({**SYNC_PAGE, "entries": [{"v": 1, "type": "message"}]})


def test_presence() -> None:
    # When presence payloads are parsed
    online = parse_presence(PRESENCE)
    offline = parse_presence({**PRESENCE, "status": "offline"})

    # Then online tells whether any device of the user is connected
    assert online == Presence(user="bob", status="online", last_seen=1764100000.0)
    assert online.online
    assert not offline.online


def test_unknown_fields_are_ignored() -> None:
    # Given an event from a newer server with an extra field
    payload = {**MESSAGE, "priority": "high", "message": {**STORED, "reply_to": "m-0"}}

    # When it is parsed, Then the known fields still make the event
    assert parse_inbox(payload) == parse_inbox(MESSAGE)


def test_events_are_immutable() -> None:
    # Given a parsed event
    event = parse_inbox(MESSAGE)
    assert isinstance(event, Message)

    # When a field is assigned, Then it is refused
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.text = "changed"  # type: ignore[misc]


def with_field(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(payload)
    *parents, last = path.split(".")
    target = result
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return result


DELETE = object()


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (with_field(MESSAGE, "v", 2), "unsupported protocol version"),
        (with_field(MESSAGE, "v", True), "unsupported protocol version"),
        (with_field(MESSAGE, "type", DELETE), "'type'"),
        (with_field(MESSAGE, "type", "shout"), "unknown event type"),
        (with_field(MESSAGE, "cursor", 0), "'cursor'"),
        (with_field(MESSAGE, "cursor", "7"), "'cursor'"),
        (with_field(MESSAGE, "cursor", True), "'cursor'"),
        (with_field(MESSAGE, "message", "hello"), "'message'"),
        (with_field(MESSAGE, "message.from", DELETE), "'from'"),
        (with_field(MESSAGE, "message.from", ""), "'from'"),
        (with_field(MESSAGE, "message.seq", 1.5), "'seq'"),
        (with_field(MESSAGE, "message.ts", float("nan")), "'ts'"),
        (with_field(MESSAGE, "message.ts", "yesterday"), "'ts'"),
        (with_field(MESSAGE, "message.text", 42), "'text'"),
        (with_field(SENT, "ref", None), "'ref'"),
        (with_field(RECEIPT, "status", "sent"), "'status'"),
        (with_field(RECEIPT, "all", DELETE), "'all'"),
        (with_field(RECEIPT, "all", "yes"), "'all'"),
        (with_field(MESSAGE, "message.to", ""), "'to'"),
        (with_field(GROUP, "ref", DELETE), "'ref'"),
        (with_field(GROUP, "ref", 7), "'ref'"),
        (with_field(GROUP, "action", ""), "'action'"),
        (with_field(GROUP, "affected", "carol"), "'affected'"),
        (with_field(GROUP, "affected", ["carol", 7]), "'affected'"),
        (with_field(GROUP, "group", ["g:7f3a9c"]), "'group'"),
        (with_field(GROUP, "group.id", "7f3a9c"), "group id"),
        (with_field(GROUP, "group.name", ""), "'name'"),
        (with_field(GROUP, "group.members", DELETE), "'members'"),
        (with_field(GROUP, "group.admins", [""]), "'admins'"),
        (with_field(GROUP, "cursor", DELETE), "'cursor'"),
        (with_field(GROUPS, "ref", DELETE), "'ref'"),
        (with_field(GROUPS, "groups", {}), "'groups'"),
        (with_field(GROUPS, "groups", ["g:7f3a9c"]), "a group must be a JSON object"),
        (with_field(TYPING, "state", "shouting"), "'state'"),
        (with_field(ERROR, "ref", 7), "'ref'"),
        (with_field(SYNC_PAGE, "more", "yes"), "'more'"),
        (with_field(SYNC_PAGE, "cursor", -1), "'cursor'"),
        (with_field(SYNC_PAGE, "entries", {}), "'entries'"),
        ([MESSAGE], "JSON object"),
        ("message", "JSON object"),
    ],
)
def test_payloads_that_break_the_contract_are_refused(payload: Any, problem: str) -> None:
    # When a payload breaking the contract is parsed, Then ValueError names the problem
    with pytest.raises(ValueError, match=problem):
        parse_inbox(payload)


@pytest.mark.parametrize(
    "payload",
    [
        with_field(PRESENCE, "status", "away"),
        with_field(PRESENCE, "type", "message"),
        with_field(PRESENCE, "user", 1),
    ],
)
def test_bad_presence_payloads_are_refused(payload: dict[str, Any]) -> None:
    # When a bad presence payload is parsed, Then ValueError
    with pytest.raises(ValueError, match=r"presence|'status'|'user'"):
        parse_presence(payload)


def test_only_sequenced_types_parse_as_sequenced() -> None:
    # When a typing event is parsed as a sequenced event, Then it is refused
    with pytest.raises(ValueError, match="not a sequenced event type"):
        parse_sequenced(TYPING)


@pytest.mark.parametrize(
    ("payload", "cursor"),
    [
        (MESSAGE, 7),
        ({"cursor": 3}, 3),
        ({"cursor": 0}, None),
        ({"cursor": True}, None),
        ([1], None),
        (None, None),
    ],
)
def test_cursor_of(payload: Any, cursor: int | None) -> None:
    # When the cursor a payload claims is read, Then only a positive integer counts
    assert cursor_of(payload) == cursor


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_fuzz_arbitrary_json_is_parsed_or_refused(payload: Any) -> None:
    # When any JSON value arrives, Then it parses or raises ValueError, never anything else
    with contextlib.suppress(ValueError):
        parse_inbox(payload)


@given(
    st.sampled_from(ALL_EXAMPLES[:-1]),
    st.data(),
)
def test_fuzz_mutated_events_are_parsed_or_refused(example: dict[str, Any], data: st.DataObject) -> None:
    # Given a valid event with one field replaced by arbitrary JSON
    payload = copy.deepcopy(example)
    field = data.draw(st.sampled_from(sorted(payload)))
    payload[field] = data.draw(json_values)

    # When it is parsed, Then it is an event or a ValueError
    try:
        event = parse_inbox(payload)
    except ValueError:
        return
    assert json.dumps(dataclasses.asdict(event), default=str)
