"""Group settings, invite links and join requests: each call publishes its command and blocks
until the server answers it (as the group calls do: a live connection is needed, refusals raise
:class:`CommandRejected` with the wire code, e.g. ``not_admin``, ``not_found`` for an invite
code that is wrong, revoked or expired, ``group_full``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, Any

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import (
    group_invite_link_command,
    group_join_command,
    group_request_command,
    group_set_command,
    new_command_id,
)
from client_sdk._events import Group, GroupEvent, GroupInvite, JoinRequest, JoinRequestList, Ok
from client_sdk._transfer import MediaEndpoint

__all__ = ["GroupSettingsCalls", "group_id_of"]


def group_id_of(group: Group | str) -> str:
    return group.id if isinstance(group, Group) else group


class GroupSettingsCalls(ClientBase):
    """Settings of a group (admins), its invite link, joining by a code, and join requests."""

    _media: MediaEndpoint

    def set_group(
        self,
        group: Group | str,
        *,
        description: str | None = None,
        only_admins_send: bool | None = None,
        approval: bool | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> Group | None:
        """Change the settings given (None: left as they are; ``description=""`` clears it); only
        admins may. Returns the group after the change (None: not seen yet and nothing changed)."""
        group_id = group_id_of(group)
        return self._settings_change(
            lambda id: group_set_command(
                id=id,
                group=group_id,
                description=description,
                only_admins_send=only_admins_send,
                approval=approval,
            ),
            group_id,
            timeout,
        )

    def set_group_icon(
        self,
        group: Group | str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> Group:
        """Make the image ``file`` the group's icon (cropped square, metadata stripped); only admins
        may. :class:`CommandRejected`: ``unsupported_media``, ``too_large``, ``bad_media``, ``not_admin``."""
        group_id = group_id_of(group)
        command_id = new_command_id()
        with self._lock:
            self._require_open()
            request = self._session.expect(command_id, "group_icon", GroupEvent)
        try:
            self._media.upload_group_icon(group=group_id, id=command_id, file=file)
            return request.wait(timeout=timeout).group
        finally:
            with self._lock:
                self._session.requests.discard(command_id)

    def remove_group_icon(
        self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group | None:
        """Remove the group's icon (its file is deleted); only admins may."""
        group_id = group_id_of(group)
        return self._settings_change(
            lambda id: group_set_command(id=id, group=group_id, remove_icon=True), group_id, timeout
        )

    def group_invite_link(
        self,
        group: Group | str,
        *,
        expires_in: int | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> GroupInvite:
        """A new invite link of the group, which replaces the one it had (admins only); valid for
        ``expires_in`` seconds (None: until replaced or revoked). The server keeps only a hash of
        the code: keep the answer to show it again, or make a new one."""
        group_id = group_id_of(group)
        return self._request(
            lambda id: group_invite_link_command(id=id, group=group_id, expires_in=expires_in),
            GroupInvite,
            timeout,
        )

    def revoke_group_invite(
        self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> GroupInvite:
        """Revoke the group's invite link (admins only): its code joins nobody any more."""
        group_id = group_id_of(group)
        return self._request(
            lambda id: group_invite_link_command(id=id, group=group_id, revoke=True), GroupInvite, timeout
        )

    def join_group(
        self, code: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> GroupEvent | JoinRequest | None:
        """Join the group of an invite ``code``: its :class:`GroupEvent` (action ``joined``), or,
        when the group needs approval, the :class:`JoinRequest` (``pending``) sent to its admins;
        None when this user was a member (or had asked) already. ``not_found``: a wrong, revoked
        or expired code (the server does not say which)."""
        return self._group_answer(lambda id: group_join_command(id=id, code=code), timeout)

    def group_requests(
        self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> list[tuple[str, float]]:
        """The pending requests to join the group (user, when asked), the oldest first; admins only."""
        group_id = group_id_of(group)
        answer = self._request(
            lambda id: group_request_command(kind="group_requests", id=id, group=group_id),
            JoinRequestList,
            timeout,
        )
        return list(answer.requests)

    def approve(
        self, group: Group | str, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group | None:
        """Approve ``user``'s request to join (admins only): the group with them in it."""
        group_id = group_id_of(group)
        self._group_answer(
            lambda id: group_request_command(kind="group_approve", id=id, group=group_id, member=user),
            timeout,
        )
        with self._lock:
            return self._session.group(group_id)

    def reject(
        self, group: Group | str, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """Reject ``user``'s request to join (admins only)."""
        group_id = group_id_of(group)
        self._group_answer(
            lambda id: group_request_command(kind="group_reject", id=id, group=group_id, member=user),
            timeout,
        )

    def _settings_change(
        self, build: Callable[[str], dict[str, Any]], group_id: str, timeout: float | None
    ) -> Group | None:
        self._group_answer(build, timeout)
        with self._lock:
            return self._session.group(group_id)

    def _group_answer(
        self, build: Callable[[str], dict[str, Any]], timeout: float | None
    ) -> GroupEvent | JoinRequest | None:
        ok = self._request(build, Ok, timeout)
        with self._lock:
            return self._session.take_group_answer(ok.ref)
