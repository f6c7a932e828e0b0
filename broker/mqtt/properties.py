"""What an MQTT 5 PUBLISH carries besides its topic and payload, as the rest of mqchat sees it.

One small value type shared by the broker's MQTT 5 layer (which decodes and encodes these from
and to the wire), ingest (which takes a command's request/response properties) and the node
(which answers on the response topic). A 3.1.1 connection has none: ``None`` everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PublishProps"]


@dataclass(frozen=True, slots=True)
class PublishProps:
    """The MQTT 5 properties of one PUBLISH that mqchat reads or writes (MQTT 5.0, 3.3.2.3)."""

    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    message_expiry: int | None = None
    """Seconds; set on live-only events (typing) so a late delivery is dropped, not shown."""
    content_type: str | None = None
