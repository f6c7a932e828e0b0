"""Replies (quotes) and forwards in the store (every backend): a reply carries a quote of a message
of its own conversation that its sender can see, and the quote loses its excerpt when the quoted
message is deleted; a forward copies a message its sender can read, sharing its media objects,
which stay in storage while a message that is not deleted uses them."""

from __future__ import annotations

import pytest

from client_sdk.contract import ErrorCode
from tests.harness import unique
from tests.stores.conftest import users
from tests.stores.test_store_deletion import raw_text
from tests.stores.test_store_media import media
from workers.errors import CommandError, UnknownUser
from workers.stores import Store

SECRET = "the launch code is 0000 " + "x" * 120


def test_a_reply_carries_a_quote_of_the_message_it_answers(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    original = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=1.0)

    reply = store.accept_message(
        sender=bob, command_id="c2", recipient=alice, text="ok", now=2.0, reply_to=original.message.id
    )

    quote = {"id": original.message.id, "from": alice, "seq": 1, "excerpt": SECRET[:100]}
    assert reply.message.reply == quote
    assert reply.sent.payload["message"]["reply"] == quote
    alice_log, _ = store.sync(user=alice, after=original.sent.cursor, limit=50)
    assert [e.payload["message"]["reply"] for e in alice_log] == [quote]  # synced from after it
    assert "reply" not in original.sent.payload["message"]


def test_a_reply_to_a_photo_quotes_its_caption_and_type(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    photo = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text="", now=1.0, media=media(unique("p"))
    )
    reply = store.accept_message(
        sender=alice, command_id="c2", recipient=bob, text="see?", now=2.0, reply_to=photo.message.id
    )
    assert reply.message.reply == {
        "id": photo.message.id,
        "from": alice,
        "seq": 1,
        "excerpt": "",
        "media_type": "image/jpeg",
    }


def test_a_reply_in_a_group_quotes_a_message_the_member_got(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=1.0, ref="g1", max_members=10
    ).group.id
    first = store.accept_message(sender=alice, command_id="c1", recipient=group, text="hi", now=2.0)
    store.add_members(group=group, actor=alice, members=[dave], now=3.0, ref="g2", max_members=10)

    reply = store.accept_message(
        sender=carol, command_id="c2", recipient=group, text="yo", now=4.0, reply_to=first.message.id
    )
    assert reply.message.reply is not None and reply.message.reply["excerpt"] == "hi"
    assert sorted(e.user for e in reply.entries) == sorted([carol, alice, bob, dave])
    # dave joined after it: he never got it, so he cannot quote it
    with pytest.raises(CommandError) as raised:
        store.accept_message(
            sender=dave, command_id="c3", recipient=group, text="?", now=5.0, reply_to=first.message.id
        )
    assert raised.value.code == ErrorCode.NOT_FOUND


def test_a_reply_to_what_the_sender_cannot_see_or_to_another_conversation_is_refused(
    store: Store,
) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    to_bob = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=1.0)
    store.accept_message(sender=alice, command_id="c2", recipient=carol, text="hi", now=2.0)
    before = {u: store.sync(user=u, after=0, limit=50)[0] for u in (alice, bob, carol)}

    cases = [
        (carol, bob, to_bob.message.id, ErrorCode.NOT_FOUND),  # not hers to see
        (alice, carol, "no-such-message", ErrorCode.NOT_FOUND),
        (alice, carol, to_bob.message.id, ErrorCode.BAD_REQUEST),  # another conversation
    ]
    for n, (sender, to, reply_to, code) in enumerate(cases):
        with pytest.raises(CommandError) as raised:
            store.accept_message(
                sender=sender, command_id=f"bad{n}", recipient=to, text="x", now=3.0, reply_to=reply_to
            )
        assert raised.value.code == code
        if code == ErrorCode.BAD_REQUEST:
            assert raised.value.message == "reply_to is in another conversation"
    # nothing stored for anyone
    assert {u: store.sync(user=u, after=0, limit=50)[0] for u in (alice, bob, carol)} == before
    assert store.sent_entry(carol, "bad0") is None and store.sent_entry(alice, "bad2") is None


def test_deleting_the_quoted_message_scrubs_every_quote_of_it(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    original = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=1.0)
    reply = store.accept_message(
        sender=bob, command_id="c2", recipient=alice, text="ok", now=2.0, reply_to=original.message.id
    )
    assert SECRET[:100] in raw_text(store, reply.message.id, [alice, bob])

    store.delete_for_everyone(original.message.id, by="admin", now=3.0)

    gone = {"id": original.message.id, "from": alice, "seq": 1, "deleted": True}
    assert SECRET[:30] not in raw_text(store, reply.message.id, [alice, bob])
    for user in (alice, bob):
        log, _ = store.sync(user=user, after=0, limit=50)
        carrier = next(e for e in log if e.payload.get("message", {}).get("id") == reply.message.id)
        assert carrier.payload["message"]["reply"] == gone
        assert carrier.payload["message"]["text"] == "ok"  # the rest of the reply stays
    # a resent reply is answered with the scrubbed quote
    again = store.accept_message(
        sender=bob, command_id="c2", recipient=alice, text="ok", now=4.0, reply_to=original.message.id
    )
    assert again.duplicate and again.sent.payload["message"]["reply"] == gone


def test_deleting_a_reply_drops_its_quote(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    original = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="quoted", now=1.0)
    reply = store.accept_message(
        sender=bob, command_id="c2", recipient=alice, text="ok", now=2.0, reply_to=original.message.id
    )
    deletion = store.delete_for_everyone(reply.message.id, by="admin", now=3.0)
    assert "reply" not in deletion.message
    # the quoted message's later deletion leaves the reply's tombstone as it is
    store.delete_for_everyone(original.message.id, by="admin", now=4.0)
    log, _ = store.sync(user=alice, after=0, limit=50)
    carrier = next(e for e in log if e.payload.get("message", {}).get("id") == reply.message.id)
    assert carrier.payload["message"] == deletion.message


def test_a_forward_copies_text_and_media_marked_forwarded(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    photo = media(unique("p"))
    original = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text="look", now=1.0, media=photo
    )

    forward = store.forward_message(
        sender=bob, command_id="f1", message_id=original.message.id, recipient=carol, now=2.0
    )

    body = forward.sent.payload["message"]
    assert (body["from"], body["to"], body["text"], body["media"]) == (bob, carol, "look", photo)
    assert body["forwarded"] is True and "reply" not in body
    assert forward.message.forwarded
    assert [e.user for e in forward.entries] == [bob, carol]
    keys = [photo["key"], photo["thumbnail"]["key"]]
    assert all(store.can_read_media(carol, key) for key in keys)
    stranger = users(store, "dave")[0]
    assert not any(store.can_read_media(stranger, key) for key in keys)
    # a resend stores it once
    again = store.forward_message(
        sender=bob, command_id="f1", message_id=original.message.id, recipient=carol, now=3.0
    )
    assert again.duplicate and again.sent == forward.sent


def test_a_forward_keeps_the_objects_alive_until_the_last_user_goes(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    photo = media(unique("p"))
    keys = sorted([photo["key"], photo["thumbnail"]["key"]])
    original = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text="look", now=1.0, media=photo
    )
    forward = store.forward_message(
        sender=bob, command_id="f1", message_id=original.message.id, recipient=carol, now=2.0
    )

    first = store.delete_for_everyone(original.message.id, by="admin", now=3.0)
    assert first.media_keys == []  # the forward still uses them
    assert all(store.can_read_media(carol, key) for key in keys)
    assert not store.can_read_media(alice, keys[0])  # her message is gone; she never got the forward

    last = store.delete_for_everyone(forward.message.id, by="admin", now=4.0)
    assert sorted(last.media_keys) == keys
    assert not any(store.can_read_media(u, key) for u in (alice, bob, carol) for key in keys)


def test_a_forward_of_what_the_sender_cannot_read_or_to_where_they_cannot_send_is_refused(
    store: Store,
) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    secret = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=1.0)
    gone = store.accept_message(sender=alice, command_id="c2", recipient=carol, text="x", now=2.0)
    store.delete_for_everyone(gone.message.id, by="admin", now=3.0)
    group = store.create_group(
        creator=bob, name="g", members=[dave], now=4.0, ref="g1", max_members=10
    ).group.id

    refusals = [
        (carol, secret.message.id, dave, ErrorCode.NOT_FOUND),  # not hers
        (carol, gone.message.id, dave, ErrorCode.NOT_FOUND),  # a tombstone
        (alice, "no-such-message", dave, ErrorCode.NOT_FOUND),
        (alice, secret.message.id, group, ErrorCode.NOT_MEMBER),
        (alice, secret.message.id, "g:nope", ErrorCode.UNKNOWN_GROUP),
    ]
    for n, (sender, message_id, to, code) in enumerate(refusals):
        with pytest.raises(CommandError) as raised:
            store.forward_message(
                sender=sender, command_id=f"f{n}", message_id=message_id, recipient=to, now=5.0
            )
        assert raised.value.code == code, (n, raised.value)
    with pytest.raises(UnknownUser):
        store.forward_message(
            sender=bob, command_id="f9", message_id=secret.message.id, recipient=unique("nobody"), now=5.0
        )
    assert store.sync(user=dave, after=0, limit=50)[0][-1].payload["type"] == "group"
    assert all(store.sent_entry(u, f"f{n}") is None for u in (alice, bob, carol) for n in range(10))


def test_a_forward_to_a_group_reaches_its_members(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    original = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="news", now=1.0)
    group = store.create_group(
        creator=bob, name="g", members=[carol], now=2.0, ref="g1", max_members=10
    ).group.id
    forward = store.forward_message(
        sender=bob, command_id="f1", message_id=original.message.id, recipient=group, now=3.0
    )
    assert forward.message.conversation == group and forward.message.text == "news"
    carol_log, _ = store.sync(user=carol, after=0, limit=50)
    assert carol_log[-1].payload["message"]["forwarded"] is True


def test_a_group_quote_is_scrubbed_for_every_member_who_got_the_reply(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=1.0, ref="g1", max_members=10
    ).group.id
    original = store.accept_message(sender=alice, command_id="c1", recipient=group, text=SECRET, now=2.0)
    reply = store.accept_message(
        sender=bob, command_id="c2", recipient=group, text="ok", now=3.0, reply_to=original.message.id
    )

    store.delete_for_everyone(original.message.id, by="admin", now=4.0)

    for user in (alice, bob, carol):
        log, _ = store.sync(user=user, after=0, limit=50)
        carrier = next(e for e in log if e.payload.get("message", {}).get("id") == reply.message.id)
        assert carrier.payload["message"]["reply"]["deleted"] is True
        assert SECRET[:30] not in str([e.payload for e in log])


def test_a_reply_to_a_tombstone_quotes_it_as_deleted(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    original = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=1.0)
    store.delete_for_everyone(original.message.id, by="admin", now=2.0)
    reply = store.accept_message(
        sender=bob, command_id="c2", recipient=alice, text="?", now=3.0, reply_to=original.message.id
    )
    assert reply.message.reply == {"id": original.message.id, "from": alice, "seq": 1, "deleted": True}


def test_editing_the_quoted_message_gives_every_quote_of_it_the_new_text(store: Store) -> None:
    """Only the latest text of an edited message is kept: its quotes in replies follow the edit."""
    alice, bob = users(store, "alice", "bob")
    original = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=1.0)
    reply = store.accept_message(
        sender=bob, command_id="c2", recipient=alice, text="ok", now=2.0, reply_to=original.message.id
    )

    store.edit_message(
        original.message.id, user=alice, text="see you at 6", command_id="e1", now=3.0, window=900
    )

    assert SECRET[:30] not in raw_text(store, reply.message.id, [alice, bob])
    for user in (alice, bob):
        log, _ = store.sync(user=user, after=0, limit=50)
        carrier = next(e for e in log if e.payload.get("message", {}).get("id") == reply.message.id)
        assert carrier.payload["message"]["reply"] == {
            "id": original.message.id,
            "from": alice,
            "seq": 1,
            "excerpt": "see you at 6",
        }
        assert carrier.payload["message"]["text"] == "ok"
