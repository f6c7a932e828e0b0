"""Which stored credentials each login of a batch may use, shared by both stores."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["credentials_by_login"]


def credentials_by_login(
    logins: Sequence[tuple[str, str | None]], rows: Iterable[tuple[str, str | None, str, str]]
) -> list[list[tuple[str, str]]]:
    """The (kind, hash) credentials of each ``(user, device)`` login, in the logins' order, from
    the ``(user, device, kind, hash)`` rows of their enabled users (``device`` None: a user-wide
    credential). A login for a device leaves out the tokens bound to another device; one without
    (the media endpoint) may use every token of the user."""
    by_user: dict[str, list[tuple[str | None, str, str]]] = {}
    for user, device, kind, secret_hash in rows:
        by_user.setdefault(user, []).append((device, kind, secret_hash))
    return [
        [
            (kind, secret_hash)
            for bound, kind, secret_hash in by_user.get(user, ())
            if device is None or bound is None or bound == device
        ]
        for user, device in logins
    ]
