"""This user's devices: like the group calls, a command and its answer."""

from __future__ import annotations

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import devices_command
from client_sdk._events import Device, DeviceList

__all__ = ["DeviceCalls"]


class DeviceCalls(ClientBase):
    """Listing this user's devices."""

    def devices(self, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> list[Device]:
        """This user's devices (this one included), as the server knows them now: first and last
        seen, platform (from a push registration) and whether each is connected. A device signed
        out (``mqchat users signout``) is left out until it connects again."""
        answer = self._request(lambda id: devices_command(id=id), DeviceList, timeout)
        return list(answer.devices)
