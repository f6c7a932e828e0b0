"""Commands the SDK publishes follow the published schema; bad arguments never leave the client."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import Status
from client_sdk._commands import (
    MAX_GROUP_NAME_LENGTH,
    MAX_MEMBERS_PER_COMMAND,
    group_create_command,
    group_leave_command,
    group_list_command,
    group_members_command,
    group_rename_command,
    new_command_id,
    receipt_commands,
    send_command,
    sync_command,
    typing_command,
)
from client_sdk.contract import COMMAND_ID_RE, load_schema


def conforms(payload: dict[str, Any]) -> bool:
    return Draft202012Validator(load_schema()).is_valid(payload)


def test_every_command_follows_the_schema() -> None:
    # When one command of each type is built
    commands = [
        send_command(id="c-1", to="bob", text="hello"),
        *receipt_commands(status=Status.DELIVERED, message_ids=["m-1", "m-2"]),
        *receipt_commands(status=Status.READ, message_ids=["m-1"]),
        typing_command(id="c-4", to="bob", state="composing"),
        sync_command(id="c-5", after=0),
        send_command(id="c-6", to="g:7f3a9c", text="hello everyone"),
        group_create_command(id="c-7", name="Climbing", members=["bob", "carol"]),
        group_members_command(kind="group_add", id="c-8", group="g:7f3a9c", members=["dave"]),
        group_members_command(kind="group_remove", id="c-9", group="g:7f3a9c", members=["dave"]),
        group_members_command(kind="group_promote", id="c-10", group="g:7f3a9c", members=["bob"]),
        group_rename_command(id="c-11", group="g:7f3a9c", name="Bouldering"),
        group_leave_command(id="c-12", group="g:7f3a9c"),
        group_list_command(id="c-13"),
    ]

    # Then each one is valid against the published schema
    assert [conforms(command) for command in commands] == [True] * len(commands)


def test_group_commands_are_the_ones_in_the_protocol() -> None:
    # When group commands are built, Then they are exactly the examples of docs/protocol.md
    assert group_create_command(id="c-7", name="Climbing", members=["bob", "carol"]) == {
        "v": 1,
        "type": "group_create",
        "id": "c-7",
        "name": "Climbing",
        "members": ["bob", "carol"],
    }
    assert group_members_command(kind="group_add", id="c-8", group="g:7f3a9c", members=("dave",)) == {
        "v": 1,
        "type": "group_add",
        "id": "c-8",
        "group": "g:7f3a9c",
        "members": ["dave"],
    }
    assert group_leave_command(id="c-12", group="g:7f3a9c") == {
        "v": 1,
        "type": "group_leave",
        "id": "c-12",
        "group": "g:7f3a9c",
    }
    assert group_list_command(id="c-13") == {"v": 1, "type": "group_list", "id": "c-13"}


def test_repeated_members_are_named_once() -> None:
    # When a member is named twice, Then the command names them once, in the original order
    command = group_create_command(id="c-1", name="Climbing", members=["bob", "carol", "bob"])
    assert command["members"] == ["bob", "carol"]
    assert conforms(command)


def test_the_group_limits_are_the_schemas() -> None:
    # Given the published schema
    definitions = load_schema()["$defs"]

    # Then the SDK's limits on group names and member lists are the schema's
    assert definitions["group_name"]["maxLength"] == MAX_GROUP_NAME_LENGTH
    assert definitions["member_list"]["maxItems"] == MAX_MEMBERS_PER_COMMAND


def test_command_ids_are_fresh_and_valid() -> None:
    # When many ids are made
    ids = [new_command_id() for _ in range(100)]

    # Then they are unique and match the contract's pattern
    assert len(set(ids)) == 100
    assert all(COMMAND_ID_RE.fullmatch(command_id) for command_id in ids)


def test_receipts_are_split_by_500_and_deduplicated() -> None:
    # Given 1001 distinct message ids, one of them repeated
    ids = [f"m-{n}" for n in range(1001)] + ["m-0"]
    counter = itertools.count(1)

    # When receipt commands are built
    commands = receipt_commands(status=Status.DELIVERED, message_ids=ids, new_id=lambda: f"r-{next(counter)}")

    # Then there are three, of 500, 500 and 1 ids, in the original order, each with its own id
    assert [len(c["messages"]) for c in commands] == [500, 500, 1]
    assert [c["id"] for c in commands] == ["r-1", "r-2", "r-3"]
    assert commands[0]["messages"][:2] == ["m-0", "m-1"]
    assert commands[2]["messages"] == ["m-1000"]
    assert all(conforms(c) for c in commands)


def test_no_ids_means_no_receipt() -> None:
    # When a receipt is built for no messages, Then there is no command
    assert receipt_commands(status=Status.READ, message_ids=[]) == []


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: send_command(id="c 1", to="bob", text="x"), "command id"),
        (lambda: send_command(id="", to="bob", text="x"), "command id"),
        (lambda: send_command(id="c-1", to="bob/in", text="x"), "to"),
        (lambda: send_command(id="c-1", to="g:", text="x"), "neither a user id nor a group id"),
        (lambda: send_command(id="c-1", to="g:a/b", text="x"), "neither a user id nor a group id"),
        (lambda: group_create_command(id="c-1", name="", members=["bob"]), "name"),
        (lambda: group_create_command(id="c-1", name="x" * 101, members=["bob"]), "name"),
        (lambda: group_create_command(id="c-1", name="Climbing", members=[]), "members"),
        (lambda: group_create_command(id="c-1", name="Climbing", members="bob"), "not the string"),
        (lambda: group_create_command(id="c-1", name="Climbing", members=["bo b"]), "member"),
        (lambda: group_create_command(id="c-1", name="Climbing", members=["g:7f3a9c"]), "member"),
        (
            lambda: group_create_command(id="c-1", name="Climbing", members=[f"u{n}" for n in range(1025)]),
            "1 to 1024",
        ),
        (lambda: group_members_command(kind="group_ban", id="c-1", group="g:1", members=["bob"]), "kind"),
        (lambda: group_members_command(kind="group_add", id="c-1", group="bob", members=["bob"]), "group"),
        (lambda: group_rename_command(id="c-1", group="g:1", name=""), "name"),
        (lambda: group_leave_command(id="c-1", group="g:" + "x" * 61), "group"),
        (lambda: group_list_command(id="c 1"), "command id"),
        (lambda: send_command(id="c-1", to="bob", text=""), "text"),
        (lambda: send_command(id="c-1", to="bob", text="x" * 65537), "text"),
        (lambda: receipt_commands(status=Status.SENT, message_ids=["m-1"]), "delivered or read"),
        (lambda: receipt_commands(status=Status.READ, message_ids=["m" * 65]), "message id"),
        (lambda: typing_command(id="c-1", to="bob", state="shouting"), "state"),
        (lambda: sync_command(id="c-1", after=-1), "after"),
        (lambda: sync_command(id="c-1", after=0, limit=1001), "limit"),
    ],
)
def test_bad_arguments_are_refused(build: Any, problem: str) -> None:
    # When a command is built from a bad argument, Then ValueError names it
    with pytest.raises(ValueError, match=problem):
        build()


def test_the_longest_text_is_accepted() -> None:
    # When a text of exactly the maximum length is sent, Then the command is valid
    assert conforms(send_command(id="c-1", to="bob", text="x" * 65536))
