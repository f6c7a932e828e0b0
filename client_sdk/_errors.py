"""Exceptions raised by the SDK.

The tree::

    MqchatError                  root: catch this to catch everything the SDK raises on purpose
    ├── ConnectError             the server could not be reached, or the MQTT handshake failed
    │   └── AuthenticationError  the server refused the credentials (CONNACK: bad credentials, not authorized)
    ├── NotConnected             the client is not open, or the operation needs a live connection
    ├── CommandRejected          the server answered a command with an ``error`` event (``.code``, ``.ref``)
    ├── PresenceForbidden        the server does not let this user see that user's presence (``.user``)
    └── Timeout                  a wait ran out of time (also a builtin ``TimeoutError``)

Misuse (a bad argument, re-entering an open client) raises ``ValueError`` / ``RuntimeError`` as usual.
paho-mqtt return codes and exceptions never reach callers: they are converted into this tree.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AuthenticationError",
    "CommandRejected",
    "ConnectError",
    "MqchatError",
    "NotConnected",
    "PresenceForbidden",
    "Timeout",
    "connect_refused",
]


class MqchatError(Exception):
    """Root of every error the SDK raises on purpose."""


class ConnectError(MqchatError):
    """The server could not be reached, or the MQTT connection handshake failed."""


class AuthenticationError(ConnectError):
    """The server refused the connection: bad user name / token, or not authorized."""


class NotConnected(MqchatError):
    """The client is not open (never connected, or closed), or the operation needs a live connection."""


class CommandRejected(MqchatError):
    """The server refused a command with an ``error`` event.

    ``code`` is one of :class:`client_sdk.contract.ErrorCode` (kept as a plain string so that codes a
    newer server adds do not break older clients), ``ref`` the id of the refused command and
    ``message`` the server's human-readable explanation. ``retry_after`` is set when the server said
    how many seconds to wait before trying again (a media upload refused with ``rate_limited``).
    """

    def __init__(self, *, code: str, ref: str | None, message: str, retry_after: float | None = None) -> None:
        super().__init__(
            f"{code}: {message}" if ref is None else f"command {ref!r} rejected: {code}: {message}"
        )
        self.code = code
        self.ref = ref
        self.message = message
        self.retry_after = retry_after


class PresenceForbidden(MqchatError):
    """The server refused to let this user watch ``user``'s presence (MQTT SUBACK failure).

    With the server's default ``presence.visibility = "contacts"``, a user may watch only itself,
    the users it has a 1-on-1 chat with (either side sent a message) and its group mates. Watch
    again once that changes (after the first message, say).
    """

    def __init__(self, user: str) -> None:
        super().__init__(f"the server does not let you see the presence of {user!r} (not a contact)")
        self.user = user


class Timeout(MqchatError, TimeoutError):
    """A wait ran out of time before the awaited state was reached."""


# CONNACK refusals that mean "these credentials are not accepted" (paho's names of MQTT 3.1.1 codes 4 and 5).
_AUTH_REFUSALS: Final = frozenset({"Bad user name or password", "Not authorized"})


def connect_refused(where: str, user: str, reason: object) -> ConnectError:
    """The error for a CONNACK that refused the connection (``reason``: paho's reason code)."""
    if str(reason) in _AUTH_REFUSALS:
        return AuthenticationError(f"{where} refused {user!r}: {reason}")
    return ConnectError(f"{where} refused the connection: {reason}")
