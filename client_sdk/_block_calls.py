"""Blocking users and reporting them to the operators.

A block or an unblock publishes its command and returns once the server has it: its answer is the
``blocking`` event with ``ref`` = its id (it reaches :meth:`Client.events` as a :class:`Blocking`,
on this user's other devices too), or a live ``ok`` when nothing changed. Whom this user blocks
cannot reach them in 1-on-1 (their messages show as sent to them and are never delivered), sees
neither their presence nor their profile, gets no receipts from them and cannot add them to groups.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import block_command, blocks_command, report_command, unblock_command
from client_sdk._events import BlockList, Message, Ok

__all__ = ["BlockCalls"]


class BlockCalls(ClientBase):
    """Blocking, unblocking, the list of blocked users, reports."""

    def block(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Block ``user`` on every device of this user, on every node, at once.
        :class:`CommandRejected`: ``bad_request`` (this user), ``unknown_user``."""
        self._request(lambda id: block_command(id=id, user=user), Ok, timeout)

    def unblock(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Unblock ``user``: what they send from now on reaches this user again (what they sent
        while blocked never does)."""
        self._request(lambda id: unblock_command(id=id, user=user), Ok, timeout)

    def blocked(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> list[str]:
        """The users this user blocks, in the order they were blocked, as the server knows them now."""
        answer = self._request(lambda id: blocks_command(id=id), BlockList, timeout)
        return list(answer.users)

    def report(
        self,
        user: str,
        *,
        messages: Iterable[Message | str] = (),
        reason: str = "",
        block: bool = False,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """Report ``user`` to the operators, with up to 50 ``messages`` (or ids) this user can see
        as evidence: the server keeps a copy of each as this user sees it now. ``block``: block
        them too ("block and report"). :class:`CommandRejected`: ``not_found`` (a message this
        user cannot see), ``bad_request`` (this user), ``unknown_user``."""
        ids = [m.id if isinstance(m, Message) else m for m in messages]
        build = partial(report_command, user=user, messages=ids, reason=reason, block=block)
        self._request(lambda id: build(id=id), Ok, timeout)
