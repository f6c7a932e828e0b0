"""The shared rules of replies (workers/stores/rules/replies.py) and where the pipeline puts a reply."""

from __future__ import annotations

import pytest

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.pipeline import _plan
from workers.stores.rules.replies import EXCERPT_CHARS, check_quotable, deleted_quote, quote, requoted


def test_a_quote_holds_the_first_characters_of_the_text_and_the_media_type() -> None:
    long = "é" * (EXCERPT_CHARS + 20)
    assert quote(message_id="m", sender="bob", seq=3, text=long, media=None, deleted=False) == {
        "id": "m",
        "from": "bob",
        "seq": 3,
        "excerpt": "é" * EXCERPT_CHARS,
    }
    photo = quote(message_id="m", sender="bob", seq=3, text="", media={"type": "image/png"}, deleted=False)
    assert photo["excerpt"] == "" and photo["media_type"] == "image/png"
    gone = quote(message_id="m", sender="bob", seq=3, text="", media=None, deleted=True)
    assert gone == {"id": "m", "from": "bob", "seq": 3, "deleted": True} == deleted_quote(photo)


def test_what_cannot_be_seen_is_not_found_and_another_conversation_is_a_bad_request() -> None:
    check_quotable("m", visible=True, conversation="dm:a:b", reply_conversation="dm:a:b")
    for visible, conversation in ((False, "dm:a:b"), (True, None), (False, "dm:a:c")):
        with pytest.raises(CommandError) as raised:
            check_quotable("m", visible=visible, conversation=conversation, reply_conversation="dm:a:b")
        assert raised.value.code == ErrorCode.NOT_FOUND  # not telling a stranger it exists elsewhere
    with pytest.raises(CommandError) as raised:
        check_quotable("m", visible=True, conversation="dm:a:c", reply_conversation="dm:a:b")
    assert raised.value.code == ErrorCode.BAD_REQUEST
    assert raised.value.message == "reply_to is in another conversation"


def test_a_requote_keeps_the_other_fields_and_leaves_tombstones_and_hidden_messages() -> None:
    gone = {"id": "q", "from": "bob", "seq": 1, "deleted": True}
    scrub = requoted(gone)
    reply = {"id": "r", "text": "ok", "reactions": {"bob": "👍"}, "reply": {"id": "q", "excerpt": "x"}}
    assert scrub(dict(reply)) == {**reply, "reply": gone}
    assert scrub({"id": "r", "deleted": True}) is None
    assert scrub({"id": "r", "text": "no quote"}) is None
    # a message hidden for me: an edit's new excerpt leaves it, a delete's scrub does not
    assert scrub({**reply, "hidden": True}) == {**reply, "hidden": True, "reply": gone}
    edited = requoted({"id": "q", "from": "bob", "seq": 1, "excerpt": "new"})
    assert edited({**reply, "hidden": True}) is None
    assert edited(dict(reply)) == {**reply, "reply": {"id": "q", "from": "bob", "seq": 1, "excerpt": "new"}}


def test_a_reply_is_stored_one_by_one_and_plain_texts_still_together() -> None:
    def send(user: str, **extra: str) -> dict[str, object]:
        return {"user": user, "cmd": {"type": "send", "to": "zed", "text": "x", **extra}}

    plain_a, reply_b, plain_c = send("a"), send("b", reply_to="m"), send("c")
    steps = list(_plan([plain_a, reply_b, plain_c]))
    texts = [item for step in steps for item in step[0]]
    others = [item for step in steps for item in step[2]]
    assert texts == [plain_a, plain_c] and others == [reply_b]
