"""Edits and deletes in the SDK's I/O-free core: the commands it publishes, the events it parses,
and the answers that end an ``edit``/``delete`` call (the user's own event with ``ref``, or ``ok``)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import CommandRejected, Message, MessageDeleted, MessageEdited, MessageHidden
from client_sdk._commands import delete_command, edit_command
from client_sdk._events import Ok
from client_sdk._session import Session
from client_sdk.contract import load_schema
from tests.unit.test_sdk_session import commands, error_event, message_event, new_session, stored, synced

SCHEMA = Draft202012Validator(load_schema())


def conforms(payload: dict[str, Any]) -> dict[str, Any]:
    SCHEMA.validate(payload)
    return payload


def edited_event(cursor: int, message_id: str, text: str, *, ref: str | None) -> dict[str, Any]:
    message = {**stored(message_id, sender="alice", recipient="bob"), "text": text, "edited_at": 5.0}
    return conforms(
        {
            "v": 1,
            "type": "edited",
            "cursor": cursor,
            "ref": ref,
            "message_id": message_id,
            "conversation": "dm:alice:bob",
            "seq": 1,
            "by": "alice",
            "text": text,
            "edited_at": 5.0,
            "ts": 5.0,
            "message": message,
        }
    )


def hidden_event(cursor: int, message_id: str, *, ref: str | None) -> dict[str, Any]:
    return conforms(
        {
            "v": 1,
            "type": "hidden",
            "cursor": cursor,
            "ref": ref,
            "message_id": message_id,
            "conversation": "dm:alice:bob",
            "seq": 1,
            "ts": 6.0,
        }
    )


def deleted_event(cursor: int, message_id: str, *, ref: str | None) -> dict[str, Any]:
    stone = {
        "id": message_id,
        "conversation": "dm:alice:bob",
        "seq": 1,
        "from": "alice",
        "to": "bob",
        "ts": 1.0,
        "deleted": True,
        "deleted_at": 7.0,
        "deleted_by": "alice",
    }
    body = {"message_id": message_id, "conversation": "dm:alice:bob", "seq": 1, "by": "alice", "ts": 7.0}
    return conforms({"v": 1, "type": "deleted", "cursor": cursor, "ref": ref, **body, "message": stone})


def test_the_commands_follow_the_schema() -> None:
    assert conforms(edit_command(id="e1", message_id="m1", text="new")) == {
        "v": 1,
        "type": "edit",
        "id": "e1",
        "message": "m1",
        "text": "new",
    }
    assert conforms(delete_command(id="d1", message_id="m1", everyone=True))["for"] == "everyone"
    assert conforms(delete_command(id="d2", message_id="m1", everyone=False))["for"] == "me"
    with pytest.raises(ValueError, match="text"):
        edit_command(id="e1", message_id="m1", text="")


def request(session: Session, build: Any) -> tuple[Any, dict[str, Any]]:
    pending, effects = session.request(build, Ok)
    (command,) = commands(effects)
    return pending, command


def test_an_edit_is_answered_by_its_own_edited_event_which_the_app_sees_too() -> None:
    session = new_session()
    synced(session)
    pending, command = request(session, lambda id: edit_command(id=id, message_id="m1", text="new"))

    effects = session.on_inbox(edited_event(1, "m1", "new", ref=command["id"]), now=0.0)

    assert pending.wait(timeout=0) == Ok(ref=command["id"])
    (event,) = effects.events
    assert isinstance(event, MessageEdited)
    assert (event.message_id, event.text, event.edited_at, event.ref) == ("m1", "new", 5.0, command["id"])
    assert event.message.text == "new" and event.message.edited_at == 5.0
    assert effects.cursor_advanced and session.cursor == 1


def test_another_devices_edit_answers_nothing_here_but_is_an_event() -> None:
    session = new_session()
    synced(session)
    pending, _ = request(session, lambda id: edit_command(id=id, message_id="m1", text="mine"))

    effects = session.on_inbox(edited_event(1, "m1", "theirs", ref="other-device"), now=0.0)

    assert not pending.done
    assert [type(e) for e in effects.events] == [MessageEdited]


def test_a_delete_for_me_is_answered_by_hidden_and_the_copy_synced_later_is_hidden() -> None:
    session = new_session()
    synced(session)
    pending, command = request(session, lambda id: delete_command(id=id, message_id="m1", everyone=False))

    effects = session.on_inbox(hidden_event(1, "m1", ref=command["id"]), now=0.0)

    assert pending.done
    (event,) = effects.events
    assert isinstance(event, MessageHidden) and event.message_id == "m1" and event.ref == command["id"]
    stub = {k: v for k, v in stored("m2").items() if k != "text"} | {"hidden": True}
    copy = session.on_inbox(conforms({"v": 1, "type": "message", "cursor": 2, "message": stub}), now=0.0)
    (message,) = copy.events
    assert isinstance(message, Message) and message.hidden and message.text == ""


def test_a_delete_for_everyone_is_answered_by_deleted_or_by_ok_when_it_was_deleted_already() -> None:
    session = new_session()
    synced(session)
    first, command = request(session, lambda id: delete_command(id=id, message_id="m1", everyone=True))
    effects = session.on_inbox(deleted_event(1, "m1", ref=command["id"]), now=0.0)
    assert first.done
    (event,) = effects.events
    assert isinstance(event, MessageDeleted) and event.ref == command["id"] and event.message.deleted

    again, command = request(session, lambda id: delete_command(id=id, message_id="m1", everyone=True))
    session.on_inbox({"v": 1, "type": "ok", "ref": command["id"]}, now=0.0)
    assert again.wait(timeout=0) == Ok(ref=command["id"])


def test_a_refused_edit_raises_its_code() -> None:
    session = new_session()
    synced(session)
    pending, command = request(session, lambda id: edit_command(id=id, message_id="m1", text="x"))

    session.on_inbox(error_event(command["id"], "too_late"), now=0.0)

    with pytest.raises(CommandRejected) as raised:
        pending.wait(timeout=0)
    assert raised.value.code == "too_late"


def test_an_edited_message_keeps_its_place_in_cursor_order() -> None:
    session = new_session()
    synced(session)
    # the edit arrives before the message it follows: it waits for the gap to fill
    early = session.on_inbox(edited_event(2, "m1", "new", ref=None), now=0.0)
    assert early.events == []
    later = session.on_inbox(message_event(1, "m1"), now=0.0)
    assert [type(e) for e in later.events] == [Message, MessageEdited]
