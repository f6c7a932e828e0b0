"""Devices: which of a user's devices are listed, and which logins a sign-out refuses."""

from __future__ import annotations

__all__ = ["issued_before_sign_out", "listed"]


def listed(*, signed_out_at: float | None, connected_at: float | None) -> bool:
    """A device signed out is listed again only once it has connected after its sign-out."""
    return signed_out_at is None or (connected_at is not None and connected_at > signed_out_at)


def issued_before_sign_out(issued_at: float | None, signed_out_at: float | None) -> bool:
    """Whether a credential issued at ``issued_at`` (a JWT's ``iat``; None: unknown, so as old as
    can be) predates the device's last sign-out, and so must not log that device in."""
    if signed_out_at is None:
        return False
    return issued_at is None or issued_at < signed_out_at
