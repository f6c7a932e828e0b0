"""Messages as a user sees them now (every backend): the view built from the tables is exactly
what that user's inbox carriers hold, whatever happened to the messages (edits, deletes for
everyone and for me, reactions, replies, forwards, media), and nobody else's messages show."""

from __future__ import annotations

from typing import Any

from tests.harness import unique
from tests.stores.conftest import users
from tests.stores.test_store_media import media
from workers.stores import Store

WINDOW = 900.0


def carriers_of(store: Store, user: str) -> dict[str, dict[str, Any]]:
    """Each message the user's ``sent``/``message`` entries carry, by id (all of one id agree)."""
    entries, more = store.sync(user=user, after=0, limit=1000)
    assert not more
    held: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.payload["type"] in ("sent", "message"):
            message = entry.payload["message"]
            assert held.setdefault(message["id"], message) == message
    return held


def send(store: Store, sender: str, to: str, text: str, **extra: Any) -> str:
    result = store.accept_message(
        sender=sender, command_id=unique("c"), recipient=to, text=text, now=10.0, **extra
    )
    return result.message.id


def test_views_equal_the_carriers_of_each_user_whatever_happened(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    # 1-on-1: plain, edited, deleted, reacted, a reply, a reply to one deleted later, media,
    # a forward of media, hidden by bob, edited then reacted then hidden by alice, deleted then hidden
    plain = send(store, alice, bob, "plain")
    edited = send(store, alice, bob, "before")
    store.edit_message(edited, user=alice, text="after", command_id="e1", now=20.0, window=WINDOW)
    store.edit_message(edited, user=alice, text="after again", command_id="e2", now=21.0, window=WINDOW)
    deleted = send(store, bob, alice, "gone soon", media=media(unique("d")))
    store.delete_for_everyone(deleted, by=bob, now=22.0, ref="d1")
    reacted = send(store, bob, alice, "react to me")
    store.react(user=alice, message_id=reacted, emoji="👍", command_id="r1", now=23.0)
    store.react(user=bob, message_id=reacted, emoji="🎉", command_id="r2", now=23.5)
    quoted = send(store, alice, bob, "quote me then delete me")
    reply = send(store, bob, alice, "a reply", reply_to=quoted)
    reply_kept = send(store, alice, bob, "reply to plain", reply_to=plain)
    store.delete_for_everyone(quoted, by=alice, now=24.0, ref="d2")
    photo = send(store, alice, bob, "caption", media=media(unique("p")))
    forward = store.forward_message(sender=bob, command_id="f1", message_id=photo, recipient=carol, now=25.0)
    hidden_by_bob = send(store, alice, bob, "bob hides this")
    store.hide_message(hidden_by_bob, user=bob, command_id="h1", now=26.0)
    busy = send(store, bob, alice, "busy")
    store.edit_message(busy, user=bob, text="busy edited", command_id="e3", now=27.0, window=WINDOW)
    store.react(user=alice, message_id=busy, emoji="❤️", command_id="r3", now=27.5)
    store.hide_message(busy, user=alice, command_id="h2", now=28.0)
    store.react(user=bob, message_id=busy, emoji="😂", command_id="r4", now=28.5)
    store.edit_message(busy, user=bob, text="busy edited twice", command_id="e4", now=29.0, window=WINDOW)
    stone_hidden = send(store, alice, bob, "delete then hide")
    store.delete_for_everyone(stone_hidden, by=alice, now=30.0, ref="d3")
    store.hide_message(stone_hidden, user=bob, command_id="h3", now=31.0)
    # a group: carol leaves, then its messages change; dave is added after the first message
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=1.0, ref="g1", max_members=10
    ).group.id
    before_dave = send(store, alice, group, "before dave")
    store.leave_group(group=group, user=carol, now=32.0, ref="l1")
    store.add_members(group=group, actor=alice, members=[dave], now=33.0, ref="g2", max_members=10)
    after_dave = send(store, bob, group, "after dave")
    store.react(user=dave, message_id=after_dave, emoji="👍", command_id="r5", now=34.0)
    store.edit_message(
        before_dave, user=alice, text="before dave, edited", command_id="e5", now=35.0, window=WINDOW
    )
    store.react(user=bob, message_id=before_dave, emoji="👀", command_id="r6", now=36.0)
    all_ids = [
        plain, edited, deleted, reacted, quoted, reply, reply_kept, photo, forward.message.id,
        hidden_by_bob, busy, stone_hidden, before_dave, after_dave, "no-such-id",
    ]  # fmt: skip

    for user in (alice, bob, carol, dave):
        views = store.message_views(all_ids, viewer=user)
        assert views == carriers_of(store, user), user

    # what each one sees is theirs only; a stranger sees nothing at all
    assert set(store.message_views(all_ids, viewer=dave)) == {after_dave}
    assert forward.message.id in store.message_views(all_ids, viewer=carol)
    stranger = users(store, "eve")[0]
    assert store.message_views(all_ids, viewer=stranger) == {}
    # a few spot checks of what the views hold (so equal-but-wrong carriers would show)
    alice_view = store.message_views(all_ids, viewer=alice)
    bob_view = store.message_views(all_ids, viewer=bob)
    assert alice_view[edited]["text"] == "after again" and alice_view[edited]["edited_at"] == 21.0
    assert alice_view[deleted]["deleted"] is True and "text" not in alice_view[deleted]
    assert alice_view[reacted]["reactions"] == {alice: "👍", bob: "🎉"}
    assert alice_view[reply]["reply"] == {
        "id": quoted,
        "from": alice,
        "seq": alice_view[quoted]["seq"],
        "deleted": True,
    }
    assert bob_view[hidden_by_bob]["hidden"] is True and "text" not in bob_view[hidden_by_bob]
    assert alice_view[hidden_by_bob]["text"] == "bob hides this"
    assert alice_view[busy]["hidden"] is True and bob_view[busy]["text"] == "busy edited twice"
    assert store.message_views([forward.message.id], viewer=bob)[forward.message.id]["forwarded"] is True
    assert bob_view[stone_hidden]["hidden"] is True and alice_view[stone_hidden]["deleted"] is True


def test_no_ids_no_views(store: Store) -> None:
    (alice,) = users(store, "alice")
    assert store.message_views([], viewer=alice) == {}
