"""Privacy: this user's settings, and the group invitations they lead to (see client_sdk._privacy)."""

from __future__ import annotations

import time

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._errors import CommandRejected
from client_sdk._events import Group, GroupEvent, PrivacyAnswer
from client_sdk._privacy import (
    GroupInvitation,
    PrivacyChanged,
    PrivacySettings,
    group_invite_command,
    privacy_get_command,
    privacy_set_command,
)

__all__ = ["PrivacyCalls"]


class PrivacyCalls(ClientBase):
    """Privacy settings; accepting and declining group invitations."""

    def set_privacy(
        self,
        *,
        last_seen: str | None = None,
        online: str | None = None,
        read_receipts: bool | None = None,
        photo: str | None = None,
        about: str | None = None,
        groups: str | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> PrivacySettings:
        """Change the settings given (``"everyone"``, ``"contacts"`` or ``"nobody"``; ``read_receipts``
        True or False); the others stay. Returns the settings after the change; every device of
        this user gets a :class:`PrivacyChanged` event. ValueError for an unknown value."""

        def build(id: str) -> dict[str, object]:
            return privacy_set_command(
                id=id,
                last_seen=last_seen,
                online=online,
                read_receipts=read_receipts,
                photo=photo,
                about=about,
                groups=groups,
            )

        return self._request(build, PrivacyChanged, timeout).settings

    def privacy(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> PrivacySettings:
        """This user's privacy settings, asked of the server."""
        return self._request(lambda id: privacy_get_command(id=id), PrivacyAnswer, timeout).settings

    def group_invitations(self) -> list[GroupInvitation]:
        """Invitations received (as :class:`GroupInvitation` events) and not answered nor expired."""
        with self._lock:
            return self._session.group_invitations(now=time.time())

    def accept_group_invite(self, group: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> Group:
        """Join ``group`` by its invitation; returns the group. :class:`CommandRejected`
        ``not_found`` when there is no pending invitation (declined, expired, never made)."""
        build = lambda id: group_invite_command(id=id, group=group, accept=True)  # noqa: E731
        try:
            return self._request(build, GroupEvent, timeout).group
        except CommandRejected as exc:
            if exc.code == "not_found":
                with self._lock:
                    self._session.forget_invitation(group)
            raise

    def decline_group_invite(self, group: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Decline the invitation to ``group`` (``not_found``: none pending)."""
        self._request(
            lambda id: group_invite_command(id=id, group=group, accept=False), GroupInvitation, timeout
        )
