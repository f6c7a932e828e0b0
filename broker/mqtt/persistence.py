"""The seam between the broker and persistent sessions, which the store keeps (``broker/persistent.py``).

The broker keeps no MQTT session of its own (``ConnectionState``). A device that asks for a
persistent one is resumed by a ``SessionKeeper`` the node passes in: before CONNACK the broker asks
it (``MqchatBroker.resume_session``), and when it says so the connection gets a ``Resumable``. The
broker then subscribes the connection to the Resumable's inbox topic without a SUBSCRIBE, hands it
every live delivery to that topic instead of writing it, and gives it an ``Outlet`` to write
through: the Resumable decides what goes out, in which order, and with DUP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from broker.mqtt.connection_state import ConnectionState
from broker.mqtt.properties import PublishProps

__all__ = ["Outlet", "Resumable", "SessionKeeper"]


class Outlet(Protocol):
    def __call__(
        self,
        data: bytes,
        *,
        dup: bool,
        acked: Callable[[], None],
        done: Callable[[], None],
        props: PublishProps | None = None,
    ) -> bool:
        """Write a QoS 1 PUBLISH of ``data`` to the inbox topic (``MqchatHandler.publish_tracked``;
        ``props`` on an MQTT 5 connection)."""
        ...


class Resumable(Protocol):
    topic: str
    """The inbox topic the session is subscribed to (restored)."""

    def start(self, send: Outlet) -> None:
        """CONNACK is written and the subscription restored: what was missed can go out."""
        ...

    def offer(self, data: bytes, props: PublishProps | None = None) -> None:
        """A live delivery to ``topic`` (event loop), with its MQTT 5 properties."""
        ...

    def ended(self) -> None:
        """The connection ended (or was taken over): no more writes; its cursors are kept (for the
        session expiry the connection has now: an MQTT 5 DISCONNECT may change it)."""
        ...


class SessionKeeper(Protocol):
    async def resume(self, state: ConnectionState) -> bool:
        """The CONNACK's session-present flag for a connection just authenticated; sets
        ``state.resumable`` when the connection has a persistent session (present or new)."""
        ...
