"""Edit and delete commands through the real pipeline (every backend): the answers, and the media
a delete frees going to the ``discard`` output only once the batch that freed it is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tests.harness import unique
from tests.stores.conftest import users
from tests.stores.test_store_media import media
from workers.errors import StoreUnavailable
from workers.pipeline import Pipeline
from workers.routing import Delivery
from workers.stores import Store

NODE = "n1"


class Outputs:
    """What the pipeline said, in order: ``("route", user, event)`` and ``("discard", keys)``."""

    def __init__(self) -> None:
        self.said: list[tuple[Any, ...]] = []

    def route(self, deliveries: list[Delivery]) -> None:
        self.said += [("route", user, event) for user, event, _node, _qos, _options in deliveries]

    def discard(self, keys: Sequence[str]) -> None:
        self.said.append(("discard", sorted(keys)))

    def events(self, user: str) -> list[dict[str, Any]]:
        return [s[2] for s in self.said if s[0] == "route" and s[1] == user]


def command(user: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"user": user, "cmd": {"v": 1, "type": kind, "id": unique("c"), **fields}}


def pipeline(store: Store, outputs: Outputs, *, now: float) -> Pipeline:
    return Pipeline(
        store=store,
        route=outputs.route,
        discard=outputs.discard,
        clock=lambda: now,
        edit_window=60.0,
        delete_window=120.0,
    )


def test_a_users_delete_answers_with_ref_and_hands_the_media_on_after_the_batch(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    photo = media(unique("p"))
    sent = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text="cap", now=100.0, media=photo
    )
    outputs = Outputs()
    gone = command(alice, "delete", message=sent.message.id, **{"for": "everyone"})

    pipeline(store, outputs, now=110.0).process_batch(NODE, [gone])

    (mine,) = outputs.events(alice)
    (theirs,) = outputs.events(bob)
    assert (mine["type"], mine["ref"], theirs["ref"]) == ("deleted", gone["cmd"]["id"], None)
    keys = sorted([photo["key"], photo["thumbnail"]["key"]])
    assert outputs.said[-1] == ("discard", keys)  # after every event of the batch

    # again: ok, nothing discarded twice
    again = Outputs()
    pipeline(store, again, now=111.0).process_batch(
        NODE, [command(alice, "delete", message=sent.message.id, **{"for": "everyone"})]
    )
    assert [e["type"] for e in again.events(alice)] == ["ok"] and again.events(bob) == []
    assert not any(s[0] == "discard" for s in again.said)


def test_nothing_is_discarded_when_the_batch_is_not_stored(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = users(store, "alice", "bob")
    photo = media(unique("p"))
    sent = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="", now=100.0, media=photo)
    outputs = Outputs()
    work = pipeline(store, outputs, now=110.0)
    real_hide = store.hide_message

    def store_down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the store went away")

    monkeypatch.setattr(store, "hide_message", store_down)
    batch = [
        command(alice, "delete", message=sent.message.id, **{"for": "everyone"}),
        command(bob, "delete", message=sent.message.id, **{"for": "me"}),
    ]
    with pytest.raises(StoreUnavailable):
        work.process_batch(NODE, batch)

    assert outputs.said == []  # neither the events nor the media: the batch is retried
    monkeypatch.setattr(store, "hide_message", real_hide)


def test_edits_past_the_window_and_by_others_are_refused_with_their_codes(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    message_id = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text="x", now=100.0
    ).message.id
    outputs = Outputs()
    late = command(alice, "edit", message=message_id, text="y")
    theirs = command(bob, "edit", message=message_id, text="y")

    pipeline(store, outputs, now=161.0).process_batch(NODE, [late, theirs])

    assert [(e["type"], e["code"]) for e in outputs.events(alice)] == [("error", "too_late")]
    assert [(e["type"], e["code"]) for e in outputs.events(bob)] == [("error", "forbidden")]
