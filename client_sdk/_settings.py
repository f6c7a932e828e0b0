"""The checks of a client's settings, shared by the blocking and the asyncio client so both refuse
the same bad settings with the same words."""

from __future__ import annotations

import os
from typing import Literal

from client_sdk._statefile import StateFile
from client_sdk.contract import DEVICE_ID_RE, is_valid_user_id

__all__ = ["MQTT_VERSIONS", "MqttVersion", "check_settings", "initial_cursor"]

MqttVersion = Literal["3.1.1", "5"]
"""The MQTT versions a client speaks: ``"3.1.1"`` (every mqchat server) or ``"5"``."""
MQTT_VERSIONS: tuple[MqttVersion, ...] = ("3.1.1", "5")


def check_settings(
    *,
    port: int,
    user: str,
    device: str,
    transport: str,
    mqtt_version: str,
    keepalive: int,
    connect_timeout: float,
    cursor: int,
) -> None:
    """Raise ``ValueError`` naming the first bad setting."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be 1-65535, got {port!r}")
    if not is_valid_user_id(user):
        raise ValueError(f"user {user!r} is not a user id (1-64 characters of [A-Za-z0-9_.-])")
    if not isinstance(device, str) or DEVICE_ID_RE.fullmatch(device) is None:
        raise ValueError(f"device {device!r} must be 1-64 characters of [A-Za-z0-9_.-]")
    if transport not in ("tcp", "websockets"):
        raise ValueError(f"transport must be 'tcp' or 'websockets', got {transport!r}")
    if mqtt_version not in MQTT_VERSIONS:
        raise ValueError(f"mqtt_version must be '3.1.1' or '5', got {mqtt_version!r}")
    if keepalive < 0:
        raise ValueError(f"keepalive must be >= 0 seconds, got {keepalive}")
    if connect_timeout <= 0:
        raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout}")
    if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
        raise ValueError(f"cursor must be an integer >= 0, got {cursor!r}")


def initial_cursor(state_file: str | os.PathLike[str] | None, cursor: int) -> tuple[StateFile | None, int]:
    """The state file to keep (if any) and the cursor to resume after: ``cursor``, or with a state
    file and ``cursor`` 0 the one saved there (ValueError when it is unreadable)."""
    file = None if state_file is None else StateFile(state_file)
    if file is not None and cursor == 0:
        cursor = file.load()
    return file, cursor
