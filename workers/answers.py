"""How an event is published besides to its user's inbox: an MQTT 5 command's reply target, and
the Message Expiry of live-only events.

A command published with a Response Topic (MQTT 5) gets its direct answer there, with its
Correlation Data and User Properties (see docs/protocol.md, "Request/response (MQTT 5)"). The
target travels with the command through every hop a command takes (the commands process, the job
queue), and back with the answer to the node that received the command, so it is kept as plain
JSON: ``PublishOptions``. The broker turns it into MQTT 5 properties (``broker/replies.py``).
"""

from __future__ import annotations

from typing import Final, TypedDict

__all__ = ["TYPING", "PublishOptions"]


class PublishOptions(TypedDict, total=False):
    """The JSON form of what an event is published with, besides its payload and QoS."""

    topic: str
    """Publish to this topic (the command's Response Topic), on the node that received the
    command only, instead of the user's inbox."""
    correlation: str
    """The command's Correlation Data, base64."""
    user_properties: list[list[str]]
    """The command's User Properties, ``[[name, value], ...]``, echoed in order."""
    expiry: int
    """Message Expiry Interval, seconds: a live-only event that comes later than this is stale."""


TYPING_EXPIRY: Final = 5
"""Seconds a typing indicator is worth delivering: a client shows one for about that long, and a
group member hears the next one after the typing gate's 2 s at the latest."""
TYPING: Final[PublishOptions] = {"expiry": TYPING_EXPIRY}
