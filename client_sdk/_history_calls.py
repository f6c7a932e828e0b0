"""History of a conversation, and the rebuild after a ``sync_reset`` (issue 23)."""

from __future__ import annotations

import logging
from typing import Final

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import group_list_command, history_command
from client_sdk._errors import MqchatError
from client_sdk._events import GroupList, HistoryPage, SyncReset

__all__ = ["REBUILD_LIMIT", "HistoryCalls"]

logger = logging.getLogger(__name__)

REBUILD_LIMIT: Final = 50
"""Messages of each conversation a rebuild after a ``sync_reset`` loads (the latest ones)."""


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

    def _rebuild(self, reset: SyncReset) -> SyncReset:
        """The latest page of every conversation this client knows of and of every group the
        server lists. A conversation that cannot be loaded now is left out (logged)."""
        conversations = set(reset.conversations)
        try:
            listed = self._request(lambda id: group_list_command(id=id), GroupList, DEFAULT_REQUEST_TIMEOUT)
            conversations.update(group.id for group in listed.groups)
        except MqchatError:
            logger.warning("%s: could not list the groups to rebuild after a sync reset", self.client_id)
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
