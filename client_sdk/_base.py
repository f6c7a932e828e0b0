"""What every part of :class:`~client_sdk.Client` shares: its state, the lock, and carrying out the
session's effects over paho.

The client is assembled from parts, one per concern (:mod:`._connection`, :mod:`._messaging`,
:mod:`._media_calls`, :mod:`._group_calls`, :mod:`._push_calls`, :mod:`._presence_calls`). Each
is a mixin on :class:`ClientBase`; the protocol itself lives in the I/O-free :class:`Session`.

Threads: the caller's threads, paho's network thread (``loop_start``; every paho callback runs
there) and one ticker thread that fires the session's timers (gap syncs, sync retries). All
shared state is guarded by one lock; callbacks hold it briefly and never wait on the network.
Events reach the app through a queue read by ``Client.events`` and ``Client.messages``.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from client_sdk._errors import NotConnected
from client_sdk._events import (
    DeviceList,
    Event,
    GroupEvent,
    GroupList,
    Ok,
    ProfileChanged,
    ProfileList,
    SearchResults,
)
from client_sdk._session import Command, Effects, Session
from client_sdk._statefile import StateFile
from client_sdk._subscriptions import Subscribe
from client_sdk.contract import Topics, encode

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "END", "ClientBase", "Closed", "State"]

logger = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT: Final = 10.0
"""Seconds a call that waits for the server's answer (groups, push, presence) waits by default."""

_ACCEPTED: Final = frozenset({MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN})

_A = TypeVar("_A", GroupEvent, GroupList, DeviceList, Ok, ProfileChanged, ProfileList, SearchResults)


class State(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class Closed:
    """Marks the end of the event queue; with ``error``, the reason the client stopped (raised by
    :meth:`Messaging.events` and :meth:`Messaging.messages` once the events before it are read)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error


END: Final = Closed()


class ClientBase:
    """The state of a client, shared by its parts (assigned in ``Client.__init__``)."""

    _host: str
    _port: int
    _user: str
    _device: str
    _topics: Topics
    _inbox: str
    """This user's inbox topic."""
    _outbox: str
    """This user's outbox topic: where commands are published."""
    _state_file: StateFile | None
    _session: Session
    _lock: threading.RLock
    _changed: threading.Condition
    """Notified (on ``_lock``) whenever the session or the client's state may have changed."""
    _events: queue.Queue[Event | Closed]
    _state: State
    _mqtt: mqtt.Client | None

    # -- state -----------------------------------------------------------------------------------

    @property
    def user(self) -> str:
        return self._user

    @property
    def device(self) -> str:
        return self._device

    @property
    def client_id(self) -> str:
        """The MQTT client id, ``<user>/<device>``."""
        return f"{self._user}/{self._device}"

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now (it may drop and come back at any time)."""
        with self._lock:
            return self._state is not State.CLOSED and self._session.connected

    @property
    def cursor(self) -> int:
        """The highest inbox cursor processed in order."""
        with self._lock:
            return self._session.cursor

    # -- internals shared by the parts ----------------------------------------------------------------

    def _closed(self) -> bool:
        return self._state is State.CLOSED

    def _require_open(self) -> None:
        if self._state is not State.OPEN:
            raise NotConnected(f"the client is {self._state.value}")

    def _apply(self, effects: Effects) -> None:
        """Carry out what the session asked for (the lock is held)."""
        for subscribe in effects.subscriptions:
            self._subscribe(subscribe)
        for command in effects.commands:
            self._publish(command)
        for event in effects.events:
            self._events.put(event)
        self._changed.notify_all()

    def _subscribe(self, subscribe: Subscribe) -> None:
        """Send one SUBSCRIBE; the session awaits its SUBACK (lock held)."""
        if self._mqtt is None:
            return
        topics = [(self._topics.presence(user), 1) for user in subscribe.presence]
        if subscribe.inbox:
            topics.insert(0, (self._inbox, 1))
        result, mid = self._mqtt.subscribe(topics)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            return  # not connected after all: subscribed again on connect
        self._session.on_subscribing(mid, subscribe)

    def _publish(self, command: Command) -> None:
        if self._mqtt is None:
            return
        info = self._mqtt.publish(self._outbox, encode(command.payload), qos=command.qos)
        # NO_CONN: paho keeps a QoS 1 message and publishes it after the reconnect; sends are resent anyway.
        if info.rc not in _ACCEPTED:
            logger.warning(
                "%s: publishing the %s command %s failed: %s",
                self.client_id,
                command.payload["type"],
                command.payload["id"],
                mqtt.error_string(info.rc),
            )

    def _request(
        self, build: Callable[[str], dict[str, Any]], answer_type: type[_A], timeout: float | None
    ) -> _A:
        """Publish the command ``build`` makes (from a fresh id) and wait for its answer."""
        with self._lock:
            self._require_open()
            if not self._session.connected:
                raise NotConnected(f"{self.client_id} is not connected right now")
            request, effects = self._session.request(build, answer_type)
            self._apply(effects)
        try:
            return request.wait(timeout=timeout)
        finally:
            with self._lock:
                self._session.requests.discard(request.id)

    def _persist(self, cursor: int) -> None:
        if self._state_file is not None:
            self._state_file.keep(cursor, client_id=self.client_id)
