"""Profiles: this user's display name, about text and avatar, and the profiles of contacts.

Setting a field waits for the server's ``profile`` event with ``ref`` = the command id (the profile
after the change); the avatar goes up over the media endpoint and is answered the same way. The
profiles of others are cached from ``profile`` events (pushed to contacts on every change, live or
by sync), ``profiles`` answers and group snapshots.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import new_command_id, profile_get_command, profile_set_command
from client_sdk._events import Profile, ProfileChanged, ProfileList
from client_sdk._transfer import MediaEndpoint

__all__ = ["ProfileCalls"]


class ProfileCalls(ClientBase):
    """Setting one's own profile; reading contacts' profiles."""

    _media: MediaEndpoint

    def set_profile(
        self,
        *,
        name: str | None = None,
        about: str | None = None,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> Profile:
        """Set this user's display name and/or about text (an empty string clears it; None leaves
        it); returns the profile after the change. :class:`CommandRejected` (``bad_request``) for a
        name over 64 characters or with control characters, an about text over 140."""
        event = self._request(
            lambda id: profile_set_command(id=id, name=name, about=about), ProfileChanged, timeout
        )
        return event.profile

    def set_avatar(
        self, file: str | os.PathLike[str] | IO[bytes], *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> Profile:
        """Make the image ``file`` this user's avatar (the server crops it square and strips its
        metadata); returns the profile after the change. :class:`CommandRejected`:
        ``unsupported_media`` (not an image), ``too_large``, ``bad_media`` (damaged, a bomb...)."""
        return self._avatar_change(lambda id: self._media.upload_avatar(id=id, file=file), timeout)

    def clear_avatar(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> Profile:
        """Remove this user's avatar (its file is deleted); returns the profile after the change."""
        return self._avatar_change(lambda id: self._media.clear_avatar(id=id), timeout)

    def profile(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> Profile | None:
        """``user``'s profile: from the cache (kept fresh by ``profile`` events), else asked of the
        server. None when this user may not see it (not a contact) or there is no such user."""
        with self._lock:
            known = self._session.profile(user)
        if known is not None:
            return known
        answer = self._request(lambda id: profile_get_command(id=id, users=[user]), ProfileList, timeout)
        return next((p for p in answer.profiles if p.user == user), None)

    def _avatar_change(self, call: Callable[[str], None], timeout: float | None) -> Profile:
        command_id = new_command_id()
        with self._lock:
            self._require_open()
            request = self._session.expect(command_id, "avatar", ProfileChanged)
        try:
            call(command_id)
            return request.wait(timeout=timeout).profile
        finally:
            with self._lock:
                self._session.requests.discard(command_id)
