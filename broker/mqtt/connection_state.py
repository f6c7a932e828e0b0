"""``ConnectionState``: amqtt's Session, lighter, for a session that lives exactly as long as its
connection (mqchat keeps no MQTT session state).

Stock amqtt 0.12.1 gives every Session its own ``transitions.Machine`` (the largest part of an
idle connection's memory, and slow to build: docs/amqtt-upstream.md has the figures) and two eager
``asyncio.Queue``s. mqchat's sessions live exactly as long as their connection: nothing is queued
for them while offline (the store is the source of truth) and client publishes go to ingest, not
to the delivery queue. So:

- ``transitions`` is a small view over one string attribute with the triggers and the test amqtt
  uses (``connect``, ``disconnect``, ``state``, ``is_connected``), raising ``MachineError`` on the
  same invalid triggers as the stock machine.
- ``retained_messages`` and ``delivered_message_queue`` are a shared queue that holds nothing:
  what amqtt would put there (a QoS 2 publish once released) has already been ingested.
- ``Session.__init__`` does not run: its constants are class attributes and its containers are
  made when first used, so an idle connection's session is a few hundred bytes, not ~2 KiB.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

from amqtt.errors import AMQTTError
from amqtt.session import Session
from transitions import MachineError

from broker.mqtt.lean import share_names

__all__ = ["DISCARD", "ConnectionState", "ConnectionState5", "DiscardQueue", "Transitions"]

_TRIGGERS = {
    "connect": {"new": "connected", "disconnected": "connected"},
    "disconnect": {"connected": "disconnected", "new": "disconnected", "disconnected": "disconnected"},
}


class DiscardQueue:
    """The part of ``asyncio.Queue`` amqtt uses, always empty: what is put is dropped."""

    __slots__ = ()

    def put_nowait(self, _item: object) -> None:
        return None

    async def put(self, _item: object) -> None:
        return None

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0

    def get_nowait(self) -> NoReturn:
        raise asyncio.QueueEmpty

    async def get(self) -> NoReturn:
        raise RuntimeError("nothing is ever queued for an mqchat session")


DISCARD = DiscardQueue()


class Transitions:
    """The stock session machine's interface over ``ConnectionState._state`` (made per access: no cycle)."""

    __slots__ = ("_session",)

    def __init__(self, session: ConnectionState) -> None:
        self._session = session

    @property
    def state(self) -> str:
        return self._session._state

    def is_connected(self) -> bool:
        return self._session._state == "connected"

    def connect(self) -> bool:
        self._fire("connect")
        session = self._session
        session.last_connect_time = math.floor(time.time())
        session.last_disconnect_time = None
        return True

    def disconnect(self) -> bool:
        self._fire("disconnect")
        self._session.last_disconnect_time = math.floor(time.time())
        return True

    def _fire(self, trigger: str) -> None:
        current = self._session._state
        dest = _TRIGGERS[trigger].get(current)
        if dest is None:
            raise MachineError(f'"Can\'t trigger event {trigger} from state {current}!"')
        self._session._state = dest


class ConnectionState(Session):
    """amqtt's Session without a state machine or queues of its own, and light when idle.

    ``Session.__init__`` is not run (``tests/unit/test_amqtt_pin.py`` pins what it sets): the
    values it sets alike for every session are class attributes here, read through the class
    until a connection sets its own, and its three containers (``attributes``, ``inflight_in``,
    ``inflight_out``) are made on first use. So an instance keeps its attributes inline instead of
    a dict of its own (see broker/mqtt/lean.py for why that matters), and an idle connection holds
    no empty ``OrderedDict``s.
    """

    remote_address: str | None = None
    remote_port: int | None = None
    client_id: str | None = None
    clean_session: bool | None = None
    will_flag: bool = False
    will_message: bytes | bytearray | None = None
    will_qos: int | None = None
    will_retain: bool | None = None
    will_topic: str | None = None
    keep_alive: int = 0
    publish_retry_delay: int = 0
    broker_uri: str | None = None
    username: str | None = None
    password: str | None = None
    cafile: str | None = None
    capath: str | None = None
    cadata: bytes | None = None
    parent: int = 0
    last_connect_time: int | None = None
    ssl_object: Any = None
    last_disconnect_time: int | None = None
    is_anonymous: bool = False
    # what amqtt would queue here (a QoS 2 publish once released) has already been ingested
    retained_messages: Any = DISCARD
    delivered_message_queue: Any = DISCARD
    _attributes: dict[str, Any] | None = None
    _inflight_out: OrderedDict[int, Any] | None = None
    _inflight_in: OrderedDict[int, Any] | None = None

    # What the CONNECT said, for the MQTT 5 layer and persistent sessions (class defaults: a 3.1.1
    # connection stores none of them).
    protocol_level = 4
    """4: MQTT 3.1.1, 5: MQTT 5."""
    clean_start = True
    """The CONNECT's clean-session flag (3.1.1) or Clean Start (MQTT 5), as sent: the broker sets
    amqtt's ``clean_session`` to True for its own flow whatever the client asked."""
    session_expiry: int | None = 0
    """Seconds the session outlives the connection: MQTT 5's Session Expiry Interval; 3.1.1: 0 with
    clean session, else None ("the server's ``sessions.persistent_ttl``")."""
    receive_maximum = 65535
    """QoS 1 deliveries the client takes unacknowledged at once (MQTT 5's Receive Maximum)."""
    max_packet_size: int | None = None
    """The largest packet the client takes (MQTT 5's Maximum Packet Size; None: no limit)."""
    topic_alias_maximum = 0
    """Topic aliases the client takes from the server (MQTT 5; 0: none)."""
    assigned_client_id = False
    """The client sent an empty client id and the server chose one (told in the MQTT 5 CONNACK)."""
    refusal: int | None = None
    """Why a login was refused, as an MQTT 5 CONNACK reason code (set by the plugin that refused)."""
    will5: Any = None
    """An MQTT 5 client's will (``broker.mqtt.mqtt5.Will``): passed to the gate as the client's own
    PUBLISH when it ends its connection with reason 0x04 or loses it."""

    def __init__(self) -> None:
        self._state = "new"
        self._packet_id = 0
        self.quick_out: dict[int, tuple[float, Callable[[], None]]] = {}
        """QoS 1 deliveries written by ``MqchatHandler.publish_now``: packet id -> (sent at, done)."""
        self.on_ack: dict[int, Callable[[], None]] = {}
        """Those of ``quick_out`` that want to know of their PUBACK (``publish_tracked``): packet
        id -> what to call when it comes (before their ``done``)."""
        self.resumable: Any = None
        """The persistent session's delivery of inbox events (see ``MqchatBroker.resume_session``),
        or None: every delivery goes straight out."""

    def _init_states(self) -> None:  # what Session.__init__ would call instead of building a Machine
        self._state = "new"

    @property
    def attributes(self) -> dict[str, Any]:
        """Plugins' session attributes (amqtt's), made on first use."""
        if self._attributes is None:
            self._attributes = {}
        return self._attributes

    @attributes.setter
    def attributes(self, value: dict[str, Any]) -> None:
        self._attributes = value

    @property
    def inflight_out(self) -> OrderedDict[int, Any]:
        """amqtt's outgoing QoS 1/2 flows (``publish_now`` deliveries are in ``quick_out``)."""
        if self._inflight_out is None:
            self._inflight_out = OrderedDict()
        return self._inflight_out

    @inflight_out.setter
    def inflight_out(self, value: OrderedDict[int, Any]) -> None:
        self._inflight_out = value

    @property
    def inflight_in(self) -> OrderedDict[int, Any]:
        """amqtt's incoming QoS 2 flows."""
        if self._inflight_in is None:
            self._inflight_in = OrderedDict()
        return self._inflight_in

    @inflight_in.setter
    def inflight_in(self, value: OrderedDict[int, Any]) -> None:
        self._inflight_in = value

    @property
    def transitions(self) -> Transitions:
        return Transitions(self)

    @property
    def next_packet_id(self) -> int:
        """A packet id free in amqtt's in-flight maps and in ``quick_out`` (stock: the first two)."""
        packet_id = self._packet_id % 65535 + 1
        if self._inflight_out is None and self._inflight_in is None and packet_id not in self.quick_out:
            self._packet_id = packet_id  # the usual case: amqtt's maps were never made, the next id is free
            return packet_id
        start = self._packet_id
        empty: dict[int, Any] = {}
        out, into = self._inflight_out or empty, self._inflight_in or empty  # not made for this
        while True:
            self._packet_id = (self._packet_id % 65535) + 1
            packet_id = self._packet_id
            if packet_id not in self.quick_out and packet_id not in out and packet_id not in into:
                return packet_id
            if packet_id == start:
                raise AMQTTError("More than 65535 messages pending. No free packet ID")


class ConnectionState5(ConnectionState):
    """An MQTT 5 connection's session: a class of its own so that its instances have a table of
    attribute names of their own (see broker/mqtt/lean.py). An MQTT 5 CONNECT sets names a 3.1.1
    one does not (``protocol_level``, ``will5``, the client's limits) and not others (the will's
    four fields); the names of both do not fit in one table, and a session past it keeps its
    attributes in a dict of its own: every read of one, on every delivery, a dict lookup."""


_EVERY_SESSION = (
    *("_state", "_packet_id", "quick_out", "on_ack", "resumable", "client_id", "clean_session"),
    *("clean_start", "session_expiry", "will_flag", "will_topic", "will_message", "username"),
    *("password", "remote_address", "remote_port", "ssl_object", "keep_alive", "parent"),
    *("last_connect_time", "last_disconnect_time", "_inflight_out", "is_anonymous"),
)
"""What every session sets (``is_anonymous``: where anonymous logins are allowed, as in the
benchmarks' broker), 23 names."""

share_names(  # every name a session sets (see broker/mqtt/lean.py), 29 at most
    ConnectionState,
    (
        *_EVERY_SESSION,
        *("will_retain", "will_qos", "_inflight_in", "_attributes", "assigned_client_id", "refusal"),
    ),
)
share_names(  # QoS 2 is above an MQTT 5 CONNACK's Maximum QoS: no ``_inflight_in``; the rarer
    ConnectionState5,  # ``_attributes`` and ``refusal`` (a refused login) are left out
    (
        *_EVERY_SESSION,
        *("protocol_level", "will5", "receive_maximum", "max_packet_size", "topic_alias_maximum"),
        "assigned_client_id",
    ),
)
