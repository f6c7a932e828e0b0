"""The public asyncio :class:`Client`: its settings, and the calls an app makes.

The calls mirror the blocking :class:`client_sdk.Client` one for one, with ``await`` where that one
blocks; what they ask of the protocol is the same :class:`~client_sdk._session.Session` call, and
the connection underneath is :mod:`._connection`.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from types import TracebackType
from typing import IO, Any, Literal, TypeVar

from client_sdk import _outbox
from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, Closed, State
from client_sdk._commands import (
    block_command,
    blocks_command,
    chat_list_command,
    delete_command,
    devices_command,
    edit_command,
    group_create_command,
    group_leave_command,
    group_list_command,
    group_members_command,
    group_rename_command,
    history_command,
    mark_read_command,
    new_command_id,
    profile_get_command,
    profile_set_command,
    push_register_command,
    push_unregister_command,
    react_command,
    report_command,
    search_command,
    timer_get_command,
    timer_set_command,
    unblock_command,
)
from client_sdk._errors import CommandRejected, MqchatError, NotConnected, PresenceForbidden, Timeout
from client_sdk._events import (
    BlockList,
    ChatPage,
    Device,
    DeviceList,
    Event,
    Group,
    GroupEvent,
    GroupList,
    HistoryPage,
    Message,
    Ok,
    Presence,
    PrivacyAnswer,
    Profile,
    ProfileChanged,
    ProfileList,
    SearchResults,
    SyncReset,
    TimerInfo,
)
from client_sdk._history_calls import MAX_CHAT_PAGE, REBUILD_CHAT_PAGES, REBUILD_LIMIT
from client_sdk._media import Media
from client_sdk._media_calls import (
    document_name,
    download_file,
    media_endpoint,
    media_key,
    readable,
    settle_upload,
)
from client_sdk._pending import A as _A
from client_sdk._privacy import (
    GroupInvitation,
    PrivacyChanged,
    PrivacySettings,
    group_invite_command,
    privacy_get_command,
    privacy_set_command,
)
from client_sdk._reply_calls import reply_args
from client_sdk._session import Session
from client_sdk._settings import MqttVersion, check_settings, initial_cursor
from client_sdk.aio._changes import Changes
from client_sdk.aio._connection import Connection
from client_sdk.aio._group_settings import AsyncGroupSettings
from client_sdk.aio._outgoing import OutgoingMessage
from client_sdk.contract import (
    DEFAULT_PREFIX,
    DEFAULT_PRESENCE_PREFIX,
    PRESENCE_STATUSES,
    Status,
    Topics,
    is_valid_user_id,
)

__all__ = ["Client"]

_T = TypeVar("_T")


class Client(Connection, AsyncGroupSettings):
    """An asyncio chat client of user ``user`` on device ``device`` (MQTT client id ``<user>/<device>``).

    ``async with Client(...) as chat:`` connects on enter and closes on exit (or await
    :meth:`connect` and :meth:`close`). Once connected it reconnects by itself (when ``reconnect``),
    catches up with what it missed (``sync`` from :attr:`cursor`) and resends unanswered messages.
    A client is opened once: make a new one after :meth:`close`. Use it from one event loop.

    The settings are those of :class:`client_sdk.Client`: ``tls`` is an ``ssl.SSLContext`` or True
    for the system defaults; ``mqtt_version`` is ``"3.1.1"`` (the default) or ``"5"``; ``cursor``
    is the inbox position to resume after, with ``state_file`` (and ``cursor`` 0) read from that
    file, which is then kept up to date; ``auto_delivered`` sends the ``delivered`` receipt of every
    message from another user; ``media_url`` is the server's media endpoint (default: ``http://``
    or, with ``tls``, ``https://`` on ``host`` port 8090).
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
        self._media = media_endpoint(media_url, host=host, user=user, token=token, tls=tls)
        self._changes = Changes()
        self._events = asyncio.Queue()
        self._state = State.NEW
        self._mqtt = None
        self._runner = None
        self._ticker = None
        self._io = set()
        self._subscribe_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"aio.Client({self.client_id!r} at {self._host}:{self._port}, {self._state.value})"

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- messages ---------------------------------------------------------------------------------

    async def send(self, to: str, text: str, *, id: str | None = None) -> OutgoingMessage:
        """Send ``text`` to user or group ``to`` (a group id is ``g:...``); returns at once with a
        handle to ``await`` :meth:`~OutgoingMessage.wait` on.

        As :meth:`client_sdk.Client.send`: ``id`` is the command id (reusing a stored one makes the
        server answer ``sent`` again without storing it twice); while disconnected the message
        waits in the outbox and goes out after the next connect.
        """
        self._require_open()
        outgoing, effects = self._session.send(to=to, text=text, id=id, now=time.monotonic())
        self._apply(effects)
        return OutgoingMessage(outgoing, self._changes)

    async def mark_read(self, messages: Message | str | Iterable[Message | str]) -> None:
        """Tell the senders these messages (events or message ids) were read (queued while disconnected)."""
        if isinstance(messages, Message | str):
            messages = [messages]
        ids = [item.id if isinstance(item, Message) else item for item in messages]
        self._require_open()
        self._apply(self._session.receipts(ids, status=Status.READ, now=time.monotonic()))

    async def typing(self, to: str, *, composing: bool = True) -> None:
        """Show user ``to`` that this user is typing (``composing=False``: stopped typing).

        Typing is live only, so it raises :class:`NotConnected` while there is no connection.
        """
        self._require_open()
        if not self._session.connected:
            raise NotConnected(f"{self.client_id} is not connected right now")
        self._apply(self._session.typing(to=to, composing=composing))

    # -- changes to sent messages (see client_sdk._change_calls) ------------------------------------

    async def edit(
        self, message: Message | str, text: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """As :meth:`client_sdk.Client.edit`: replace the text (caption) of a message this user sent."""
        message_id = message.id if isinstance(message, Message) else message
        await self._request(lambda id: edit_command(id=id, message_id=message_id, text=text), Ok, timeout)

    async def delete(
        self,
        message: Message | str,
        *,
        everyone: bool = True,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """As :meth:`client_sdk.Client.delete`: for everyone, or (``everyone=False``) for me."""
        message_id = message.id if isinstance(message, Message) else message
        await self._request(
            lambda id: delete_command(id=id, message_id=message_id, everyone=everyone), Ok, timeout
        )

    # -- replies and forwards (see client_sdk._reply_calls) -------------------------------------------

    async def reply(
        self, message: Message | str, text: str, *, to: str | None = None, id: str | None = None
    ) -> OutgoingMessage:
        """Send ``text`` as a reply to ``message`` (a :class:`Message`, or a message id with ``to``);
        as :meth:`client_sdk.Client.reply`."""
        self._require_open()
        reply_to, target = reply_args(message, to, self.user)
        outgoing, effects = self._session.send(
            to=target, text=text, id=id, now=time.monotonic(), reply_to=reply_to
        )
        self._apply(effects)
        return OutgoingMessage(outgoing, self._changes)

    async def forward(self, message: Message | str, to: str, *, id: str | None = None) -> OutgoingMessage:
        """Send ``message`` (a :class:`Message` or its id) on to user or group ``to``; as
        :meth:`client_sdk.Client.forward`."""
        self._require_open()
        message_id = message.id if isinstance(message, Message) else message
        outgoing, effects = self._session.forward(message=message_id, to=to, id=id, now=time.monotonic())
        self._apply(effects)
        return OutgoingMessage(outgoing, self._changes)

    def events(self, *, timeout: float | None = None) -> AsyncIterator[Event]:
        """Every event, in order of arrival (``async for``); ends after ``timeout`` seconds without
        one (None: never), or when the client is closed and the queue is empty.

        :meth:`events` and :meth:`messages` consume the same queue; events wait there until read.
        """
        return _Stream(self._events, _any_event, timeout, self._rebuild)

    def messages(self, *, timeout: float | None = None) -> AsyncIterator[Message]:
        """The incoming messages (other events are consumed and skipped); ends after ``timeout``
        seconds without a message (None: never), or when the client is closed and the queue is empty."""
        return _Stream(self._events, _message, timeout, self._rebuild)

    # -- media -----------------------------------------------------------------------------------------

    async def send_media(
        self,
        to: str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        caption: str = "",
        id: str | None = None,
        reply_to: Message | str | None = None,
    ) -> OutgoingMessage:
        """Send an image or video (a path, or a binary file object read from where it stands) to
        user or group ``to``; returns once it is uploaded, with the same handle as :meth:`send`.

        As :meth:`client_sdk.Client.send_media`, whose HTTP code it shares: the upload runs on a
        worker thread (``asyncio.to_thread``), so cancelling the await does not stop an upload
        already under way. Raises :class:`CommandRejected` when the server refuses the upload,
        :class:`ConnectError` when the media endpoint cannot be reached. ``reply_to``: as
        :meth:`client_sdk.Client.send_media`.
        """
        return await self._upload_message(to, file, caption=caption, id=id, reply_to=reply_to)

    async def send_voice(
        self,
        to: str,
        file: str | os.PathLike[str] | bytes | IO[bytes],
        *,
        caption: str | None = None,
        id: str | None = None,
        reply_to: Message | str | None = None,
    ) -> OutgoingMessage:
        """Send a voice note (a path, the bytes, or a binary file object); as
        :meth:`client_sdk.Client.send_voice`."""
        return await self._upload_message(
            to, readable(file), caption=caption or "", id=id, kind="voice", reply_to=reply_to
        )

    async def send_document(
        self,
        to: str,
        file: str | os.PathLike[str] | bytes | IO[bytes],
        *,
        name: str | None = None,
        caption: str | None = None,
        id: str | None = None,
        reply_to: Message | str | None = None,
    ) -> OutgoingMessage:
        """Send any file as a document named ``name`` (default: the path's file name); as
        :meth:`client_sdk.Client.send_document`."""
        return await self._upload_message(
            to,
            readable(file),
            caption=caption or "",
            id=id,
            kind="document",
            name=document_name(file, name),
            reply_to=reply_to,
        )

    async def _upload_message(
        self,
        to: str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        caption: str,
        id: str | None,
        kind: str | None = None,
        name: str | None = None,
        reply_to: Message | str | None = None,
    ) -> OutgoingMessage:
        quoted = reply_to.id if isinstance(reply_to, Message) else reply_to
        command_id = new_command_id() if id is None else id
        outgoing = _outbox.OutgoingMessage(id=command_id, to=to, text=caption)
        self._require_open()
        self._session.outbox.expect(outgoing)
        try:
            answer = await asyncio.to_thread(
                self._media.upload,
                to=to,
                id=command_id,
                caption=caption,
                file=file,
                kind=kind,
                name=name,
                reply_to=quoted,
            )
        except BaseException:
            self._session.outbox.forget(command_id)
            raise
        settle_upload(self._session.outbox, answer)
        self._changes.notify()
        return OutgoingMessage(outgoing, self._changes)

    async def download(self, media: Message | Media, *, thumbnail: bool = False) -> bytes:
        """The bytes of the image or video of a message (or of a :class:`Media`), or of its thumbnail.

        Raises :class:`CommandRejected` (``not_found``, ``forbidden``), :class:`ConnectError`, or
        ``ValueError`` for a message without media or a media without thumbnail.
        """
        key = media_key(media, thumbnail=thumbnail)
        buffer = io.BytesIO()
        await asyncio.to_thread(self._media.download, key, buffer)
        return buffer.getvalue()

    async def download_to(
        self, path: str | os.PathLike[str], media: Message | Media, *, thumbnail: bool = False
    ) -> int:
        """Like :meth:`download`, streamed into the file ``path`` (complete, or not there at all);
        returns the number of bytes written."""
        key = media_key(media, thumbnail=thumbnail)
        return await asyncio.to_thread(download_file, self._media, key, path)

    # -- groups ------------------------------------------------------------------------------------------

    async def create_group(
        self, name: str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Create a group called ``name`` with ``members`` (user ids) and this user as its admin.

        Like every group call: needs a live connection (:class:`NotConnected`), raises
        :class:`CommandRejected` when the server refuses, :class:`Timeout` after ``timeout`` seconds.
        """
        event = await self._request(
            lambda id: group_create_command(id=id, name=name, members=members), GroupEvent, timeout
        )
        return event.group

    async def add_members(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Add ``members`` to ``group`` (a Group or its id); only admins may."""
        return await self._change_members("group_add", group, members, timeout)

    async def remove_members(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Remove ``members`` from ``group``; only admins may."""
        return await self._change_members("group_remove", group, members, timeout)

    async def promote(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Make ``members`` admins of ``group``; only admins may."""
        return await self._change_members("group_promote", group, members, timeout)

    async def rename_group(
        self, group: Group | str, name: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Rename ``group``; only admins may."""
        group_id = _group_id(group)
        event = await self._request(
            lambda id: group_rename_command(id=id, group=group_id, name=name), GroupEvent, timeout
        )
        return event.group

    async def leave_group(
        self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Leave ``group``; returns the group as it is afterwards (without this user)."""
        group_id = _group_id(group)
        event = await self._request(
            lambda id: group_leave_command(id=id, group=group_id), GroupEvent, timeout
        )
        return event.group

    async def groups(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> list[Group]:
        """The groups this user is a member of, as the server knows them now."""
        answer = await self._request(lambda id: group_list_command(id=id), GroupList, timeout)
        return list(answer.groups)

    # -- the chat list and read state (see client_sdk._chat_calls) -------------------------------------

    async def chats(
        self,
        *,
        limit: int | None = None,
        before: str | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> ChatPage:
        """A page of this user's conversations, newest activity first (``limit``: the server
        clamps it to 1-100, default 50; ``before``: the ``next`` of the previous page)."""
        return await self._request(
            lambda id: chat_list_command(id=id, limit=limit, before=before), ChatPage, timeout
        )

    async def mark_conversation_read(
        self, conversation: str, seq: int, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """This user has read ``conversation`` up to ``seq`` (the senders get no read receipt);
        every device of theirs gets a :class:`~client_sdk.ReadState` event."""
        await self._request(
            lambda id: mark_read_command(id=id, conversation=conversation, seq=seq), Ok, timeout
        )

    # ---- search
    async def search(
        self,
        query: str,
        *,
        conversation: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> SearchResults:
        """A page of this user's messages matching ``query``, newest first (see
        :meth:`client_sdk.Client.search`)."""
        return await self._request(
            lambda id: search_command(
                id=id, query=query, conversation=conversation, before=before, limit=limit
            ),
            SearchResults,
            timeout,
        )

    async def devices(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> list[Device]:
        """This user's devices (this one included), as the server knows them now."""
        answer = await self._request(lambda id: devices_command(id=id), DeviceList, timeout)
        return list(answer.devices)

    # -- blocking and reports ----------------------------------------------------------------------
    async def block(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Block ``user`` on every device of this user (see :meth:`client_sdk.Client.block`)."""
        await self._request(lambda id: block_command(id=id, user=user), Ok, timeout)

    async def unblock(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Unblock ``user``: what they send from now on reaches this user again."""
        await self._request(lambda id: unblock_command(id=id, user=user), Ok, timeout)

    async def blocked(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> list[str]:
        """The users this user blocks, in the order they were blocked, as the server knows them now."""
        answer = await self._request(lambda id: blocks_command(id=id), BlockList, timeout)
        return list(answer.users)

    async def report(
        self,
        user: str,
        *,
        messages: Iterable[Message | str] = (),
        reason: str = "",
        block: bool = False,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """Report ``user`` to the operators (see :meth:`client_sdk.Client.report`)."""
        ids = [m.id if isinstance(m, Message) else m for m in messages]
        build = partial(report_command, user=user, messages=ids, reason=reason, block=block)
        await self._request(lambda id: build(id=id), Ok, timeout)

    def group(self, group_id: str) -> Group | None:
        """The group as last seen in a group event or :meth:`groups` answer (None: never seen)."""
        return self._session.group(group_id)

    async def _change_members(
        self, kind: str, group: Group | str, members: Iterable[str], timeout: float | None
    ) -> Group:
        group_id = _group_id(group)
        event = await self._request(
            lambda id: group_members_command(kind=kind, id=id, group=group_id, members=members),
            GroupEvent,
            timeout,
        )
        return event.group

    # -- push --------------------------------------------------------------------------------------------

    async def register_push(
        self,
        token: str,
        platform: str,
        *,
        preview: bool = True,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """Register this device's push token (``platform`` android, ios or web); ``preview=False``
        keeps the sender and text out of the push."""
        build = partial(push_register_command, token=token, platform=platform, preview=preview)
        await self._request(lambda id: build(id=id), Ok, timeout)

    async def unregister_push(self, token: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Stop pushes to ``token`` (e.g. at logout)."""
        await self._request(lambda id: push_unregister_command(id=id, token=token), Ok, timeout)

    # -- reactions ---------------------------------------------------------------------------------------

    async def react(
        self, message: Message | str, emoji: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """React to ``message`` (a message or its id) with ``emoji``, replacing this user's earlier
        reaction; ``""`` removes it. Returns once the server has it (the change comes as a
        :class:`~client_sdk.Reaction` event). :class:`~client_sdk.CommandRejected`: ``bad_request``
        (not one emoji), ``not_found`` (a message this user cannot see, or a deleted one)."""
        message_id = message.id if isinstance(message, Message) else message
        await self._request(lambda id: react_command(id=id, message=message_id, emoji=emoji), Ok, timeout)

    async def unreact(
        self, message: Message | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """Remove this user's reaction to ``message`` (nothing happens when there is none)."""
        await self.react(message, "", timeout=timeout)

    # -- disappearing messages (see client_sdk._timer_calls) -----------------------------------------

    async def set_timer(
        self, conversation: str, seconds: int, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """As :meth:`client_sdk.Client.set_timer`: the disappearing-message timer of this user's
        conversation with ``conversation`` (a user or a group), 0 turns it off."""
        await self._request(
            lambda id: timer_set_command(id=id, to=conversation, seconds=seconds), Ok, timeout
        )

    async def get_timer(self, conversation: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> int:
        """As :meth:`client_sdk.Client.get_timer`: the timer (seconds, 0: off) of a conversation."""
        answer = await self._request(lambda id: timer_get_command(id=id, to=conversation), TimerInfo, timeout)
        return answer.seconds

    # -- presence ----------------------------------------------------------------------------------------

    async def watch_presence(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Follow ``user``'s presence (:meth:`presence`, :meth:`wait_presence`, and Presence events).

        As :meth:`client_sdk.Client.watch_presence`: while connected, waits for the server's answer
        and raises :class:`PresenceForbidden` when it refuses, :class:`Timeout` without an answer
        within ``timeout`` seconds; offline, returns at once (a refusal then arrives as a
        :class:`PresenceRefused` event).
        """
        if not is_valid_user_id(user):
            raise ValueError(f"user {user!r} is not a user id")
        if self._state is State.CLOSED:
            raise NotConnected("the client is closed")
        session = self._session
        self._apply(session.watch(user))
        if not await self._changes.wait_for(
            lambda: not session.presence_unanswered(user) or self._closed(), timeout
        ):
            raise Timeout(f"the server did not answer the presence subscription to {user} in {timeout} s")
        if self._closed():
            raise NotConnected("the client was closed")
        if session.presence_refused(user):
            raise PresenceForbidden(user)

    def presence(self, user: str) -> Presence | None:
        """The latest known presence of a watched user (None until it arrives)."""
        return self._session.presence(user)

    async def wait_presence(
        self, user: str, status: str = "online", *, timeout: float | None = None
    ) -> Presence:
        """Wait until ``user``'s presence is ``status`` (``"online"`` or ``"offline"``); watches the user.

        Raises :class:`Timeout` after ``timeout`` seconds (None: no limit), :class:`NotConnected`
        when the client gets closed, :class:`PresenceForbidden` when the server refuses.
        """
        if status not in PRESENCE_STATUSES:
            raise ValueError(f"status must be one of {sorted(PRESENCE_STATUSES)}, got {status!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        await self.watch_presence(user, timeout=timeout)
        session = self._session

        def reached() -> bool:
            presence = session.presence(user)
            return presence is not None and presence.status == status

        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not await self._changes.wait_for(
            lambda: reached() or session.presence_refused(user) or self._closed(), left
        ):
            raise Timeout(f"{user} was not {status} within {timeout} s")
        if session.presence_refused(user) and not reached():
            raise PresenceForbidden(user)
        presence = session.presence(user)
        if presence is None or not reached():
            raise NotConnected("the client was closed")
        return presence

    # -- profiles --------------------------------------------------------------------------------------

    async def set_profile(
        self,
        *,
        name: str | None = None,
        about: str | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> Profile:
        """As :meth:`client_sdk.Client.set_profile`."""
        event = await self._request(
            lambda id: profile_set_command(id=id, name=name, about=about), ProfileChanged, timeout
        )
        return event.profile

    async def set_avatar(
        self, file: str | os.PathLike[str] | IO[bytes], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Profile:
        """As :meth:`client_sdk.Client.set_avatar`; the upload runs on a thread."""
        return await self._avatar_change(partial(self._upload_avatar, file), timeout)

    async def clear_avatar(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> Profile:
        """As :meth:`client_sdk.Client.clear_avatar`."""
        return await self._avatar_change(self._clear_avatar, timeout)

    async def profile(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> Profile | None:
        """As :meth:`client_sdk.Client.profile`: cached, kept fresh by ``profile`` events."""
        known = self._session.profile(user)
        if known is not None:
            return known
        answer = await self._request(
            lambda id: profile_get_command(id=id, users=[user]), ProfileList, timeout
        )
        return next((p for p in answer.profiles if p.user == user), None)

    def _upload_avatar(self, file: str | os.PathLike[str] | IO[bytes], command_id: str) -> None:
        self._media.upload_avatar(id=command_id, file=file)

    def _clear_avatar(self, command_id: str) -> None:
        self._media.clear_avatar(id=command_id)

    async def _avatar_change(self, call: Callable[[str], None], timeout: float | None) -> Profile:
        self._require_open()
        command_id = new_command_id()
        request = self._session.expect(command_id, "avatar", ProfileChanged)
        try:
            await asyncio.to_thread(call, command_id)
            await self._changes.wait_for(request._settled, timeout)
            return request._outcome(timeout).profile
        finally:
            self._session.requests.discard(request.id)

    # -- history ------------------------------------------------------------------------------

    async def history(
        self,
        conversation: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> HistoryPage:
        """A page of ``conversation`` as this user sees it now; as :meth:`client_sdk.Client.history`."""
        return await self._request(
            lambda id: history_command(
                id=id, conversation=conversation, before=before, after=after, limit=limit
            ),
            HistoryPage,
            timeout,
        )

    async def _rebuild(self, reset: SyncReset) -> SyncReset:
        """As the blocking client's: the latest page of every conversation this client knows of
        and of every group the server lists, before the ``SyncReset`` reaches the app."""
        conversations = set(reset.conversations)
        try:
            listed = await self._request(
                lambda id: group_list_command(id=id), GroupList, DEFAULT_REQUEST_TIMEOUT
            )
            conversations.update(group.id for group in listed.groups)
        except MqchatError:
            pass  # rebuilt from what is known
        try:  # and every chat of the chat list (1-on-1s this client never saw too)
            before: str | None = None
            for _ in range(REBUILD_CHAT_PAGES):
                page = await self.chats(limit=MAX_CHAT_PAGE, before=before)
                conversations.update(chat.conversation for chat in page)
                if page.next is None:
                    break
                before = page.next
        except MqchatError:
            pass  # rebuilt from what is known
        pages: dict[str, HistoryPage] = {}
        for conversation in sorted(conversations):
            try:
                pages[conversation] = await self.history(conversation, limit=REBUILD_LIMIT)
            except MqchatError:
                continue  # left out: the app can page it later
        return SyncReset(
            reset.ref, reset.after, reset.cursor, conversations=reset.conversations, history=pages
        )

    # -- internals ---------------------------------------------------------------------------------------

    # -- privacy (client_sdk._privacy) ---------------------------------------------------------------

    async def set_privacy(
        self,
        *,
        last_seen: str | None = None,
        online: str | None = None,
        read_receipts: bool | None = None,
        photo: str | None = None,
        about: str | None = None,
        groups: str | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> PrivacySettings:
        """As :meth:`client_sdk.Client.set_privacy`."""
        changes = {
            "last_seen": last_seen,
            "online": online,
            "read_receipts": read_receipts,
            "photo": photo,
            "about": about,
            "groups": groups,
        }
        event = await self._request(lambda id: privacy_set_command(id=id, **changes), PrivacyChanged, timeout)
        return event.settings

    async def privacy(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> PrivacySettings:
        """As :meth:`client_sdk.Client.privacy`."""
        return (await self._request(lambda id: privacy_get_command(id=id), PrivacyAnswer, timeout)).settings

    def group_invitations(self) -> list[GroupInvitation]:
        """As :meth:`client_sdk.Client.group_invitations`."""
        return self._session.group_invitations(now=time.time())

    async def accept_group_invite(
        self, group: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """As :meth:`client_sdk.Client.accept_group_invite`."""
        build = partial(group_invite_command, group=group, accept=True)
        try:
            return (await self._request(lambda id: build(id=id), GroupEvent, timeout)).group
        except CommandRejected as exc:
            if exc.code == "not_found":  # expired or answered elsewhere: no card to show
                self._session.forget_invitation(group)
            raise

    async def decline_group_invite(
        self, group: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """As :meth:`client_sdk.Client.decline_group_invite`."""
        build = partial(group_invite_command, group=group, accept=False)
        await self._request(lambda id: build(id=id), GroupInvitation, timeout)

    async def _request(
        self, build: Callable[[str], dict[str, Any]], answer_type: type[_A], timeout: float | None
    ) -> _A:
        """Publish the command ``build`` makes (from a fresh id) and wait for its answer."""
        self._require_open()
        if not self._session.connected:
            raise NotConnected(f"{self.client_id} is not connected right now")
        request, effects = self._session.request(build, answer_type)
        self._apply(effects)
        try:
            await self._changes.wait_for(request._settled, timeout)
            return request._outcome(timeout)
        finally:
            self._session.requests.discard(request.id)


class _Stream(AsyncIterator[_T]):
    """The events of one client's queue that ``select`` keeps (it consumes the others); ends after
    ``timeout`` seconds without one (None: never), or at the end of the queue."""

    def __init__(
        self,
        events: asyncio.Queue[Event | Closed],
        select: Callable[[Event], _T | None],
        timeout: float | None,
        rebuild: Callable[[SyncReset], Awaitable[SyncReset]],
    ) -> None:
        self._events = events
        self._select = select
        self._timeout = timeout
        self._rebuild = rebuild

    async def __anext__(self) -> _T:
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    event = await self._events.get()
                    if isinstance(event, Closed):
                        self._events.put_nowait(event)  # let every other iterator end too
                        if event.error is not None:
                            raise event.error
                        raise StopAsyncIteration
                    if isinstance(event, SyncReset):
                        event = await self._rebuild(event)
                    selected = self._select(event)
                    if selected is not None:
                        return selected
        except TimeoutError:
            raise StopAsyncIteration from None


def _any_event(event: Event) -> Event:
    return event


def _message(event: Event) -> Message | None:
    return event if isinstance(event, Message) else None


def _group_id(group: Group | str) -> str:
    return group.id if isinstance(group, Group) else group
