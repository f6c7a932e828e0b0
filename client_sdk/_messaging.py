"""Text messages, receipts and typing going out; events coming in."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Iterator

from client_sdk._base import ClientBase, Closed
from client_sdk._errors import NotConnected
from client_sdk._events import Event, Message, SyncReset
from client_sdk._outbox import OutgoingMessage
from client_sdk.contract import Status

__all__ = ["Messaging"]


class Messaging(ClientBase):
    """What the app sends and reads."""

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
            outgoing, effects = self._session.send(to=to, text=text, id=id, now=time.monotonic())
            self._apply(effects)
        return outgoing

    def mark_read(self, messages: Message | str | Iterable[Message | str]) -> None:
        """Tell the senders these messages (events or message ids) were read.

        While disconnected the receipts are queued and published after the reconnect.
        """
        if isinstance(messages, Message | str):
            messages = [messages]
        ids = [item.id if isinstance(item, Message) else item for item in messages]
        with self._lock:
            self._require_open()
            self._apply(self._session.receipts(ids, status=Status.READ, now=time.monotonic()))

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

    def _next(self, timeout: float | None) -> Event | None:
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(event, Closed):
            self._events.put(event)  # let every other iterator end too
            if event.error is not None:
                raise event.error
            return None
        if isinstance(event, SyncReset):  # loaded here, on the app's thread: it blocks
            return self._rebuild(event)
        return event
