"""Group management: each call publishes its command and blocks until the server answers it.

The answer is the group event with ``ref`` = the command id (the group after the change), or an
error. The calls need a live connection (:class:`NotConnected` otherwise: they are not queued) and
raise :class:`CommandRejected` (code ``unknown_group``, ``not_member``, ``not_admin``,
``group_full``, ...), :class:`Timeout` after ``timeout`` seconds (None: no limit), or
:class:`NotConnected` when the client is closed meanwhile. Bad arguments raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import (
    group_create_command,
    group_leave_command,
    group_list_command,
    group_members_command,
    group_rename_command,
)
from client_sdk._events import Group, GroupEvent, GroupList

__all__ = ["GroupCalls"]


class GroupCalls(ClientBase):
    """Creating, changing, leaving and listing groups; the group cache."""

    def create_group(
        self, name: str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Create a group called ``name`` with ``members`` (user ids) and this user as its admin."""
        event = self._request(
            lambda id: group_create_command(id=id, name=name, members=members), GroupEvent, timeout
        )
        return event.group

    def add_members(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Add ``members`` to ``group`` (a Group or its id); only admins may."""
        return self._change_members("group_add", group, members, timeout)

    def remove_members(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Remove ``members`` from ``group``; only admins may."""
        return self._change_members("group_remove", group, members, timeout)

    def promote(
        self, group: Group | str, members: Iterable[str], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Make ``members`` admins of ``group``; only admins may."""
        return self._change_members("group_promote", group, members, timeout)

    def rename_group(
        self, group: Group | str, name: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group:
        """Rename ``group``; only admins may."""
        group_id = _group_id(group)
        event = self._request(
            lambda id: group_rename_command(id=id, group=group_id, name=name), GroupEvent, timeout
        )
        return event.group

    def leave_group(self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> Group:
        """Leave ``group``; returns the group as it is afterwards (without this user)."""
        group_id = _group_id(group)
        event = self._request(lambda id: group_leave_command(id=id, group=group_id), GroupEvent, timeout)
        return event.group

    def groups(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> list[Group]:
        """The groups this user is a member of, as the server knows them now."""
        answer = self._request(lambda id: group_list_command(id=id), GroupList, timeout)
        return list(answer.groups)

    def group(self, group_id: str) -> Group | None:
        """The group as last seen in a group event or :meth:`groups` answer (None: never seen).

        No round trip: group events arrive by themselves (live or by sync), and every member gets
        them. A group this user left or was removed from stays as it was right after that.
        """
        with self._lock:
            return self._session.group(group_id)

    def _change_members(
        self, kind: str, group: Group | str, members: Iterable[str], timeout: float | None
    ) -> Group:
        group_id = _group_id(group)
        event = self._request(
            lambda id: group_members_command(kind=kind, id=id, group=group_id, members=members),
            GroupEvent,
            timeout,
        )
        return event.group


def _group_id(group: Group | str) -> str:
    return group.id if isinstance(group, Group) else group
