"""The chat list and read state in the SDK without a broker: the wire examples follow the schema,
parse into Chat/ChatPage/ReadState, the session hands a chats answer to its request and a read
event (in cursor order) to the app, and the commands are built and checked before sending."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import Chat, ChatPage, ReadState, Typing
from client_sdk._commands import chat_list_command, mark_read_command, typing_command
from client_sdk._events import parse_inbox
from client_sdk._session import Session
from client_sdk.contract import load_schema

LAST = {
    "id": "m1",
    "conversation": "dm:alice:bob",
    "seq": 3,
    "from": "alice",
    "to": "bob",
    "text": "hi",
    "ts": 5.0,
}
CHATS = {
    "v": 1,
    "type": "chats",
    "ref": "c-1",
    "next": "c1.WzUuMCwiZG06YWxpY2U6Ym9iIl0",
    "chats": [
        {
            "conversation": "dm:alice:bob",
            "kind": "direct",
            "peer": "alice",
            "presence": {"status": "offline", "last_seen": 4.0},
            "last_message": LAST,
            "last_seq": 3,
            "read_seq": 1,
            "unread": 2,
            "ts": 5.0,
        },
        {
            "conversation": "g:crag",
            "kind": "group",
            "group": {"id": "g:crag", "name": "Crag", "member": False},
            "last_message": {
                **LAST,
                "id": "m2",
                "conversation": "g:crag",
                "to": "g:crag",
                "deleted": True,
                "text": "",
            },
            "last_seq": 7,
            "read_seq": 7,
            "unread": 0,
            "ts": 4.0,
        },
    ],
}
READ = {
    "v": 1,
    "type": "read",
    "cursor": 1,
    "ref": None,
    "conversation": "dm:alice:bob",
    "read_seq": 3,
    "ts": 6.0,
}
GROUP_TYPING = {"v": 1, "type": "typing", "from": "alice", "state": "paused", "group": "g:crag"}
COMMANDS = [
    chat_list_command(id="c-1"),
    chat_list_command(id="c-2", limit=500, before="c1.x"),
    mark_read_command(id="c-3", conversation="dm:alice:bob", seq=3),
    typing_command(id="c-4", to="g:crag", state="composing"),
]


@pytest.mark.parametrize("payload", [CHATS, READ, GROUP_TYPING, *COMMANDS], ids=lambda p: p["type"])
def test_the_examples_follow_the_published_schema(payload: dict[str, Any]) -> None:
    Draft202012Validator(load_schema()).validate(payload)


def test_a_chats_answer_parses_into_a_page_of_chats() -> None:
    page = parse_inbox(CHATS)

    assert isinstance(page, ChatPage) and page.next == CHATS["next"] and len(page) == 2
    direct, group = page
    assert isinstance(direct, Chat)
    assert (direct.kind, direct.peer, direct.unread, direct.read_seq, direct.last_seq) == (
        "direct",
        "alice",
        2,
        1,
        3,
    )
    assert direct.last_message is not None and direct.last_message.text == "hi"
    assert direct.presence is not None and not direct.presence.online and direct.presence.user == "alice"
    assert (group.kind, group.group, group.name, group.member, group.peer) == (
        "group",
        "g:crag",
        "Crag",
        False,
        None,
    )
    assert group.last_message is not None and group.last_message.deleted


def test_read_and_group_typing_events_parse() -> None:
    assert parse_inbox(READ) == ReadState(conversation="dm:alice:bob", read_seq=3, ts=6.0, cursor=1, ref=None)
    assert parse_inbox(GROUP_TYPING) == Typing(sender="alice", state="paused", group="g:crag")
    with pytest.raises(ValueError, match="read_seq"):
        parse_inbox({**READ, "read_seq": -1})
    with pytest.raises(ValueError, match="group"):
        parse_inbox({**GROUP_TYPING, "group": "bob"})


def test_the_session_answers_the_request_and_releases_read_events_in_order() -> None:
    session = Session(user="bob", cursor=0)
    session.on_connected()
    session.on_subscribed(now=0.0)
    request, effects = session.request(lambda id: chat_list_command(id=id, limit=10), ChatPage)
    (command,) = effects.commands
    assert command.payload["type"] == "chat_list" and command.payload["limit"] == 10

    session.on_inbox({**CHATS, "ref": request.id}, now=1.0)
    assert request.wait(timeout=0).chats[0].unread == 2

    # the read event is the next in cursor order: the app gets it
    assert session.on_inbox(READ, now=2.0).events == [parse_inbox(READ)]


def test_commands_are_checked_before_they_are_sent() -> None:
    with pytest.raises(ValueError, match="limit"):
        chat_list_command(id="c", limit=True)
    with pytest.raises(ValueError, match="before"):
        chat_list_command(id="c", before="")
    with pytest.raises(ValueError, match="seq"):
        mark_read_command(id="c", conversation="dm:a:b", seq=-1)
    with pytest.raises(ValueError, match="conversation"):
        mark_read_command(id="c", conversation="", seq=1)
