"""Media messages in the store (every backend): the media object travels with the message, and only
the people who have the message may download its objects."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk.contract import ErrorCode
from tests.harness import unique
from tests.stores.conftest import users
from workers.errors import CommandError, UnknownUser
from workers.stores import Store


def media(name: str, *, thumbnail: bool = True) -> dict[str, Any]:
    """A media object with keys under ``m/<name>`` (names are unique: PostgreSQL keeps its tables)."""
    thumb = {"key": f"m/{name}.thumb.jpg", "type": "image/jpeg", "size": 900, "width": 320, "height": 240}
    return {
        "key": f"m/{name}.jpg",
        "type": "image/jpeg",
        "size": 48_000,
        "width": 1600,
        "height": 1200,
        "thumbnail": thumb if thumbnail else None,
    }


def test_a_media_message_carries_its_media_to_every_inbox_and_into_sync(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    photo = media(unique("p"))

    result = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="", now=1.0, media=photo)

    assert result.message.media == photo and result.message.text == ""
    assert result.message.wire()["media"] == photo
    assert [e.payload["message"]["media"] for e in result.entries] == [photo, photo]
    entries, _ = store.sync(user=bob, after=0, limit=10)
    assert entries[0].payload["message"]["media"] == photo
    # a text message has no media field at all
    text = store.accept_message(sender=alice, command_id="c2", recipient=bob, text="hi", now=2.0)
    assert text.message.media is None and "media" not in text.message.wire()


def test_the_same_command_is_stored_once_with_its_first_media(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    a, b = unique("a"), unique("b")
    first = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text="x", now=1.0, media=media(a)
    )
    again = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text="x", now=2.0, media=media(b)
    )

    assert again.duplicate and again.message.id == first.message.id
    assert again.message.media == media(a) and again.sent.cursor == first.sent.cursor
    sent = store.sent_entry(alice, "c1")
    assert sent is not None and sent.payload["message"]["media"]["key"] == f"m/{a}.jpg"
    assert store.sent_entry(alice, "c2") is None and store.sent_entry(bob, "c1") is None
    assert not store.can_read_media(alice, f"m/{b}.jpg")  # the second upload belongs to no message


def test_sender_and_recipient_may_read_the_media_and_its_thumbnail_nobody_else(store: Store) -> None:
    alice, bob, mallory = users(store, "alice", "bob", "mallory")
    p = unique("p")
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="", now=1.0, media=media(p))

    for key in (f"m/{p}.jpg", f"m/{p}.thumb.jpg"):
        assert store.can_read_media(alice, key) and store.can_read_media(bob, key)
        assert not store.can_read_media(mallory, key)
    assert not store.can_read_media(alice, "m/unknown.jpg")


def test_in_a_group_the_members_it_was_sent_to_may_read_it_even_after_leaving(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=1.0, ref="g", max_members=10
    )
    gid, g1 = group.group.id, unique("g1")
    store.accept_message(
        sender=bob, command_id="c1", recipient=gid, text="", now=2.0, media=media(g1, thumbnail=False)
    )
    store.add_members(group=gid, actor=alice, members=[dave], now=3.0, ref="add", max_members=10)
    store.leave_group(group=gid, user=carol, now=4.0, ref="leave")

    assert all(store.can_read_media(user, f"m/{g1}.jpg") for user in (alice, bob, carol))
    assert not store.can_read_media(dave, f"m/{g1}.jpg")  # joined after it was sent
    assert not store.can_read_media(alice, f"m/{g1}.thumb.jpg")  # it has no thumbnail


def test_check_recipient_says_what_accept_message_would(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = store.create_group(creator=bob, name="g", members=[carol], now=1.0, ref="g", max_members=10).group

    store.check_recipient(alice, bob)
    store.check_recipient(bob, group.id)
    with pytest.raises(UnknownUser):
        store.check_recipient(alice, "nobody-at-all")
    with pytest.raises(CommandError) as not_member:
        store.check_recipient(alice, group.id)
    assert not_member.value.code is ErrorCode.NOT_MEMBER
    with pytest.raises(CommandError) as unknown:
        store.check_recipient(alice, "g:doesnotexist")
    assert unknown.value.code is ErrorCode.UNKNOWN_GROUP


def test_a_document_and_a_voice_note_are_kept_whole_and_told_to_those_who_may_read_them(store: Store) -> None:
    alice, bob, mallory = users(store, "alice", "bob", "mallory")
    d, v = unique("d"), unique("v")
    thumb = {"key": f"m/{d}.thumb.jpg", "type": "image/jpeg", "size": 900, "width": 226, "height": 320}
    document = {
        "kind": "document",
        "key": f"m/{d}.pdf",
        "type": "application/pdf",
        "size": 4000,
        "name": "Minutes März.pdf",
        "thumbnail": thumb,
    }
    voice = {"kind": "voice", "key": f"m/{v}.ogg", "type": "audio/ogg", "size": 9000, "duration": 2.5}
    voice["waveform"] = [0, 50, 100] * 21 + [7]
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="", now=1.0, media=document)
    store.accept_message(sender=alice, command_id="c2", recipient=bob, text="", now=2.0, media=voice)

    entries, _ = store.sync(user=bob, after=0, limit=10)
    assert [e.payload["message"]["media"] for e in entries] == [document, voice]
    # the media object says how each object is served: a document's file is a named download
    for user in (alice, bob):
        assert store.readable_media(user, f"m/{d}.pdf") == document
        assert store.readable_media(user, f"m/{d}.thumb.jpg") == document
        assert store.readable_media(user, f"m/{v}.ogg") == voice
    assert store.readable_media(mallory, f"m/{d}.pdf") is None
    assert store.readable_media(alice, "m/unknown.pdf") is None

    # a delete for everyone forgets every object of a document: the file and its thumbnail
    deletion = store.delete_for_everyone(entries[0].payload["message"]["id"], by=alice, now=3.0)
    assert sorted(deletion.media_keys) == sorted([f"m/{d}.pdf", f"m/{d}.thumb.jpg"])
    assert store.readable_media(bob, f"m/{d}.pdf") is None
