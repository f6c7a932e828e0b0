"""Push registration: like the group calls, each publishes its command and waits for the server's ``ok``."""

from __future__ import annotations

from functools import partial

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import push_register_command, push_unregister_command
from client_sdk._events import Ok

__all__ = ["PushCalls"]


class PushCalls(ClientBase):
    """Registering and unregistering this device's push token."""

    def register_push(
        self,
        token: str,
        platform: str,
        *,
        preview: bool = True,
        timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """Register this device's push token (FCM registration token; ``platform`` android, ios or web).

        While no device of this user is connected, messages are announced by a push to every
        registered token, one per burst. ``preview=False`` keeps the sender and text out of it.
        """
        build = partial(push_register_command, token=token, platform=platform, preview=preview)
        self._request(lambda id: build(id=id), Ok, timeout)

    def unregister_push(self, token: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Stop pushes to ``token`` (e.g. at logout)."""
        self._request(lambda id: push_unregister_command(id=id, token=token), Ok, timeout)
