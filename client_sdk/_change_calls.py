"""Changing a message already sent: an edit, a delete for everyone, a delete for me.

Each call publishes its command and waits for the server's answer: this user's own ``edited``,
``deleted`` or ``hidden`` event (``ref`` = the command id; every other device of the user and,
for an edit or a delete for everyone, the other side get theirs too), or ``ok`` when nothing was
left to change (deleted or hidden already). The events themselves reach :meth:`events` like any
other, in cursor order.
"""

from __future__ import annotations

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import delete_command, edit_command
from client_sdk._events import Message, Ok

__all__ = ["ChangeCalls"]


def _id_of(message: Message | str) -> str:
    return message.id if isinstance(message, Message) else message


class ChangeCalls(ClientBase):
    """Edits and deletes of messages."""

    def edit(
        self, message: Message | str, text: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """Replace the text (or the caption of an image or video) of a message this user sent.
        :class:`CommandRejected`: ``forbidden`` (someone else's), ``too_late`` (past the server's
        edit window, 15 minutes by default), ``not_found`` (no such message, or deleted),
        ``too_large``. The server keeps only the latest text."""
        message_id = _id_of(message)
        self._request(lambda id: edit_command(id=id, message_id=message_id, text=text), Ok, timeout)

    def delete(
        self,
        message: Message | str,
        *,
        everyone: bool = True,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """Delete a message for everyone (``everyone``: its sender, within the server's delete
        window, 48 hours by default; a group admin at any time), or only from this user's own
        devices (``everyone=False``). Deleting again is not an error. :class:`CommandRejected`:
        ``forbidden``, ``too_late``, ``not_found``."""
        message_id = _id_of(message)
        self._request(lambda id: delete_command(id=id, message_id=message_id, everyone=everyone), Ok, timeout)
