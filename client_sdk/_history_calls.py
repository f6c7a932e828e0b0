"""History of a conversation, and the rebuild after a ``sync_reset``."""

from __future__ import annotations

import logging
from functools import partial
from typing import Final

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import chat_list_command, group_list_command, history_command
from client_sdk._errors import MqchatError
from client_sdk._events import ChatPage, GroupList, HistoryPage, SyncReset

__all__ = ["MAX_CHAT_PAGE", "REBUILD_CHAT_PAGES", "REBUILD_LIMIT", "HistoryCalls"]

logger = logging.getLogger(__name__)

REBUILD_LIMIT: Final = 50
"""Messages of each conversation a rebuild after a ``sync_reset`` loads (the latest ones)."""
MAX_CHAT_PAGE: Final = 100
"""The largest page of the chat list the server gives."""
REBUILD_CHAT_PAGES: Final = 20
"""Chat list pages a rebuild reads at most (2,000 chats)."""


class HistoryCalls(ClientBase):
    """Paging through one conversation."""

    def history(
        self,
        conversation: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> HistoryPage:
        """A page of ``conversation`` (``dm:<user>:<user>``, see
        :func:`client_sdk.contract.dm_conversation_id`, or a group id) as this user sees it now.

        ``before`` alone pages back: the last ``limit`` messages below that seq (pass the page's
        :attr:`~HistoryPage.first_seq` for the page before); ``after`` pages forwards: the first
        ``limit`` above it (below ``before`` when given too); neither: the latest ``limit``. The
        server clamps ``limit`` to 1-200 (default 50). Only what this user may see: of a group,
        the messages from while they were a member. :class:`CommandRejected` ``forbidden`` for a
        conversation they are not in (whether or not it exists), ``bad_request`` for a bad id.
        """
        return self._request(
            lambda id: history_command(
                id=id, conversation=conversation, before=before, after=after, limit=limit
            ),
            HistoryPage,
            timeout,
        )

    def _chat_page(self, before: str | None) -> ChatPage:
        command = partial(chat_list_command, limit=MAX_CHAT_PAGE, before=before)
        return self._request(lambda id: command(id=id), ChatPage, DEFAULT_REQUEST_TIMEOUT)

    def _rebuild(self, reset: SyncReset) -> SyncReset:
        """The latest page of every conversation this client knows of and of every group the
        server lists. A conversation that cannot be loaded now is left out (logged)."""
        conversations = set(reset.conversations)
        try:
            listed = self._request(lambda id: group_list_command(id=id), GroupList, DEFAULT_REQUEST_TIMEOUT)
            conversations.update(group.id for group in listed.groups)
        except MqchatError:
            logger.warning("%s: could not list the groups to rebuild after a sync reset", self.client_id)
        try:  # and every chat of the chat list (1-on-1s this client never saw too)
            before: str | None = None
            for _ in range(REBUILD_CHAT_PAGES):
                page = self._chat_page(before)
                conversations.update(chat.conversation for chat in page)
                if page.next is None:
                    break
                before = page.next
        except MqchatError:
            logger.warning("%s: could not list the chats to rebuild after a sync reset", self.client_id)
        pages: dict[str, HistoryPage] = {}
        for conversation in sorted(conversations):
            try:
                pages[conversation] = self.history(conversation, limit=REBUILD_LIMIT)
            except MqchatError as exc:
                logger.warning(
                    "%s: could not load %s after a sync reset: %s", self.client_id, conversation, exc
                )
        return SyncReset(
            reset.ref, reset.after, reset.cursor, conversations=reset.conversations, history=pages
        )
