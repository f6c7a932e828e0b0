"""Credentials: random tokens (stored as SHA-256) and passwords (stored as Argon2id).

Tokens carry 256 bits of randomness, so a fast hash is enough at rest and keeps reconnect storms
cheap; passwords are low-entropy and get Argon2id (pwdlib), verified off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from pwdlib import PasswordHash

__all__ = ["TOKEN_PREFIX", "hash_password", "hash_token", "new_token", "verify"]

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
