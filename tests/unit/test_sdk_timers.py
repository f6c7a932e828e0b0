"""Disappearing messages in the SDK's I/O-free core: the timer commands, the ``timer`` event that
answers ``set_timer`` (or ``ok``), the ``timer_info`` that answers ``get_timer``, ``expires_at`` on
a message, and the ``expired`` event and stubs."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk import Message, MessagesExpired, TimerChanged
from client_sdk._commands import timer_get_command, timer_set_command
from client_sdk._events import Ok, TimerInfo
from tests.unit.test_sdk_changes import conforms, request
from tests.unit.test_sdk_session import commands, new_session, stored, synced


def timer_event(cursor: int, *, ref: str | None, seconds: int = 86_400) -> dict[str, Any]:
    body = {"conversation": "dm:alice:bob", "seconds": seconds, "by": "alice", "ts": 3.0}
    return conforms({"v": 1, "type": "timer", "cursor": cursor, "ref": ref, **body})


def expired_stub(message_id: str) -> dict[str, Any]:
    return {k: v for k, v in stored(message_id).items() if k != "text"} | {"expired": True}


def test_the_commands_follow_the_schema_and_refuse_bad_values() -> None:
    assert conforms(timer_set_command(id="t1", to="bob", seconds=86_400)) == {
        "v": 1,
        "type": "timer_set",
        "id": "t1",
        "to": "bob",
        "seconds": 86_400,
    }
    assert conforms(timer_get_command(id="t2", to="g:abc"))["to"] == "g:abc"
    for bad in (-1, True, 1.5, 10**9):
        with pytest.raises(ValueError, match="seconds"):
            timer_set_command(id="t1", to="bob", seconds=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="neither a user id"):
        timer_set_command(id="t1", to="not a user", seconds=0)


def test_set_timer_is_answered_by_its_own_timer_event_which_the_app_sees() -> None:
    session = new_session()
    synced(session)
    pending, command = request(session, lambda id: timer_set_command(id=id, to="bob", seconds=86_400))

    effects = session.on_inbox(timer_event(1, ref=command["id"]), now=0.0)

    assert pending.wait(timeout=0) == Ok(ref=command["id"])
    (event,) = effects.events
    assert event == TimerChanged(
        conversation="dm:alice:bob", seconds=86_400, by="alice", ts=3.0, cursor=1, ref=command["id"]
    )


def test_get_timer_is_answered_by_timer_info() -> None:
    session = new_session()
    synced(session)
    pending, effects = session.request(lambda id: timer_get_command(id=id, to="bob"), TimerInfo)
    (command,) = commands(effects)
    answer = {
        "v": 1,
        "type": "timer_info",
        "ref": command["id"],
        "conversation": "dm:alice:bob",
        "seconds": 0,
    }
    assert session.on_inbox(conforms(answer), now=0.0).events == []
    assert pending.wait(timeout=0) == TimerInfo(ref=command["id"], conversation="dm:alice:bob", seconds=0)


def test_a_disappearing_message_has_expires_at_and_its_expiry_lists_stubs() -> None:
    session = new_session()
    synced(session)
    timed = {**stored("m1"), "expires_at": 1764186400.0}
    (message,) = session.on_inbox(
        conforms({"v": 1, "type": "message", "cursor": 1, "message": timed}), now=0.0
    ).events
    assert isinstance(message, Message) and message.expires_at == 1764186400.0 and not message.expired

    expired = {"v": 1, "type": "expired", "cursor": 2, "messages": [expired_stub("m1")], "ts": 9.0}
    (event,) = session.on_inbox(conforms(expired), now=0.0).events
    assert isinstance(event, MessagesExpired) and event.ids == ["m1"] and event.cursor == 2
    (stub,) = event.messages
    assert stub.expired and stub.text == "" and stub.media is None

    # a device that syncs later reads the stub where the message was
    later = conforms({"v": 1, "type": "message", "cursor": 3, "message": expired_stub("m3")})
    (copy,) = session.on_inbox(later, now=0.0).events
    assert isinstance(copy, Message) and copy.expired and copy.text == ""
