"""Group settings, invite links and join requests for the asyncio client: the calls of
:class:`client_sdk.Client` (see ``client_sdk._group_settings_calls``), awaited."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import IO, TYPE_CHECKING, Any, TypeVar

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT
from client_sdk._commands import (
    group_invite_link_command,
    group_join_command,
    group_request_command,
    group_set_command,
    new_command_id,
)
from client_sdk._events import Group, GroupEvent, GroupInvite, JoinRequest, JoinRequestList, Ok
from client_sdk._group_settings_calls import group_id_of
from client_sdk._session import Session
from client_sdk._transfer import MediaEndpoint
from client_sdk.aio._changes import Changes

__all__ = ["AsyncGroupSettings"]

_R = TypeVar("_R", GroupInvite, JoinRequestList, Ok)


class AsyncGroupSettings:
    """Settings of a group (admins), its invite link, joining by a code, and join requests."""

    _session: Session
    _media: MediaEndpoint
    _changes: Changes

    if TYPE_CHECKING:

        def _require_open(self) -> None: ...

        def _request(
            self, build: Callable[[str], dict[str, Any]], answer_type: type[_R], timeout: float | None
        ) -> Awaitable[_R]: ...

    async def set_group(
        self,
        group: Group | str,
        *,
        description: str | None = None,
        only_admins_send: bool | None = None,
        approval: bool | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> Group | None:
        """As :meth:`client_sdk.Client.set_group`."""
        group_id = group_id_of(group)
        await self._group_answer(
            lambda id: group_set_command(
                id=id,
                group=group_id,
                description=description,
                only_admins_send=only_admins_send,
                approval=approval,
            ),
            timeout,
        )
        return self._session.group(group_id)

    async def set_group_icon(
        self,
        group: Group | str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> Group:
        """As :meth:`client_sdk.Client.set_group_icon`; the upload runs on a thread."""
        self._require_open()
        group_id = group_id_of(group)
        command_id = new_command_id()
        request = self._session.expect(command_id, "group_icon", GroupEvent)
        try:
            await asyncio.to_thread(self._media.upload_group_icon, group=group_id, id=command_id, file=file)
            await self._changes.wait_for(request._settled, timeout)
            return request._outcome(timeout).group
        finally:
            self._session.requests.discard(request.id)

    async def remove_group_icon(
        self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group | None:
        """As :meth:`client_sdk.Client.remove_group_icon`."""
        group_id = group_id_of(group)
        await self._group_answer(
            lambda id: group_set_command(id=id, group=group_id, remove_icon=True), timeout
        )
        return self._session.group(group_id)

    async def group_invite_link(
        self,
        group: Group | str,
        *,
        expires_in: int | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> GroupInvite:
        """As :meth:`client_sdk.Client.group_invite_link`."""
        group_id = group_id_of(group)
        return await self._request(
            lambda id: group_invite_link_command(id=id, group=group_id, expires_in=expires_in),
            GroupInvite,
            timeout,
        )

    async def revoke_group_invite(
        self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> GroupInvite:
        """As :meth:`client_sdk.Client.revoke_group_invite`."""
        group_id = group_id_of(group)
        return await self._request(
            lambda id: group_invite_link_command(id=id, group=group_id, revoke=True), GroupInvite, timeout
        )

    async def join_group(
        self, code: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> GroupEvent | JoinRequest | None:
        """As :meth:`client_sdk.Client.join_group`."""
        return await self._group_answer(lambda id: group_join_command(id=id, code=code), timeout)

    async def group_requests(
        self, group: Group | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> list[tuple[str, float]]:
        """As :meth:`client_sdk.Client.group_requests`."""
        group_id = group_id_of(group)
        answer = await self._request(
            lambda id: group_request_command(kind="group_requests", id=id, group=group_id),
            JoinRequestList,
            timeout,
        )
        return list(answer.requests)

    async def approve(
        self, group: Group | str, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Group | None:
        """As :meth:`client_sdk.Client.approve`."""
        group_id = group_id_of(group)
        await self._group_answer(
            lambda id: group_request_command(kind="group_approve", id=id, group=group_id, member=user),
            timeout,
        )
        return self._session.group(group_id)

    async def reject(
        self, group: Group | str, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """As :meth:`client_sdk.Client.reject`."""
        group_id = group_id_of(group)
        await self._group_answer(
            lambda id: group_request_command(kind="group_reject", id=id, group=group_id, member=user),
            timeout,
        )

    async def _group_answer(
        self, build: Callable[[str], dict[str, Any]], timeout: float | None
    ) -> GroupEvent | JoinRequest | None:
        ok = await self._request(build, Ok, timeout)
        return self._session.take_group_answer(ok.ref)
