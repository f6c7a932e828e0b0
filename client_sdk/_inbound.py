"""What arrives on the connection, turned into an input of the session: shared by the blocking and
the asyncio client, which differ only in how the bytes arrive."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from client_sdk._session import Effects, Session
from client_sdk.contract import Topics, decode

__all__ = ["Incoming", "feed", "incoming"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A decoded payload and where it came from: the inbox, or ``presence_of`` that user's presence
    topic (both None: a topic the client did not expect)."""

    topic: str
    payload: Any
    inbox: bool
    presence_of: str | None


def incoming(
    *, client_id: str, topics: Topics, inbox: str, topic: str, payload: bytes | bytearray
) -> Incoming | None:
    """Decode one PUBLISH the client received; None (logged) for an empty or non-JSON payload.

    Done without the client's lock: decoding needs no shared state.
    """
    if not payload:
        logger.debug("%s: ignoring an empty payload on %s", client_id, topic)
        return None
    try:
        decoded = decode(payload)
    except ValueError as exc:
        logger.warning("%s: ignoring a payload on %s that is not JSON: %s", client_id, topic, exc)
        return None
    is_inbox = topic == inbox
    presence_of = None if is_inbox else topics.user_of_presence(topic)
    return Incoming(topic=topic, payload=decoded, inbox=is_inbox, presence_of=presence_of)


def feed(session: Session, item: Incoming, *, client_id: str, now: float) -> Effects | None:
    """Hand ``item`` to the session; None (logged) when it came on a topic the client does not read."""
    if item.inbox:
        return session.on_inbox(item.payload, now=now)
    if item.presence_of is not None:
        return session.on_presence(item.presence_of, item.payload)
    logger.debug("%s: ignoring a message on unexpected topic %s", client_id, item.topic)
    return None
