"""Searching this user's own messages: like the group calls, a command and its answer."""

from __future__ import annotations

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import search_command
from client_sdk._events import SearchResults

__all__ = ["SearchCalls"]


class SearchCalls(ClientBase):
    """Full-text search."""

    def search(
        self,
        query: str,
        *,
        conversation: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> SearchResults:
        """A page of this user's messages (sent, or received while in the conversation) having
        every word of ``query`` as the start of one of their words, newest first, each as it is
        now; only in ``conversation`` (a message's ``conversation``) when given. ``limit`` is
        clamped by the server to 1-50 (default 20); for the next page pass the previous page's
        ``next`` as ``before``. :class:`CommandRejected` (``forbidden``) for a conversation this
        user is not in; ``ValueError`` for a query that is empty or over 200 characters."""
        return self._request(
            lambda id: search_command(
                id=id, query=query, conversation=conversation, before=before, limit=limit
            ),
            SearchResults,
            timeout,
        )
