"""Credentials: random tokens (stored as SHA-256), passwords (stored as Argon2id), and JWTs.

Tokens carry 256 bits of randomness, so a fast hash is enough at rest and keeps reconnect storms
cheap; passwords are low-entropy and get Argon2id (pwdlib), verified off the event loop. JWTs of
the app's own auth server (``auth.jwt_*``, ``workers/credentials_jwt.py``) need nothing stored
but the user. :class:`LoginCheck` is the one answer to "does this secret let this user in", for
MQTT and the media endpoint alike.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pwdlib import PasswordHash

from workers.credentials_jwt import JwtVerifier, looks_like_jwt
from workers.errors import UserExists
from workers.stores.rules.devices import issued_before_sign_out

if TYPE_CHECKING:
    from workers.stores.interfaces import Logins

__all__ = ["TOKEN_PREFIX", "LoginCheck", "hash_password", "hash_token", "new_token", "verify"]

TOKEN_PREFIX = "mqc_"
log = logging.getLogger(__name__)
_password_hash = PasswordHash.recommended()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _password_hash.hash(password)


def verify(secret: str, stored: list[tuple[str, str]]) -> bool:
    """Whether ``secret`` matches one of a user's stored (kind, hash) credentials."""
    token_hash = hash_token(secret) if secret.startswith(TOKEN_PREFIX) else None
    for kind, value in stored:
        if kind == "token":
            if token_hash is not None and hmac.compare_digest(token_hash, value):
                return True
        elif kind == "password":
            try:
                if _password_hash.verify(secret, value):
                    return True
            except Exception:
                log.warning("unreadable password hash; ignoring it", exc_info=True)
    return False


class LoginCheck:
    """Whether a secret lets a user in: one of its stored credentials, or a valid JWT for it.

    With JWT login on (``jwt``), a secret shaped as a JWT is checked as one and only as one (a
    refused JWT is not tried as a password: that would cost an Argon2 check per bad token). A
    valid JWT lets in a user that exists, or, with ``create_users``, creates it. Blocking: call it
    on a thread (the callers go through ``broker.throttle.check_login``).

    ``device`` is the device an MQTT login is for (the media endpoint has none): a token bound to
    another device does not let it in, and neither does a JWT issued before the device was
    signed out (its ``iat``, or none at all, before the sign-out).
    """

    def __init__(
        self,
        store: Logins,
        *,
        jwt: JwtVerifier | None = None,
        create_users: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._jwt = jwt
        self._create_users = create_users
        self._clock = clock

    def __call__(self, user: str, secret: str, device: str | None = None) -> bool:
        if self._jwt is not None and looks_like_jwt(secret):
            claims = self._jwt.claims(secret, user)
            if claims is None or not self._known(user):
                return False
            return device is None or not self._signed_out_since(user, device, claims.get("iat"))
        store = self._store
        return verify(
            secret, store.credential_hashes(user) if device is None else store.credential_hashes(user, device)
        )

    def many(self, logins: Sequence[tuple[str, str, str | None]]) -> list[bool]:
        """``self(user, secret, device)`` of each login, in order, the stored credentials of them
        all in one look-up (a connect storm's logins, a batch at a time). Each secret is still
        verified on its own; a JWT login goes its own way, as in ``__call__``."""
        jwt = self._jwt
        verdicts: list[bool | None] = [None] * len(logins)
        stored: list[int] = []
        for i, (user, secret, device) in enumerate(logins):
            if jwt is not None and looks_like_jwt(secret):
                verdicts[i] = self(user, secret, device)
            else:
                stored.append(i)
        if stored:
            found = self._store.credential_hashes_many([(logins[i][0], logins[i][2]) for i in stored])
            for i, hashes in zip(stored, found, strict=True):
                verdicts[i] = verify(logins[i][1], hashes)
        return [bool(verdict) for verdict in verdicts]

    def _signed_out_since(self, user: str, device: str, iat: object) -> bool:
        issued = float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else None
        if issued_before_sign_out(issued, self._store.device_signed_out_at(user, device)):
            log.info("refused a JWT for %s/%s: issued before the device was signed out", user, device)
            return True
        return False

    def _known(self, user: str) -> bool:
        """Whether the user of a valid JWT exists, created now if the settings say so."""
        if self._store.user_exists(user):
            return True
        if not self._create_users:
            log.info("refused a JWT for %s: no such user (auth.jwt_create_users is off)", user)
            return False
        try:
            self._store.create_user(user, now=self._clock())
        except UserExists:
            return True  # another login of the same user created it first
        log.info("created user %s on its first JWT login", user)
        return True
