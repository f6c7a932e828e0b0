"""Replies (a message that quotes another) and forwards (a message sent on to another chat)."""

from __future__ import annotations

import time

from client_sdk._base import ClientBase
from client_sdk._events import Message
from client_sdk._outbox import OutgoingMessage
from client_sdk._replies import reply_target

__all__ = ["ReplyCalls", "reply_args"]


def reply_args(message: Message | str, to: str | None, me: str) -> tuple[str, str]:
    """``(message id, to)`` of a reply to ``message``: a :class:`Message` answers in its own
    conversation, a bare message id needs ``to``."""
    if isinstance(message, Message):
        target = reply_target(
            sender=message.sender,
            recipient=message.recipient,
            conversation_is_group=message.group is not None,
            me=me,
        )
        if to is not None and to != target:
            raise ValueError(f"a reply to a message of {target} goes to {target}, not {to}")
        return message.id, target
    if to is None:
        raise ValueError("a reply to a message id needs 'to': the user or group of its conversation")
    return message, to


class ReplyCalls(ClientBase):
    """Replying to and forwarding messages."""

    def reply(
        self, message: Message | str, text: str, *, to: str | None = None, id: str | None = None
    ) -> OutgoingMessage:
        """Send ``text`` as a reply to ``message`` (a :class:`Message`, or a message id with
        ``to``, the user or group of its conversation); as :meth:`send` otherwise.

        Receivers see the quote in :attr:`Message.reply`. The server refuses (the handle's
        :meth:`~OutgoingMessage.wait` raises :class:`CommandRejected`) a reply to a message this user
        cannot see (``not_found``) or of another conversation (``bad_request``).
        """
        reply_to, target = reply_args(message, to, self.user)
        with self._lock:
            self._require_open()
            outgoing, effects = self._session.send(
                to=target, text=text, id=id, now=time.monotonic(), reply_to=reply_to
            )
            self._apply(effects)
        return outgoing

    def forward(self, message: Message | str, to: str, *, id: str | None = None) -> OutgoingMessage:
        """Send ``message`` (a :class:`Message` or its id, one this user sent or received) on to user
        or group ``to``: a new message with the same text and media, marked
        :attr:`Message.forwarded`; its media is not uploaded again. Returns the same handle as
        :meth:`send`; :meth:`~OutgoingMessage.wait` raises :class:`CommandRejected` (``not_found``)
        for a message this user cannot read or that was deleted, and as a send for ``to``."""
        message_id = message.id if isinstance(message, Message) else message
        with self._lock:
            self._require_open()
            outgoing, effects = self._session.forward(message=message_id, to=to, id=id, now=time.monotonic())
            self._apply(effects)
        return outgoing
