"""MQTT 5 request/response at the broker's edge: which reply targets a command may name, and the
properties its answer is published with.

A Response Topic must be the sender's own ``<prefix>/<user>/reply`` or a topic under
``<prefix>/<user>/reply/``, which only that user may subscribe to (the ACL): anything else could
send the answer, and whatever it says about the user, to someone else. Correlation Data and User
Properties travel with the command to be echoed on its answer, so they are bounded.
"""

from __future__ import annotations

import base64
from typing import Final

from broker.mqtt.properties import PublishProps
from client_sdk.contract import (
    MAX_CORRELATION_BYTES,
    MAX_RESPONSE_TOPIC_BYTES,
    MAX_USER_PROPERTIES,
    MAX_USER_PROPERTIES_BYTES,
    ErrorCode,
    Topics,
)
from workers.answers import PublishOptions

__all__ = ["ANSWER_CONTENT_TYPE", "RefusedReply", "publish_props", "reply_target"]

ANSWER_CONTENT_TYPE: Final = "application/json"


class RefusedReply(Exception):
    """A command's request/response properties that the server does not take."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def reply_target(topics: Topics, user: str, props: PublishProps | None) -> PublishOptions | None:
    """Where the answer to ``user``'s command goes: None for the inbox (no Response Topic), else
    the response topic with the Correlation Data and User Properties to echo. Raises RefusedReply
    (``forbidden``: not the user's response topic; ``too_large``: past the contract's bounds)."""
    if props is None:
        return None
    pairs = props.user_properties
    if len(pairs) > MAX_USER_PROPERTIES:
        raise RefusedReply(
            ErrorCode.TOO_LARGE, f"at most {MAX_USER_PROPERTIES} user properties, not {len(pairs)}"
        )
    if pairs and sum(len(k.encode()) + len(v.encode()) for k, v in pairs) > MAX_USER_PROPERTIES_BYTES:
        raise RefusedReply(
            ErrorCode.TOO_LARGE,
            f"user properties: at most {MAX_USER_PROPERTIES_BYTES} bytes of names and values",
        )
    topic = props.response_topic
    if topic is None:
        return None  # no answer to route elsewhere: the user properties are not echoed on the inbox
    if not topics.is_reply_of(user, topic):
        raise RefusedReply(
            ErrorCode.FORBIDDEN,
            f"response topic {topic!r} is not yours: use {topics.reply(user)} or a topic under"
            f" {topics.reply(user)}/",
        )
    if len(topic.encode()) > MAX_RESPONSE_TOPIC_BYTES:
        raise RefusedReply(ErrorCode.TOO_LARGE, f"response topic: at most {MAX_RESPONSE_TOPIC_BYTES} bytes")
    target: PublishOptions = {"topic": topic}
    correlation = props.correlation_data
    if correlation is not None:
        if len(correlation) > MAX_CORRELATION_BYTES:
            raise RefusedReply(
                ErrorCode.TOO_LARGE, f"correlation data: at most {MAX_CORRELATION_BYTES} bytes"
            )
        target["correlation"] = base64.b64encode(correlation).decode("ascii")
    if pairs:
        target["user_properties"] = [[k, v] for k, v in pairs]
    return target


def publish_props(options: PublishOptions) -> PublishProps:
    """The MQTT 5 properties of an event published with ``options`` (ignored on 3.1.1)."""
    correlation = options.get("correlation")
    if "topic" not in options:  # a live event with an expiry: not an answer
        return PublishProps(message_expiry=options.get("expiry"))
    return PublishProps(
        correlation_data=None if correlation is None else base64.b64decode(correlation),
        user_properties=tuple((str(k), str(v)) for k, v in options.get("user_properties", ())),
        message_expiry=options.get("expiry"),
        content_type=ANSWER_CONTENT_TYPE,
    )
