"""The mqchat client: paho-mqtt I/O and thread safety around the protocol state machine (:mod:`._session`).

Threads: the caller's threads, paho's network thread (``loop_start``; every paho callback runs
there) and one ticker thread that fires the session's timers (gap syncs, sync retries). All
shared state is guarded by one lock; callbacks hold it briefly and never wait on the network.
Events reach the app through a queue read by :meth:`Client.events` and :meth:`Client.messages`.
"""

from __future__ import annotations

import contextlib
import enum
import io
import logging
import os
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from types import TracebackType
from typing import IO, Any, Final, Literal, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from client_sdk._commands import (
    group_create_command,
    group_leave_command,
    group_list_command,
    group_members_command,
    group_rename_command,
    new_command_id,
    push_register_command,
    push_unregister_command,
)
from client_sdk._errors import (
    AuthenticationError,
    ConnectError,
    MqchatError,
    NotConnected,
    PresenceForbidden,
    Timeout,
)
from client_sdk._events import (
    Event,
    Group,
    GroupEvent,
    GroupList,
    Message,
    Ok,
    Presence,
    PresenceRefused,
    Sent,
    parse_sequenced,
)
from client_sdk._media import Media
from client_sdk._outbox import OutgoingMessage
from client_sdk._session import Command, Effects, Session
from client_sdk._statefile import StateFile
from client_sdk._transfer import MediaEndpoint
from client_sdk.contract import (
    DEFAULT_MEDIA_PORT,
    DEFAULT_PREFIX,
    DEFAULT_PRESENCE_PREFIX,
    DEVICE_ID_RE,
    PRESENCE_STATUSES,
    Status,
    Topics,
    decode,
    encode,
    is_valid_user_id,
)

__all__ = ["Client"]

logger = logging.getLogger(__name__)

RECONNECT_MIN_DELAY: Final = 1
"""Seconds before the first reconnection attempt; doubles per failure up to RECONNECT_MAX_DELAY."""
RECONNECT_MAX_DELAY: Final = 5
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
"""Seconds a group call waits for the server's answer by default."""

# CONNACK refusals that mean "these credentials are not accepted" (paho's names of MQTT 3.1.1 codes 4 and 5).
_AUTH_REFUSALS: Final = frozenset({"Bad user name or password", "Not authorized"})
_ACCEPTED: Final = frozenset({MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN})

_A = TypeVar("_A", GroupEvent, GroupList, Ok)


class _State(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class _Closed:
    """Marks the end of the event queue."""


_END: Final = _Closed()


class Client:
    """A chat client of user ``user`` on device ``device`` (MQTT client id ``<user>/<device>``).

    Use it as a context manager (connects on enter, closes on exit) or call :meth:`connect` and
    :meth:`close`. Once connected it reconnects by itself (when ``reconnect``), catches up with
    what it missed (``sync`` from :attr:`cursor`) and resends unanswered messages. A client is
    opened once: make a new one after :meth:`close`.

    ``tls`` is an ``ssl.SSLContext`` or True for the system defaults. ``cursor`` is the inbox
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
        if not is_valid_user_id(user):
            raise ValueError(f"user {user!r} is not a user id (1-64 characters of [A-Za-z0-9_.-])")
        if not isinstance(device, str) or DEVICE_ID_RE.fullmatch(device) is None:
            raise ValueError(f"device {device!r} must be 1-64 characters of [A-Za-z0-9_.-]")
        if transport not in ("tcp", "websockets"):
            raise ValueError(f"transport must be 'tcp' or 'websockets', got {transport!r}")
        if keepalive < 0:
            raise ValueError(f"keepalive must be >= 0 seconds, got {keepalive}")
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout}")
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise ValueError(f"cursor must be an integer >= 0, got {cursor!r}")
        self._host = host
        self._port = port
        self._user = user
        self._token = token
        self._device = device
        self._transport = transport
        self._ws_path = ws_path
        self._tls = tls
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._reconnect = reconnect
        self._topics = Topics(prefix, presence_prefix)
        self._inbox = self._topics.inbox(user)
        self._outbox = self._topics.outbox(user)
        self._state_file = None if state_file is None else StateFile(state_file)
        if self._state_file is not None and cursor == 0:
            cursor = self._state_file.load()
        self._session = Session(user=user, cursor=cursor, auto_delivered=auto_delivered)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._events: queue.Queue[Event | _Closed] = queue.Queue()
        self._state = _State.NEW
        self._mqtt: mqtt.Client | None = None
        self._ticker: threading.Thread | None = None
        self._watched: set[str] = set()
        """Users whose presence is watched: subscribed again on every connect."""
        self._awaiting: set[str] = set()
        """Watched users whose presence subscription has no SUBACK yet."""
        self._refused: set[str] = set()
        """Users the server refused to let this user watch (until watched again)."""
        self._subscribing: dict[int, list[str | None]] = {}
        """SUBSCRIBE message id -> the user of each topic in it (None: the inbox)."""
        self._inbox_subscription: int | None = None
        self._first_connack: ReasonCode | None = None
        self._first_connection_lost = False
        self._media = _media_endpoint(media_url, host=host, user=user, token=token, tls=tls)

    def __repr__(self) -> str:
        return f"Client({self.client_id!r} at {self._host}:{self._port}, {self._state.value})"

    # -- lifecycle -----------------------------------------------------------------------------

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

    def connect(self) -> None:
        """Connect and start the network thread; returns once the server accepted the connection.

        Catching up (the initial sync) goes on in the background: see :meth:`wait_synced`.
        Raises :class:`AuthenticationError` when the credentials are refused, :class:`ConnectError`
        when the server cannot be reached or does not answer within ``connect_timeout``, and
        ``RuntimeError`` when the client is already open or was closed.
        """
        with self._lock:
            if self._state is not _State.NEW:
                raise RuntimeError(f"the client is {self._state.value}; a client is opened only once")
            self._state = _State.CONNECTING
        try:
            self._open()
        except BaseException:
            with self._lock:
                if self._state is _State.CONNECTING:
                    self._state = _State.NEW
            raise
        with self._lock:
            if self._state is not _State.CONNECTING:  # closed by another thread meanwhile
                raise NotConnected("the client was closed while connecting")
            self._state = _State.OPEN
            self._ticker = threading.Thread(
                target=self._tick, name=f"mqchat-ticker {self.client_id}", daemon=True
            )
            self._ticker.start()

    def close(self) -> None:
        """Disconnect and stop the threads. Idempotent.

        Iterators over :meth:`events` end once the queued events are consumed; waits on outgoing
        messages raise :class:`NotConnected`. Messages not yet published are dropped.
        """
        with self._lock:
            if self._state is _State.CLOSED:
                return
            self._state = _State.CLOSED
            client, ticker = self._mqtt, self._ticker
            self._session.on_disconnected()
            self._changed.notify_all()
        if client is not None:
            _stop(client)
        if ticker is not None:
            ticker.join()
        with self._lock:
            self._session.outbox.close()
            self._session.requests.close()
            cursor = self._session.cursor
        self._events.put(_END)
        self._persist(cursor)
        logger.debug("%s closed at cursor %d", self.client_id, cursor)

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
            return self._state is not _State.CLOSED and self._session.connected

    @property
    def cursor(self) -> int:
        """The highest inbox cursor processed in order."""
        with self._lock:
            return self._session.cursor

    def wait_synced(self, *, timeout: float | None = None) -> None:
        """Block until the catch-up after the latest connect reached the end of the inbox.

        Raises :class:`Timeout` after ``timeout`` seconds (None: no limit), :class:`NotConnected`
        when the client is not open or gets closed.
        """
        with self._changed:
            self._require_open()
            if not self._changed.wait_for(
                lambda: self._session.synced or self._state is _State.CLOSED, timeout
            ):
                raise Timeout(f"{self.client_id} did not finish syncing within {timeout} s")
            self._require_open()

    # -- messages ---------------------------------------------------------------------------------

    def send(self, to: str, text: str, *, id: str | None = None) -> OutgoingMessage:
        """Send ``text`` to user or group ``to`` (a group id is ``g:...``); returns at once with a
        handle to :meth:`~OutgoingMessage.wait` on.

        ``id`` is the command id (default: a random one); reusing the id of a stored message
        makes the server answer ``sent`` again without storing it twice. While disconnected the
        message waits in the outbox and goes out after the next connect. For a group message the
        handle's status is that of every member; :attr:`OutgoingMessage.receipts` shows each one's.
        """
        with self._lock:
            self._require_open()
            outgoing, effects = self._session.send(to=to, text=text, id=id)
            self._apply(effects)
        return outgoing

    # -- media ------------------------------------------------------------------------------------

    def send_media(
        self,
        to: str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        caption: str = "",
        id: str | None = None,
    ) -> OutgoingMessage:
        """Send an image or video (a path, or a binary file object read from where it stands) to
        user or group ``to``, with an optional ``caption``; returns once it is uploaded, with the
        same handle as :meth:`send` (sent, then the receipts).

        The server sniffs the type from the content (the file's name means nothing to it), checks
        and processes the file (images lose their metadata and get a thumbnail), then stores and
        delivers the message. The upload streams the file over HTTP; it needs no MQTT connection.

        Raises :class:`CommandRejected` when the server refuses the upload (code ``too_large``,
        ``unsupported_media``, ``unknown_user``, ``unknown_group``, ``not_member``,
        ``unauthorized``...), :class:`ConnectError` when the media endpoint cannot be reached.
        A file refused while it is processed (code ``bad_media``: damaged, truncated, a
        decompression bomb) makes :meth:`OutgoingMessage.wait` raise :class:`CommandRejected`.
        """
        command_id = new_command_id() if id is None else id
        outgoing = OutgoingMessage(id=command_id, to=to, text=caption)
        with self._lock:
            self._require_open()
            self._session.outbox.expect(outgoing)
        try:
            answer = self._media.upload(to=to, id=command_id, caption=caption, file=file)
        except BaseException:
            with self._lock:
                self._session.outbox.forget(command_id)
            raise
        if answer.sent is not None:  # stored before under this id: nothing new is processed
            sent = parse_sequenced(answer.sent)
            if isinstance(sent, Sent):
                with self._lock:
                    self._session.outbox.resolve(command_id, sent.message)
        return outgoing

    def download(self, media: Message | Media, *, thumbnail: bool = False) -> bytes:
        """The bytes of the image or video of a message (or of a :class:`Media`), or of its thumbnail.

        Raises :class:`CommandRejected` (code ``not_found`` when this user may not see it,
        ``forbidden`` when a link expired), :class:`ConnectError` when the server cannot be
        reached, ``ValueError`` for a message without media or a media without thumbnail.
        """
        buffer = io.BytesIO()
        self._media.download(_media_key(media, thumbnail=thumbnail), buffer)
        return buffer.getvalue()

    def download_to(
        self, path: str | os.PathLike[str], media: Message | Media, *, thumbnail: bool = False
    ) -> int:
        """Like :meth:`download`, streamed into the file ``path`` (complete, or not there at all);
        returns the number of bytes written."""
        key = _media_key(media, thumbnail=thumbnail)
        target = os.fspath(path)
        partial_path = f"{target}.part"
        try:
            with open(partial_path, "wb") as file:
                size = self._media.download(key, file)
            os.replace(partial_path, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial_path)
            raise
        return size

    def mark_read(self, messages: Message | str | Iterable[Message | str]) -> None:
        """Tell the senders these messages (events or message ids) were read.

        While disconnected the receipts are queued and published after the reconnect.
        """
        if isinstance(messages, Message | str):
            messages = [messages]
        ids = [item.id if isinstance(item, Message) else item for item in messages]
        with self._lock:
            self._require_open()
            self._apply(self._session.receipts(ids, status=Status.READ))

    def typing(self, to: str, *, composing: bool = True) -> None:
        """Show user ``to`` that this user is typing (``composing=False``: stopped typing).

        Typing is live only, so it raises :class:`NotConnected` while there is no connection.
        """
        with self._lock:
            self._require_open()
            if not self._session.connected:
                raise NotConnected(f"{self.client_id} is not connected right now")
            self._apply(self._session.typing(to=to, composing=composing))

    def events(self, *, timeout: float | None = None) -> Iterator[Event]:
        """Every event, in order of arrival; ends after ``timeout`` seconds without one (None: never),
        or when the client is closed and the queue is empty.

        :meth:`events` and :meth:`messages` consume the same queue; events wait there until read.
        """
        while (event := self._next(timeout)) is not None:
            yield event

    def messages(self, *, timeout: float | None = None) -> Iterator[Message]:
        """The incoming messages (other events are consumed and skipped); ends after ``timeout``
        seconds without a message (None: never), or when the client is closed and the queue is empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self._next(remaining)
            if event is None:
                return
            if isinstance(event, Message):
                yield event
                deadline = None if timeout is None else time.monotonic() + timeout

    # -- groups --------------------------------------------------------------------------------------
    #
    # Each call publishes its command and blocks until the server answers it: the group event with
    # ref = the command id (the group after the change), or an error. They need a live connection
    # (NotConnected otherwise: they are not queued) and raise CommandRejected (code unknown_group,
    # not_member, not_admin, group_full, ...), Timeout after ``timeout`` seconds (None: no limit),
    # or NotConnected when the client is closed meanwhile. Bad arguments raise ValueError.

    def create_group(
        self, name: str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Create a group called ``name`` with ``members`` (user ids) and this user as its admin."""
        event = self._request(
            lambda id: group_create_command(id=id, name=name, members=members), GroupEvent, timeout
        )
        return event.group

    def add_members(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Add ``members`` to ``group`` (a Group or its id); only admins may."""
        return self._change_members("group_add", group, members, timeout)

    def remove_members(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Remove ``members`` from ``group``; only admins may."""
        return self._change_members("group_remove", group, members, timeout)

    def promote(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Make ``members`` admins of ``group``; only admins may."""
        return self._change_members("group_promote", group, members, timeout)

    def rename_group(
        self, group: Group | str, name: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Rename ``group``; only admins may."""
        group_id = _group_id(group)
        event = self._request(
            lambda id: group_rename_command(id=id, group=group_id, name=name), GroupEvent, timeout
        )
        return event.group

    def leave_group(self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> Group:
        """Leave ``group``; returns the group as it is afterwards (without this user)."""
        group_id = _group_id(group)
        event = self._request(lambda id: group_leave_command(id=id, group=group_id), GroupEvent, timeout)
        return event.group

    def groups(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> list[Group]:
        """The groups this user is a member of, as the server knows them now."""
        answer = self._request(lambda id: group_list_command(id=id), GroupList, timeout)
        return list(answer.groups)

    def register_push(
        self,
        token: str,
        platform: str,
        *,
        preview: bool = True,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """Register this device's push token (FCM registration token; ``platform`` android, ios or web).

        While no device of this user is connected, messages are announced by a push to every
        registered token, one per burst. ``preview=False`` keeps the sender and text out of it.
        """
        build = partial(push_register_command, token=token, platform=platform, preview=preview)
        self._request(lambda id: build(id=id), Ok, timeout)

    def unregister_push(self, token: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Stop pushes to ``token`` (e.g. at logout)."""
        self._request(lambda id: push_unregister_command(id=id, token=token), Ok, timeout)

    def group(self, group_id: str) -> Group | None:
        """The group as last seen in a group event or :meth:`groups` answer (None: never seen).

        No round trip: group events arrive by themselves (live or by sync), and every member gets
        them. A group this user left or was removed from stays as it was right after that.
        """
        with self._lock:
            return self._session.group(group_id)

    # -- presence ----------------------------------------------------------------------------------

    def watch_presence(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Follow ``user``'s presence (:meth:`presence`, :meth:`wait_presence`, and Presence events).

        While connected, waits for the server's answer: raises :class:`PresenceForbidden` when it
        refuses (by default a server shows presence to contacts only: see the error), and
        :class:`Timeout` when no answer comes within ``timeout`` seconds. Offline, it returns at
        once and the subscription is made on connect; a refusal then arrives as a
        :class:`PresenceRefused` event (so does one after a reconnect). A refused user is no longer
        watched: call this again once it may be (after the first message, say).
        """
        if not is_valid_user_id(user):
            raise ValueError(f"user {user!r} is not a user id")
        with self._changed:
            if self._state is _State.CLOSED:
                raise NotConnected("the client is closed")
            if user not in self._watched:
                self._watched.add(user)
                self._refused.discard(user)
                if self._mqtt is not None and self._session.connected:
                    self._subscribe(self._mqtt, [user])
            closed = self._closed
            if not self._changed.wait_for(lambda: user not in self._awaiting or closed(), timeout):
                raise Timeout(f"the server did not answer the presence subscription to {user} in {timeout} s")
            if closed():
                raise NotConnected("the client was closed")
            if user in self._refused:
                raise PresenceForbidden(user)

    def presence(self, user: str) -> Presence | None:
        """The latest known presence of a watched user (None until it arrives)."""
        with self._lock:
            return self._session.presence(user)

    def wait_presence(self, user: str, status: str = "online", *, timeout: float | None = None) -> Presence:
        """Block until ``user``'s presence is ``status`` (``"online"`` or ``"offline"``); watches the user.

        Raises :class:`Timeout` after ``timeout`` seconds (None: no limit), :class:`NotConnected`
        when the client gets closed.
        """
        if status not in PRESENCE_STATUSES:
            raise ValueError(f"status must be one of {sorted(PRESENCE_STATUSES)}, got {status!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        self.watch_presence(user, timeout=timeout)

        def reached() -> bool:
            presence = self._session.presence(user)
            return presence is not None and presence.status == status

        with self._changed:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._changed.wait_for(
                lambda: reached() or user in self._refused or self._state is _State.CLOSED, left
            ):
                raise Timeout(f"{user} was not {status} within {timeout} s")
            if user in self._refused and not reached():
                raise PresenceForbidden(user)
            if not reached():
                raise NotConnected("the client was closed")
            presence = self._session.presence(user)
            assert presence is not None  # reached() checked it
            return presence

    # -- testing aid ---------------------------------------------------------------------------------

    def publish_raw(self, payload: bytes | bytearray, *, qos: int = 1, timeout: float = 10.0) -> None:
        """Publish ``payload`` as is on this user's outbox topic (to test how the server takes bad input).

        With QoS 1 or 2 returns once the server acknowledged it. Raises :class:`NotConnected`
        without a connection, :class:`Timeout` when the acknowledgement does not come in time.
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
        with self._lock:
            self._require_open()
            if self._mqtt is None or not self._session.connected:
                raise NotConnected(f"{self.client_id} is not connected right now")
            info = self._mqtt.publish(self._outbox, bytes(payload), qos=qos)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            raise NotConnected(f"{self.client_id} is not connected right now")
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqchatError(f"publishing failed: {mqtt.error_string(info.rc)}")
        if qos == 0:
            return
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise MqchatError(f"publishing failed: {exc}") from exc
        if not info.is_published():
            raise Timeout(f"the server did not acknowledge the publish within {timeout} s")

    # -- internals: connection ------------------------------------------------------------------------

    def _open(self) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
            transport=self._transport,
            reconnect_on_failure=self._reconnect,
        )
        client.username_pw_set(self._user, self._token)
        if self._transport == "websockets":
            client.ws_set_options(path=self._ws_path)
        if self._tls is not False:
            client.tls_set_context(ssl.create_default_context() if self._tls is True else self._tls)
        client.reconnect_delay_set(min_delay=RECONNECT_MIN_DELAY, max_delay=RECONNECT_MAX_DELAY)
        client.connect_timeout = self._connect_timeout
        client.suppress_exceptions = True  # second line of defence: the callbacks catch everything already
        client.on_log = _log_paho
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        with self._lock:
            self._mqtt = client
            self._first_connack = None
            self._first_connection_lost = False
        deadline = time.monotonic() + self._connect_timeout
        where = f"{self._host}:{self._port}"
        try:
            client.connect(self._host, self._port, keepalive=self._keepalive)
        except OSError as exc:  # socket, TLS and WebSocket handshake errors are all OSErrors
            raise ConnectError(f"cannot connect to {where}: {exc}") from exc
        client.loop_start()
        with self._changed:
            self._changed.wait_for(
                lambda: self._first_connack is not None or self._first_connection_lost,
                max(0.0, deadline - time.monotonic()),
            )
            connack = self._first_connack
        if connack is not None and not connack.is_failure:
            logger.info("%s connected to %s", self.client_id, where)
            return
        _stop(client)
        if connack is None:
            raise ConnectError(f"{where} did not accept the connection within {self._connect_timeout} s")
        if str(connack) in _AUTH_REFUSALS:
            raise AuthenticationError(f"{where} refused {self._user!r}: {connack}")
        raise ConnectError(f"{where} refused the connection: {connack}")

    def _change_members(
        self, kind: str, group: Group | str, members: Iterable[str], timeout: float | None
    ) -> Group:
        group_id = _group_id(group)
        event = self._request(
            lambda id: group_members_command(kind=kind, id=id, group=group_id, members=members),
            GroupEvent,
            timeout,
        )
        return event.group

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

    def _subscribe(self, client: mqtt.Client, users: list[str | None]) -> int | None:
        """Subscribe the inbox (None) and the presence of ``users``; their SUBACK is awaited (lock held)."""
        topics = [(self._inbox if user is None else self._topics.presence(user), 1) for user in users]
        result, mid = client.subscribe(topics)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            return None  # not connected after all: subscribed again on connect
        self._subscribing[mid] = users
        self._awaiting.update(user for user in users if user is not None)
        return mid

    def _closed(self) -> bool:
        return self._state is _State.CLOSED

    def _require_open(self) -> None:
        if self._state is not _State.OPEN:
            raise NotConnected(f"the client is {self._state.value}")

    def _tick(self) -> None:
        """Ticker thread: run the session's timers (gap syncs, sync retries) when they are due."""
        with self._changed:
            while self._state is not _State.CLOSED:
                due = self._session.next_tick()
                now = time.monotonic()
                if due is None or due > now:
                    self._changed.wait(None if due is None else due - now)
                    continue
                try:
                    self._apply(self._session.on_tick(now=now))
                except Exception:
                    logger.exception("%s: a timer failed", self.client_id)
                    self._changed.wait(1.0)

    def _apply(self, effects: Effects) -> None:
        """Carry out what the session asked for (the lock is held)."""
        for command in effects.commands:
            self._publish(command)
        for event in effects.events:
            self._events.put(event)
        self._changed.notify_all()

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

    def _persist(self, cursor: int) -> None:
        if self._state_file is None:
            return
        try:
            self._state_file.save(cursor)
        except OSError:
            logger.exception("%s: cannot save the cursor to %s", self.client_id, self._state_file.path)

    def _next(self, timeout: float | None) -> Event | None:
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(event, _Closed):
            self._events.put(event)  # let every other iterator end too
            return None
        return event

    # -- internals: paho callbacks (paho's network thread) ------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            with self._lock:
                if client is not self._mqtt or self._state is _State.CLOSED:
                    return
                if self._state is _State.CONNECTING:
                    self._first_connack = reason_code
                self._changed.notify_all()
                if reason_code.is_failure:
                    if self._state is _State.OPEN:
                        logger.warning(
                            "%s: the server refused the reconnection: %s", self.client_id, reason_code
                        )
                    return
                self._session.on_connected()
                self._inbox_subscription = self._subscribe(client, [None, *sorted(self._watched)])
        except Exception:
            logger.exception("%s: error while handling the connection", self.client_id)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        try:
            with self._lock:
                if client is not self._mqtt or self._state is _State.CLOSED:
                    return
                topics = self._subscribing.pop(mid, [])
                inbox_refused = False
                for user, code in zip(topics, reason_codes, strict=False):
                    if user is None:
                        inbox_refused = code.is_failure
                        continue
                    self._awaiting.discard(user)
                    if code.is_failure and user in self._watched:
                        logger.info("%s: the server refused to show the presence of %s", self.client_id, user)
                        self._watched.discard(user)
                        self._refused.add(user)
                        self._events.put(PresenceRefused(user=user))
                self._changed.notify_all()
                if mid != self._inbox_subscription:
                    return
                self._inbox_subscription = None
                if inbox_refused:
                    logger.error("%s: the server refused the subscription to %s", self.client_id, self._inbox)
                    return
                self._apply(self._session.on_subscribed(now=time.monotonic()))
        except Exception:
            logger.exception("%s: error while handling a subscription", self.client_id)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            with self._lock:
                if client is not self._mqtt:
                    return
                if self._state is _State.CONNECTING and self._first_connack is None:
                    self._first_connection_lost = True
                was_connected = self._session.connected
                self._session.on_disconnected()
                # a SUBSCRIBE without SUBACK is lost with the connection: made again on connect
                self._subscribing.clear()
                self._awaiting.clear()
                self._changed.notify_all()
                if was_connected and self._state is _State.OPEN:
                    logger.warning(
                        "%s: disconnected (%s)%s",
                        self.client_id,
                        reason_code,
                        "; reconnecting" if self._reconnect else "",
                    )
        except Exception:
            logger.exception("%s: error while handling the disconnection", self.client_id)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
            if not message.payload:
                logger.debug("%s: ignoring an empty payload on %s", self.client_id, topic)
                return
            try:
                payload = decode(message.payload)
            except ValueError as exc:
                logger.warning(
                    "%s: ignoring a payload on %s that is not JSON: %s", self.client_id, topic, exc
                )
                return
            presence_of = None if topic == self._inbox else self._topics.user_of_presence(topic)
            with self._lock:
                if client is not self._mqtt or self._state is _State.CLOSED:
                    return
                if topic == self._inbox:
                    effects = self._session.on_inbox(payload, now=time.monotonic())
                elif presence_of is not None:
                    effects = self._session.on_presence(presence_of, payload)
                else:
                    logger.debug("%s: ignoring a message on unexpected topic %s", self.client_id, topic)
                    return
                self._apply(effects)
                cursor = self._session.cursor
            if effects.cursor_advanced:
                self._persist(cursor)
        except Exception:
            logger.exception("%s: error while handling a message", self.client_id)


_paho_logger = logging.getLogger(f"{__name__}.paho")


def _log_paho(client: mqtt.Client, userdata: Any, level: int, message: str) -> None:
    """paho's own log, at DEBUG (it reports ordinary disconnections as errors; the SDK logs what matters)."""
    _paho_logger.debug("%s", message)


def _media_endpoint(
    media_url: str | None, *, host: str, user: str, token: str, tls: ssl.SSLContext | bool
) -> MediaEndpoint:
    context: ssl.SSLContext | None = None
    if isinstance(tls, ssl.SSLContext):
        context = tls
    elif tls:
        context = ssl.create_default_context()
    if media_url is None:
        where = f"[{host}]" if ":" in host else host
        media_url = f"{'https' if context is not None else 'http'}://{where}:{DEFAULT_MEDIA_PORT}"
    if not media_url.startswith(("http://", "https://")):
        raise ValueError(f"media_url must be an http:// or https:// URL, got {media_url!r}")
    return MediaEndpoint(media_url, user=user, token=token, tls=context)


def _media_key(media: Message | Media, *, thumbnail: bool) -> str:
    found = media.media if isinstance(media, Message) else media
    if found is None:
        raise ValueError("this message has no image or video")
    if thumbnail:
        if found.thumbnail is None:
            raise ValueError("this media has no thumbnail")
        found = found.thumbnail
    return found.key


def _group_id(group: Group | str) -> str:
    return group.id if isinstance(group, Group) else group


def _stop(client: mqtt.Client) -> None:
    """Disconnect and stop paho's network thread.

    Never call it with the client's lock held: the network thread may be waiting for that lock.
    """
    try:
        client.disconnect()
    except Exception:  # best effort while shutting down
        logger.debug("disconnect failed while stopping", exc_info=True)
    client.loop_stop()
