"""Messages this client sends: the handle a caller waits on, and the outbox of unanswered ``send`` commands.

A ``send`` command stays in the :class:`Outbox` until the server answers it with a ``sent`` or an
``error`` event carrying its id; until then the client resends it after every reconnect (the server
stores it once). :class:`OutgoingMessage` is the caller's view of one such message: its status only
moves forward (sent < delivered < read) and :meth:`OutgoingMessage.wait` blocks until it gets there.
For a group message the status is that of every member (it moves on receipts with ``all`` true);
:attr:`OutgoingMessage.receipts` shows each member's own.

Pure bookkeeping: no I/O. The outbox is not thread-safe (its owner holds a lock); each
:class:`OutgoingMessage` guards its own state, so any thread may wait on it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from client_sdk._errors import CommandRejected, NotConnected, Timeout
from client_sdk._events import Message, Receipt
from client_sdk.contract import Status

__all__ = ["DEFAULT_MAX_TRACKED", "Outbox", "OutgoingMessage", "as_status"]

DEFAULT_MAX_TRACKED = 10_000
"""How many answered messages an outbox keeps following for receipts (the oldest are forgotten first)."""


class OutgoingMessage:
    """A message sent with :meth:`client_sdk.Client.send`.

    ``id`` is the command id (the server's ``sent``/``error`` answer refers to it); ``to`` a user
    or group id. ``status`` is None until the server stored the message, then :class:`Status`
    SENT, DELIVERED, READ; for a group message DELIVERED and READ mean "by every member".
    ``message_id``, ``seq`` and ``conversation`` are filled in when it is SENT.
    """

    __slots__ = (
        "_abandoned",
        "_changed",
        "_conversation",
        "_error",
        "_message_id",
        "_receipts",
        "_seq",
        "_status",
        "forward_of",
        "id",
        "reply_to",
        "text",
        "to",
    )

    def __init__(
        self, *, id: str, to: str, text: str, reply_to: str | None = None, forward_of: str | None = None
    ) -> None:
        self.id = id
        self.to = to
        self.text = text
        self.reply_to = reply_to
        """The id of the message this one answers (a reply), or None."""
        self.forward_of = forward_of
        """The id of the message this one forwards (``text`` is then empty), or None."""
        self._changed = threading.Condition(threading.Lock())
        self._status: Status | None = None
        self._message_id: str | None = None
        self._seq: int | None = None
        self._conversation: str | None = None
        self._error: CommandRejected | None = None
        self._abandoned = False
        self._receipts: dict[str, Status] = {}

    def __repr__(self) -> str:
        status = "pending" if self._status is None else self._status.label
        if self._error is not None:
            status = f"rejected ({self._error.code})"
        return f"OutgoingMessage(id={self.id!r}, to={self.to!r}, status={status})"

    @property
    def status(self) -> Status | None:
        """None until the server stored the message, then SENT, DELIVERED or READ (only moves forward)."""
        with self._changed:
            return self._status

    @property
    def message_id(self) -> str | None:
        """The server's id of the stored message, once SENT."""
        with self._changed:
            return self._message_id

    @property
    def seq(self) -> int | None:
        """The message's number within its conversation, once SENT."""
        with self._changed:
            return self._seq

    @property
    def conversation(self) -> str | None:
        """The conversation id (e.g. ``dm:alice:bob``), once SENT."""
        with self._changed:
            return self._conversation

    @property
    def receipts(self) -> dict[str, Status]:
        """Each recipient's highest status seen so far, by user id (a copy; empty until a receipt).

        For a group message this fills in member by member while :attr:`status` waits for all of them.
        """
        with self._changed:
            return dict(self._receipts)

    @property
    def error(self) -> CommandRejected | None:
        """Why the server refused the message, if it did."""
        with self._changed:
            return self._error

    def wait(self, status: Status | str = Status.SENT, *, timeout: float | None = None) -> OutgoingMessage:
        """Block until the message reached ``status`` (a :class:`Status` or its label, e.g. ``"read"``).

        Returns self at once when it is already at or past ``status``. Raises
        :class:`CommandRejected` when the server refused the message, :class:`Timeout` after
        ``timeout`` seconds (None: no limit), :class:`NotConnected` when the client was closed first.
        """
        target = as_status(status)
        with self._changed:
            self._changed.wait_for(lambda: self._settled(target), timeout)
            return self._outcome(target, timeout)

    def _settled(self, target: Status) -> bool:
        """Whether a wait for ``target`` is over (reached, refused or abandoned); the asyncio client
        waits on this too, with its own wake-ups."""
        return self._reached(target) or self._error is not None or self._abandoned

    def _outcome(self, target: Status, timeout: float | None) -> OutgoingMessage:
        """How a wait for ``target`` ends: self, or the error to raise (Timeout when not settled)."""
        if self._reached(target):
            return self
        if self._error is not None:
            error = self._error
            raise CommandRejected(code=error.code, ref=error.ref, message=error.message)
        if self._abandoned:
            raise NotConnected(f"the client was closed before message {self.id!r} was {target.label}")
        raise Timeout(f"message {self.id!r} was not {target.label} within {timeout} s")

    def _reached(self, target: Status) -> bool:
        return self._status is not None and self._status >= target

    def _resolve(self, message: Message) -> None:
        with self._changed:
            self._message_id = message.id
            self._seq = message.seq
            self._conversation = message.conversation
            if self._status is None:
                self._status = Status.SENT
            self._changed.notify_all()

    def _receipt(self, receipt: Receipt) -> None:
        with self._changed:
            if self._status is None:
                return  # not stored yet as far as we know: the sent answer comes first in the inbox
            if receipt.status > self._receipts.get(receipt.by, Status.SENT):
                self._receipts[receipt.by] = receipt.status
            if receipt.all and receipt.status > self._status:
                self._status = receipt.status
            self._changed.notify_all()

    def _reject(self, error: CommandRejected) -> None:
        with self._changed:
            self._error = error
            self._changed.notify_all()

    def _abandon(self) -> None:
        with self._changed:
            self._abandoned = True
            self._changed.notify_all()


class Outbox:
    """The ``send`` commands not answered yet, in the order they were made, plus the answered ones
    still followed for receipts (at most ``max_tracked``, oldest forgotten first)."""

    __slots__ = ("_by_message_id", "_expected", "_max_tracked", "_pending")

    def __init__(self, *, max_tracked: int = DEFAULT_MAX_TRACKED) -> None:
        if max_tracked < 1:
            raise ValueError(f"max_tracked must be >= 1, got {max_tracked}")
        self._max_tracked = max_tracked
        self._pending: OrderedDict[str, OutgoingMessage] = OrderedDict()
        self._expected: dict[str, OutgoingMessage] = {}
        self._by_message_id: OrderedDict[str, OutgoingMessage] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, ref: object) -> bool:
        return ref in self._pending

    def add(self, message: OutgoingMessage) -> None:
        """Queue a new message; its command id must not be pending already."""
        if message.id in self._pending:
            raise ValueError(f"a message with command id {message.id!r} is already pending")
        self._pending[message.id] = message

    def expect(self, message: OutgoingMessage) -> None:
        """Wait for the ``sent`` or ``error`` answer to a command sent another way (a media upload
        over HTTP): it is answered like a queued message but never resent from here."""
        if message.id in self._pending or message.id in self._expected:
            raise ValueError(f"a message with command id {message.id!r} is already pending")
        self._expected[message.id] = message

    def forget(self, ref: str) -> None:
        """Stop waiting for the answer to an expected command (its upload failed)."""
        self._expected.pop(ref, None)

    def pending(self) -> list[OutgoingMessage]:
        """The unanswered messages, oldest first (the order to resend them in)."""
        return list(self._pending.values())

    def resolve(self, ref: str, message: Message) -> OutgoingMessage | None:
        """The server stored the command ``ref`` as ``message``: mark it SENT and stop resending it.

        Returns the outgoing message, or None when ``ref`` is not pending here (a duplicate
        answer, or a message sent from another device).
        """
        outgoing = self._pending.pop(ref, None) or self._expected.pop(ref, None)
        if outgoing is None:
            return None
        outgoing._resolve(message)
        self._by_message_id[message.id] = outgoing
        while len(self._by_message_id) > self._max_tracked:
            self._by_message_id.popitem(last=False)
        return outgoing

    def reject(self, ref: str, error: CommandRejected) -> OutgoingMessage | None:
        """The server refused the command ``ref``: fail it and stop resending it (None if not pending)."""
        outgoing = self._pending.pop(ref, None) or self._expected.pop(ref, None)
        if outgoing is not None:
            outgoing._reject(error)
        return outgoing

    def on_receipt(self, receipt: Receipt) -> OutgoingMessage | None:
        """A receipt for a stored message: record the recipient's status, and move the message's
        own status when the receipt is for all recipients (``all``).

        Returns the outgoing message when this outbox still follows it, else None.
        """
        outgoing = self._by_message_id.get(receipt.message_id)
        if outgoing is None:
            return None
        outgoing._receipt(receipt)
        if receipt.all and receipt.status >= Status.READ:
            # Read by everyone: nothing can happen to it any more.
            del self._by_message_id[receipt.message_id]
        return outgoing

    def close(self) -> None:
        """The client closed: wake everyone waiting on a message (their waits raise NotConnected)."""
        for outgoing in (*self._pending.values(), *self._expected.values(), *self._by_message_id.values()):
            outgoing._abandon()
        self._expected.clear()
        self._by_message_id.clear()


def as_status(status: Status | str) -> Status:
    """``status`` as a :class:`Status` (its label, e.g. ``"read"``, is accepted); ValueError if unknown."""
    if isinstance(status, Status):
        return status
    try:
        return Status.parse(status)
    except (KeyError, AttributeError):
        raise ValueError(f"unknown status {status!r}; expected one of sent, delivered, read") from None
