"""The asyncio handle of a message this client sent: the blocking client's
:class:`client_sdk.OutgoingMessage` with an awaitable :meth:`OutgoingMessage.wait`."""

from __future__ import annotations

from client_sdk import _outbox
from client_sdk._errors import CommandRejected
from client_sdk.aio._changes import Changes
from client_sdk.contract import Status

__all__ = ["OutgoingMessage"]


class OutgoingMessage:
    """A message sent with :meth:`client_sdk.aio.Client.send` (or ``send_media``).

    ``id`` is the command id; ``to`` a user or group id. ``status`` is None until the server
    stored the message, then :class:`Status` SENT, DELIVERED, READ (for a group message
    DELIVERED and READ mean "by every member"; :attr:`receipts` shows each one's).
    ``message_id``, ``seq`` and ``conversation`` are filled in when it is SENT.
    """

    __slots__ = ("_changes", "_message")

    def __init__(self, message: _outbox.OutgoingMessage, changes: Changes) -> None:
        self._message = message
        self._changes = changes

    def __repr__(self) -> str:
        return repr(self._message)

    @property
    def id(self) -> str:
        return self._message.id

    @property
    def to(self) -> str:
        return self._message.to

    @property
    def text(self) -> str:
        return self._message.text

    @property
    def status(self) -> Status | None:
        """None until the server stored the message, then SENT, DELIVERED or READ (only moves forward)."""
        return self._message.status

    @property
    def message_id(self) -> str | None:
        """The server's id of the stored message, once SENT."""
        return self._message.message_id

    @property
    def seq(self) -> int | None:
        """The message's number within its conversation, once SENT."""
        return self._message.seq

    @property
    def conversation(self) -> str | None:
        """The conversation id (e.g. ``dm:alice:bob``), once SENT."""
        return self._message.conversation

    @property
    def receipts(self) -> dict[str, Status]:
        """Each recipient's highest status seen so far, by user id (a copy; empty until a receipt)."""
        return self._message.receipts

    @property
    def error(self) -> CommandRejected | None:
        """Why the server refused the message, if it did."""
        return self._message.error

    async def wait(
        self, status: Status | str = Status.SENT, *, timeout: float | None = None
    ) -> OutgoingMessage:
        """Wait until the message reached ``status`` (a :class:`Status` or its label, e.g. ``"read"``).

        Returns self at once when it is already at or past ``status``. Raises
        :class:`CommandRejected` when the server refused the message, :class:`Timeout` after
        ``timeout`` seconds (None: no limit), :class:`NotConnected` when the client was closed first.
        """
        target = _outbox.as_status(status)
        message = self._message
        await self._changes.wait_for(lambda: message._settled(target), timeout)
        message._outcome(target, timeout)
        return self
