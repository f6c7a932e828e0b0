"""The SDK's side of media: the ``media`` object parsed, media sends answered like text, the endpoint URL."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import Client, CommandRejected, Media, Message, Status
from client_sdk._events import parse_inbox
from client_sdk._media import parse_media
from client_sdk._outbox import Outbox, OutgoingMessage
from client_sdk.contract import load_schema

PHOTO = {
    "key": "m/5f0c.jpg",
    "type": "image/jpeg",
    "size": 481220,
    "width": 3024,
    "height": 4032,
    "thumbnail": {
        "key": "m/5f0c.thumb.jpg",
        "type": "image/jpeg",
        "size": 13107,
        "width": 240,
        "height": 320,
    },
}
CLIP = {
    "key": "m/77.mp4",
    "type": "video/mp4",
    "size": 9000,
    "width": None,
    "height": None,
    "thumbnail": None,
}
STORED = {"id": "m-1", "conversation": "dm:alice:bob", "seq": 3, "from": "alice", "to": "bob", "ts": 1.5}


def event(media: dict[str, Any], text: str = "") -> dict[str, Any]:
    return {"v": 1, "type": "message", "cursor": 7, "message": {**STORED, "text": text, "media": media}}


@pytest.mark.parametrize(
    "payload", [event(PHOTO, "the view"), event(CLIP), event({**CLIP, "duration": 12.5})]
)
def test_media_messages_follow_the_published_schema(payload: dict[str, Any]) -> None:
    Draft202012Validator(load_schema()).validate(payload)


def test_a_media_message_parses_into_message_media() -> None:
    message = parse_inbox(event(PHOTO, "the view"))
    assert isinstance(message, Message) and message.text == "the view"
    assert message.media == Media(
        key="m/5f0c.jpg",
        type="image/jpeg",
        size=481220,
        width=3024,
        height=4032,
        thumbnail=Media(key="m/5f0c.thumb.jpg", type="image/jpeg", size=13107, width=240, height=320),
    )
    assert message.media.is_image and not message.media.is_video
    video = parse_inbox(event({**CLIP, "duration": 12.5}))
    assert isinstance(video, Message) and video.media is not None
    assert video.media.is_video and video.media.duration == 12.5 and video.media.thumbnail is None
    text = parse_inbox({"v": 1, "type": "message", "cursor": 8, "message": {**STORED, "text": "hi"}})
    assert isinstance(text, Message) and text.media is None


@pytest.mark.parametrize(
    "change",
    [
        {"key": ""},
        {"type": "jpeg"},
        {"size": -1},
        {"width": 0},
        {"height": "tall"},
        {"duration": -1},
        {"thumbnail": "m/x.jpg"},
    ],
)
def test_a_malformed_media_object_is_a_value_error(change: dict[str, Any]) -> None:
    broken = copy.deepcopy(PHOTO) | change
    with pytest.raises(ValueError, match="media"):
        parse_media(broken)
    assert not Draft202012Validator(load_schema()).is_valid(event(broken))


def test_an_expected_media_send_is_answered_like_a_text_but_never_resent() -> None:
    outbox = Outbox()
    photo = OutgoingMessage(id="c-1", to="bob", text="caption")
    outbox.expect(photo)
    assert outbox.pending() == [] and len(outbox) == 0  # nothing for the outbox to resend
    with pytest.raises(ValueError, match="already pending"):
        outbox.expect(OutgoingMessage(id="c-1", to="bob", text=""))
    message = parse_inbox(event(PHOTO))
    assert isinstance(message, Message)
    assert outbox.resolve("c-1", message) is photo and photo.status is Status.SENT

    refused = OutgoingMessage(id="c-2", to="bob", text="")
    outbox.expect(refused)
    outbox.reject("c-2", CommandRejected(code="bad_media", ref="c-2", message="damaged"))
    with pytest.raises(CommandRejected, match="bad_media"):
        refused.wait("sent", timeout=0)

    forgotten = OutgoingMessage(id="c-3", to="bob", text="")
    outbox.expect(forgotten)
    outbox.forget("c-3")
    assert outbox.resolve("c-3", message) is None


def test_the_media_endpoint_defaults_to_the_host_on_port_8090() -> None:
    def endpoint(**kwargs: Any) -> str:
        return Client(user="alice", token="t", **kwargs)._media.base_url

    assert endpoint(host="chat.example.com") == "http://chat.example.com:8090"
    assert endpoint(host="chat.example.com", tls=True) == "https://chat.example.com:8090"
    assert endpoint(host="::1") == "http://[::1]:8090"
    assert endpoint(host="x", media_url="https://cdn.example.com/") == "https://cdn.example.com"
    with pytest.raises(ValueError, match="media_url"):
        endpoint(media_url="ftp://x")


def test_download_needs_a_message_with_media() -> None:
    client = Client(user="alice", token="t")
    text = parse_inbox({"v": 1, "type": "message", "cursor": 8, "message": {**STORED, "text": "hi"}})
    assert isinstance(text, Message)
    with pytest.raises(ValueError, match="no image or video"):
        client.download(text)
    with pytest.raises(ValueError, match="no thumbnail"):
        client.download(parse_media(CLIP), thumbnail=True)
    with pytest.raises(ValueError, match="caption"):
        client._media.upload(to="bob", id="c-1", caption="x" * 1025, file="/nonexistent")
