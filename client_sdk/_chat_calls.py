"""The chat list and the read position a user's devices share.

:meth:`ChatCalls.chats` asks the server for a page of this user's conversations (a new device
shows its chats without a full sync); :meth:`ChatCalls.mark_conversation_read` moves the read position of a
conversation without sending read receipts (for an app whose user turned them off). Either way,
every device of the user gets a :class:`~client_sdk.ReadState` event and clears its unread state.
"""

from __future__ import annotations

from functools import partial

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import chat_list_command, mark_read_command
from client_sdk._events import ChatPage, Ok

__all__ = ["ChatCalls"]


class ChatCalls(ClientBase):
    """The chat list and read state."""

    def chats(
        self,
        *,
        limit: int | None = None,
        before: str | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> ChatPage:
        """A page of this user's conversations, newest activity first (``limit``: the server
        clamps it to 1-100, default 50; ``before``: the ``next`` of the previous page).
        :class:`CommandRejected` ``bad_request`` for a ``before`` that is not such a cursor."""
        return self._request(
            lambda id: chat_list_command(id=id, limit=limit, before=before), ChatPage, timeout
        )

    def mark_conversation_read(
        self, conversation: str, seq: int, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """This user has read ``conversation`` up to ``seq`` (the senders get no read receipt).
        :class:`CommandRejected` ``forbidden`` for a conversation this user is not in."""
        command = partial(mark_read_command, conversation=conversation, seq=seq)
        self._request(lambda id: command(id=id), Ok, timeout)
