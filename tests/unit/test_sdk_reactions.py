"""Reactions in the I/O-free SDK core: the ``react`` command, the ``Reaction`` event and the
summary on ``Message``, and the request that waits for either answer (``reaction`` or ``ok``)."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk import CommandRejected, Message, Reaction
from client_sdk._commands import react_command
from client_sdk._events import Ok, parse_inbox
from client_sdk._session import Session
from tests.unit.test_sdk_session import ME, commands, message_event, new_session, page, stored, synced


def reaction_event(
    cursor: int, *, by: str = "bob", emoji: str | None = "👍", ref: str | None = None, **summary: str
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "reaction",
        "cursor": cursor,
        "ref": ref,
        "message_id": "m1",
        "conversation": "dm:alice:bob",
        "seq": 1,
        "by": by,
        "emoji": emoji,
        "reactions": summary or ({by: emoji} if emoji else {}),
        "ts": 1764100002.0,
    }


def react(session: Session, message_id: str, emoji: str) -> Any:
    request, effects = session.request(lambda id: react_command(id=id, message=message_id, emoji=emoji), Ok)
    (command,) = commands(effects)
    return request, command


def test_the_react_command_is_the_contract_s() -> None:
    assert react_command(id="c1", message="m1", emoji="👍") == {
        "v": 1,
        "type": "react",
        "id": "c1",
        "message": "m1",
        "emoji": "👍",
    }
    assert react_command(id="c2", message="m1", emoji="")["emoji"] == ""  # removes


@pytest.mark.parametrize(
    ("message", "emoji"), [("", "👍"), ("m" * 65, "👍"), ("m1", " 👍"), ("m1", "👍" * 9), ("m1", None)]
)
def test_a_malformed_react_never_leaves_the_client(message: str, emoji: Any) -> None:
    with pytest.raises(ValueError, match=r"message|emoji"):
        react_command(id="c1", message=message, emoji=emoji)


def test_a_reaction_event_reaches_the_app_in_cursor_order_with_the_summary() -> None:
    session = new_session()
    synced(session)
    early = session.on_inbox(reaction_event(2, by="bob", emoji="😂", alice="👍", bob="😂"), now=1.0)
    assert early.events == []  # waits for cursor 1

    effects = session.on_inbox(message_event(1, "m1"), now=1.0)

    message, reaction = effects.events
    assert isinstance(message, Message) and message.reactions == {}
    assert reaction == Reaction(
        message_id="m1",
        conversation="dm:alice:bob",
        seq=1,
        by="bob",
        emoji="😂",
        reactions={"alice": "👍", "bob": "😂"},
        ref=None,
        ts=1764100002.0,
        cursor=2,
    )


def test_a_removed_reaction_has_no_emoji_and_a_synced_message_carries_its_summary() -> None:
    session = new_session()
    session.on_connected()
    (sync,) = commands(session.on_subscribed(now=0.0))
    carried = {
        "v": 1,
        "type": "message",
        "cursor": 1,
        "message": {**stored("m1"), "reactions": {"bob": "🎉"}},
    }
    removed = reaction_event(2, by="carol", emoji=None, bob="🎉")

    effects = session.on_inbox(page(str(sync["id"]), [carried, removed]), now=1.0)

    message, reaction = effects.events
    assert isinstance(message, Message) and message.reactions == {"bob": "🎉"}
    assert isinstance(reaction, Reaction) and reaction.emoji is None and reaction.reactions == {"bob": "🎉"}


@pytest.mark.parametrize("answer", ["reaction", "ok"])
def test_react_is_answered_by_its_reaction_or_by_ok_when_nothing_changed(answer: str) -> None:
    session = new_session()
    synced(session)
    request, command = react(session, "m1", "👍")
    assert command["type"] == "react" and not request.done

    if answer == "reaction":
        session.on_inbox(reaction_event(1, by=ME, ref=command["id"]), now=1.0)
    else:
        session.on_inbox({"v": 1, "type": "ok", "ref": command["id"]}, now=1.0)

    assert request.done
    assert request.wait(timeout=0) == Ok(ref=command["id"])
    assert command["id"] not in session.requests


def test_a_reaction_of_another_device_does_not_answer_this_one_s_request() -> None:
    session = new_session()
    synced(session)
    request, _command = react(session, "m1", "👍")
    effects = session.on_inbox(reaction_event(1, by=ME, ref="other-device-command"), now=1.0)
    assert not request.done
    assert [type(e) for e in effects.events] == [Reaction]  # still shown: it is my reaction


def test_a_refused_react_raises_its_code() -> None:
    session = new_session()
    synced(session)
    request, command = react(session, "m1", "👍")
    session.on_inbox(
        {"v": 1, "type": "error", "ref": command["id"], "code": "not_found", "message": "no"}, now=1.0
    )
    with pytest.raises(CommandRejected) as raised:
        request.wait(timeout=0)
    assert raised.value.code == "not_found"


@pytest.mark.parametrize(
    "bad",
    [
        {"reactions": {"bob": ""}},
        {"reactions": ["👍"]},
        {"emoji": ""},
        {"ref": 5},
    ],
)
def test_a_malformed_reaction_event_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"reaction|emoji|ref"):
        parse_inbox({**reaction_event(1), **bad})
