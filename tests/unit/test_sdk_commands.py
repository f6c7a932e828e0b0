"""Commands the SDK publishes follow the published schema; bad arguments never leave the client."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import Status
from client_sdk.commands import (
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
    ]

    # Then each one is valid against the published schema
    assert [conforms(command) for command in commands] == [True] * 5


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
