"""The public :class:`Client`: its settings, assembled from one part per concern.

The parts are mixins on :class:`~client_sdk._base.ClientBase` (shared state, lock, effects over
paho): :mod:`._connection` (lifecycle and paho's callbacks), :mod:`._messaging`,
:mod:`._reply_calls`, :mod:`._media_calls`, :mod:`._group_calls`, :mod:`._push_calls` and
:mod:`._presence_calls`.
The protocol itself is the I/O-free :class:`~client_sdk._session.Session`.
"""

from __future__ import annotations

import os
import queue
import ssl
import threading
from types import TracebackType
from typing import Literal

from client_sdk._base import State
from client_sdk._block_calls import BlockCalls
from client_sdk._change_calls import ChangeCalls
from client_sdk._chat_calls import ChatCalls
from client_sdk._connection import Connection
from client_sdk._device_calls import DeviceCalls
from client_sdk._group_calls import GroupCalls
from client_sdk._group_settings_calls import GroupSettingsCalls
from client_sdk._history_calls import HistoryCalls
from client_sdk._media_calls import MediaCalls, media_endpoint
from client_sdk._messaging import Messaging
from client_sdk._presence_calls import PresenceCalls
from client_sdk._privacy_calls import PrivacyCalls
from client_sdk._profile_calls import ProfileCalls
from client_sdk._push_calls import PushCalls
from client_sdk._reaction_calls import ReactionCalls
from client_sdk._reply_calls import ReplyCalls
from client_sdk._search_calls import SearchCalls
from client_sdk._session import Session
from client_sdk._settings import MqttVersion, check_settings, initial_cursor
from client_sdk._timer_calls import TimerCalls
from client_sdk.contract import DEFAULT_PREFIX, DEFAULT_PRESENCE_PREFIX, Topics

__all__ = ["Client"]


class Client(
    Connection,
    Messaging,
    ChangeCalls,
    ReplyCalls,
    MediaCalls,
    GroupCalls,
    PushCalls,
    PresenceCalls,
    ProfileCalls,
    PrivacyCalls,
    DeviceCalls,
    ReactionCalls,
    GroupSettingsCalls,
    TimerCalls,
    ChatCalls,
    HistoryCalls,
    BlockCalls,
    SearchCalls,
):
    """A chat client of user ``user`` on device ``device`` (MQTT client id ``<user>/<device>``).

    Use it as a context manager (connects on enter, closes on exit) or call :meth:`connect` and
    :meth:`close`. Once connected it reconnects by itself (when ``reconnect``), catches up with
    what it missed (``sync`` from :attr:`cursor`) and resends unanswered messages. A client is
    opened once: make a new one after :meth:`close`.

    ``tls`` is an ``ssl.SSLContext`` or True for the system defaults. ``mqtt_version`` is the MQTT
    version spoken: ``"3.1.1"`` (the default, every mqchat server) or ``"5"`` (a server that speaks
    MQTT 5 then also says why it refused a message in its PUBACK, logged here). ``cursor`` is the inbox
    position to resume after; with ``state_file`` (and ``cursor`` 0) it is read from that file,
    which is then kept up to date so a restarted app resumes without duplicates.
    ``auto_delivered`` sends the ``delivered`` receipt of every message from another user.
    ``media_url`` is the server's media endpoint for images and videos (default: ``http://`` or,
    with ``tls``, ``https://`` on ``host`` port 8090).
    Raises ``ValueError`` for a bad setting or an unreadable ``state_file``.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 1883,
        *,
        user: str,
        token: str,
        device: str = "default",
        transport: Literal["tcp", "websockets"] = "tcp",
        ws_path: str = "/",
        mqtt_version: MqttVersion = "3.1.1",
        tls: ssl.SSLContext | bool = False,
        prefix: str = DEFAULT_PREFIX,
        presence_prefix: str = DEFAULT_PRESENCE_PREFIX,
        keepalive: int = 30,
        cursor: int = 0,
        state_file: str | os.PathLike[str] | None = None,
        auto_delivered: bool = True,
        connect_timeout: float = 10.0,
        reconnect: bool = True,
        media_url: str | None = None,
    ) -> None:
        check_settings(
            port=port,
            user=user,
            device=device,
            transport=transport,
            mqtt_version=mqtt_version,
            keepalive=keepalive,
            connect_timeout=connect_timeout,
            cursor=cursor,
        )
        self._host = host
        self._port = port
        self._user = user
        self._token = token
        self._device = device
        self._transport = transport
        self._ws_path = ws_path
        self._mqtt_version = mqtt_version
        self._tls = tls
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._reconnect = reconnect
        self._topics = Topics(prefix, presence_prefix)
        self._inbox = self._topics.inbox(user)
        self._outbox = self._topics.outbox(user)
        self._state_file, cursor = initial_cursor(state_file, cursor)
        self._session = Session(user=user, cursor=cursor, auto_delivered=auto_delivered)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._events = queue.Queue()
        self._state = State.NEW
        self._mqtt = None
        self._ticker = None
        self._first_connack = None
        self._first_connection_lost = False
        self._media = media_endpoint(media_url, host=host, user=user, token=token, tls=tls)

    def __repr__(self) -> str:
        return f"Client({self.client_id!r} at {self._host}:{self._port}, {self._state.value})"

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
