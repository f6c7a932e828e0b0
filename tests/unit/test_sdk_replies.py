"""Replies and forwards in the SDK, without a broker: the commands, the outbox that resends them,
where a reply goes, and the quote and forwarded mark read from a message."""

from __future__ import annotations

import pytest

from client_sdk import Message, Reply
from client_sdk._commands import forward_command, send_command
from client_sdk._events import parse_message
from client_sdk._reply_calls import reply_args
from tests.unit.test_sdk_session import commands, connect, new_session, page, stored, synced


def test_a_reply_is_a_send_with_reply_to_and_a_forward_names_the_message() -> None:
    assert send_command(id="c-1", to="bob", text="yes", reply_to="m-7") == {
        "v": 1,
        "type": "send",
        "id": "c-1",
        "to": "bob",
        "text": "yes",
        "reply_to": "m-7",
    }
    assert "reply_to" not in send_command(id="c-1", to="bob", text="yes")
    assert forward_command(id="c-2", message="m-7", to="g:team") == {
        "v": 1,
        "type": "forward",
        "id": "c-2",
        "message": "m-7",
        "to": "g:team",
    }
    with pytest.raises(ValueError, match="reply_to"):
        send_command(id="c-1", to="bob", text="yes", reply_to="")
    with pytest.raises(ValueError, match="message"):
        forward_command(id="c-2", message="x" * 65, to="bob")
    with pytest.raises(ValueError, match="to"):
        forward_command(id="c-2", message="m-7", to="not a user")


def test_unanswered_replies_and_forwards_are_resent_as_they_were_after_a_reconnect() -> None:
    # Given a reply and a forward published while synced, neither answered
    session = new_session()
    synced(session)
    reply, first = session.send(to="bob", text="yes", id="r-1", now=0.0, reply_to="m-7")
    forward, second = session.forward(message="m-7", to="carol", id="f-1", now=0.0)
    assert commands(first) == [send_command(id="r-1", to="bob", text="yes", reply_to="m-7")]
    assert commands(second) == [forward_command(id="f-1", message="m-7", to="carol")]

    # When the connection comes back and the sync ends
    session.on_disconnected()
    sync_id = connect(session, now=1.0)
    effects = session.on_inbox(page(sync_id, []), now=1.1)

    # Then both go out again, the same commands with the same ids
    assert commands(effects) == [
        send_command(id="r-1", to="bob", text="yes", reply_to="m-7"),
        forward_command(id="f-1", message="m-7", to="carol"),
    ]
    assert (reply.reply_to, forward.forward_of) == ("m-7", "m-7")


def message(**fields: object) -> Message:
    return parse_message({**stored("m-1"), **fields}, cursor=3)


def test_a_reply_goes_to_the_conversation_of_the_message_it_answers() -> None:
    from_bob = message()  # bob → alice
    assert reply_args(from_bob, None, "alice") == ("m-1", "bob")
    mine = message(**{"from": "alice", "to": "bob"})
    assert reply_args(mine, None, "alice") == ("m-1", "bob")
    in_group = message(to="g:team", conversation="g:team")
    assert reply_args(in_group, None, "alice") == ("m-1", "g:team")
    assert reply_args("m-9", "carol", "alice") == ("m-9", "carol")
    with pytest.raises(ValueError, match="needs 'to'"):
        reply_args("m-9", None, "alice")
    with pytest.raises(ValueError, match="goes to bob"):
        reply_args(from_bob, "carol", "alice")


def test_a_message_carries_its_quote_and_forwarded_mark() -> None:
    quoted = message(reply={"id": "m-0", "from": "bob", "seq": 1, "excerpt": "hi", "media_type": "image/png"})
    assert quoted.reply == Reply(id="m-0", sender="bob", seq=1, excerpt="hi", media_type="image/png")
    assert not quoted.forwarded
    scrubbed = message(reply={"id": "m-0", "from": "bob", "seq": 1, "deleted": True})
    assert scrubbed.reply == Reply(id="m-0", sender="bob", seq=1, deleted=True)
    plain = message(forwarded=True)
    assert plain.reply is None and plain.forwarded
    with pytest.raises(ValueError, match="reply"):
        message(reply={"id": "m-0", "from": "bob", "seq": 0, "excerpt": ""})
