"""MQTT 5 request/response at ingest: which Response Topics a command may name (only the sender's
own ``chat/<user>/reply`` tree), the bounds on what it carries to be echoed, the PUBACK reason code
of each refusal, and where the refusal's ``error`` goes (the reply target when the command named a
valid one, else the inbox). The answers themselves: tests/stores/test_pipeline_answers.py and
tests/integration/test_mqtt5_reqresp.py."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.ingest import ACCEPTED, Ingest
from broker.mqtt.properties import PublishProps
from broker.replies import ANSWER_CONTENT_TYPE, RefusedReply, publish_props, reply_target
from broker.throttle import RateLimiter
from client_sdk.contract import (
    MAX_CORRELATION_BYTES,
    MAX_USER_PROPERTIES,
    MAX_USER_PROPERTIES_BYTES,
    ErrorCode,
    Topics,
)
from tests.unit.test_ingest import Sink
from workers.answers import PublishOptions

TOPICS = Topics()
Said = list[tuple[str, dict[str, Any], PublishOptions | None]]


def props(topic: str | None = "chat/alice/reply", **kw: Any) -> PublishProps:
    return PublishProps(response_topic=topic, **kw)


@pytest.mark.parametrize(
    "topic",
    ["chat/alice/reply", "chat/alice/reply/phone", "chat/alice/reply/phone/7f3a", "chat/alice/reply/"],
)
def test_a_user_may_name_their_own_response_topic_or_one_under_it(topic: str) -> None:
    assert reply_target(TOPICS, "alice", props(topic)) == {"topic": topic}


@pytest.mark.parametrize(
    "topic",
    [
        "chat/bob/reply",  # another user's: spoofing
        "chat/bob/reply/alice",
        "chat/alice/replyx",  # not under reply/
        "chat/alice/in",  # the inbox is the server's, one topic for every device
        "chat/alice/out",
        "chat/alice/reply/+",  # a Response Topic is a topic name, never a filter
        "chat/alice/reply/#",
        "chat/+/reply",
        "presence/alice",
        "elsewhere/alice/reply",
        "",
    ],
)
def test_any_other_response_topic_is_forbidden(topic: str) -> None:
    with pytest.raises(RefusedReply) as refused:
        reply_target(TOPICS, "alice", props(topic))
    assert refused.value.code is ErrorCode.FORBIDDEN
    assert "chat/alice/reply" in refused.value.message  # says which topic to use


def test_correlation_data_and_user_properties_travel_as_json_and_come_back_as_properties() -> None:
    correlation = bytes(range(256))[:MAX_CORRELATION_BYTES]
    pairs = (("trace", "t-1"), ("trace", "t-2"), ("ünï", "cødé"))
    target = reply_target(TOPICS, "alice", props(correlation_data=correlation, user_properties=pairs))
    assert target is not None
    assert json.loads(json.dumps(target)) == target  # crosses the job queue as JSON

    answer = publish_props(target)
    assert answer == PublishProps(
        correlation_data=correlation, user_properties=pairs, content_type=ANSWER_CONTENT_TYPE
    )
    assert answer.response_topic is None  # an answer asks for no answer


def test_without_a_response_topic_there_is_no_target_and_a_live_expiry_is_no_answer() -> None:
    assert reply_target(TOPICS, "alice", None) is None
    assert (
        reply_target(TOPICS, "alice", props(None, correlation_data=b"x", user_properties=(("a", "b"),)))
        is None
    )
    assert publish_props({"expiry": 5}) == PublishProps(message_expiry=5)


@pytest.mark.parametrize(
    ("extra", "what"),
    [
        ({"user_properties": (("k", "v"),) * (MAX_USER_PROPERTIES + 1)}, "user properties"),
        ({"user_properties": (("k", "v" * MAX_USER_PROPERTIES_BYTES),)}, "bytes"),
        ({"correlation_data": b"c" * (MAX_CORRELATION_BYTES + 1)}, "correlation data"),
    ],
)
def test_more_than_the_contract_carries_is_refused_as_too_large(extra: dict[str, Any], what: str) -> None:
    with pytest.raises(RefusedReply) as refused:
        reply_target(TOPICS, "alice", props(**extra))
    assert refused.value.code is ErrorCode.TOO_LARGE and what in refused.value.message


def test_too_many_user_properties_are_refused_even_without_a_response_topic() -> None:
    with pytest.raises(RefusedReply):
        reply_target(TOPICS, "alice", props(None, user_properties=(("k", "v"),) * (MAX_USER_PROPERTIES + 1)))


def test_a_long_response_topic_is_refused() -> None:
    with pytest.raises(RefusedReply) as refused:
        reply_target(TOPICS, "alice", props("chat/alice/reply/" + "x" * 300))
    assert refused.value.code is ErrorCode.TOO_LARGE


# ---------------------------------------------------------------------------------- ingest


def ingest(said: Said, sink: Sink, *, rate: RateLimiter | None = None) -> Ingest:
    return Ingest(
        node_id="n1",
        topics=TOPICS,
        max_payload_bytes=64 * 1024,
        queue_size=1000,
        batch_size=100,
        runner=sink,  # type: ignore[arg-type]
        reply=lambda user, event, target: said.append((user, event, target)),
        rate=rate,
    )


def command(cid: str, kind: str = "group_list") -> bytes:
    return json.dumps({"v": 1, "type": kind, "id": cid}).encode()


def accept_all(gate: Ingest, publishes: list[tuple[str, bytes, PublishProps | None]]) -> list[int]:
    async def main() -> list[int]:
        codes = [gate.accept(user, TOPICS.outbox(user), data, f"{user}/d1", p) for user, data, p in publishes]
        await gate.drain(5)
        return codes

    return asyncio.run(main())


def test_an_accepted_command_carries_its_reply_target_in_its_envelope() -> None:
    said: Said = []
    sink = Sink(slots=5)
    corr = b"\x00\xffid-1"
    codes = accept_all(
        ingest(said, sink),
        [
            ("alice", command("c1"), props("chat/alice/reply/phone", correlation_data=corr)),
            ("alice", command("c2"), None),  # 3.1.1, or MQTT 5 without a Response Topic
        ],
    )
    assert codes == [ACCEPTED, ACCEPTED] and said == []
    first, second = [item for batch in sink.batches for item in batch]
    assert first["response"] == {
        "topic": "chat/alice/reply/phone",
        "correlation": base64.b64encode(corr).decode(),
    }
    assert "response" not in second  # the envelope is unchanged without one


def test_another_users_response_topic_is_refused_with_0x87_and_an_error_on_the_inbox() -> None:
    said: Said = []
    sink = Sink(slots=5)
    codes = accept_all(
        ingest(said, sink), [("alice", command("c1"), props("chat/bob/reply", correlation_data=b"1"))]
    )
    assert codes == [0x87]
    assert sink.batches == []  # nothing runs: bob never hears of it
    ((user, event, target),) = said
    assert (user, target) == ("alice", None)  # the inbox: the topic named is not one alice may read
    assert (event["type"], event["code"], event["ref"]) == ("error", "forbidden", "c1")


def test_refusals_found_at_ingest_go_to_a_valid_reply_target_with_their_codes() -> None:
    said: Said = []
    sink = Sink(slots=5)
    target = props("chat/alice/reply", correlation_data=b"k")
    codes = accept_all(
        ingest(said, sink, rate=RateLimiter(rate=0.001, burst=2)),
        [
            ("alice", b"{not json", target),
            ("alice", json.dumps({"v": 1, "type": "nope", "id": "c0"}).encode(), target),
            ("alice", command("c1"), target),
            ("alice", command("c2"), target),
            ("alice", command("c3"), target),  # past the burst
            ("alice", command("c4"), props("chat/alice/reply", user_properties=(("k", "v"),) * 17)),
        ],
    )
    assert codes == [0x99, 0x99, ACCEPTED, ACCEPTED, 0x97, 0x97]
    answers = [(event["code"], event["ref"], t and t.get("correlation")) for _, event, t in said]
    k = base64.b64encode(b"k").decode()
    assert answers == [
        ("bad_json", None, k),
        ("unknown_type", "c0", k),
        ("rate_limited", "c3", k),
        ("too_large", "c4", None),  # refused before any target was taken: the inbox
    ]


def test_a_publish_outside_the_outbox_is_0x87() -> None:
    said: Said = []
    gate = ingest(said, Sink(slots=1))
    assert gate.accept("alice", "chat/bob/out", command("c1"), "alice/d1", None) == 0x87
    assert said[0][1]["code"] == "forbidden"


@settings(max_examples=400, deadline=None)
@given(
    user=st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True),
    other=st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True),
    tail=st.text(alphabet=st.sampled_from("ab/+#.-_\0ü"), max_size=12),
)
def test_a_target_is_always_a_topic_under_the_users_own_reply_topic(user: str, other: str, tail: str) -> None:
    """Whatever a client names, the answer never goes to a topic another user may read."""
    for topic in (f"chat/{other}/reply{tail}", f"chat/{user}/reply{tail}", f"chat/{other}{tail}", tail):
        try:
            target = reply_target(TOPICS, user, props(topic))
        except RefusedReply as refused:
            code: ErrorCode | None = refused.code
        else:
            code = None
        assert code in (None, ErrorCode.FORBIDDEN, ErrorCode.TOO_LARGE)
        if code is not None:
            continue
        assert target is not None
        named = target["topic"]
        assert named == f"chat/{user}/reply" or named.startswith(f"chat/{user}/reply/")
        assert not any(c in named for c in "+#\0")
        # and nobody else's ACL lets them read it
        assert not TOPICS.is_reply_of(other, named, filter_=True) or other == user
