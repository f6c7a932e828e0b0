"""JWT login: a password that is a JSON Web Token signed by the app's own auth server.

A token lets ``user`` in when its signature checks with a key configured for its algorithm (HS*:
the shared ``auth.jwt_secret``; RS*, PS*, ES*: the public key of ``auth.jwt_jwks_file`` its
``kid`` names), it is within ``exp``/``nbf`` (give or take ``auth.jwt_leeway``), its ``iss`` and
``aud`` are the configured ones, and its ``sub`` is ``user``. The algorithm a token names must be
one configured, and the key is chosen by that algorithm's family, never the other way round: an
HS256 token cannot be checked with an RSA public key used as an HMAC secret (algorithm confusion),
and ``none`` is never accepted.

Every refusal is the same ``False`` as a wrong password (the caller answers and throttles it the
same way); the reason goes to the log only. The JWKS is read and checked once, when a node starts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt.exceptions import PyJWTError

from client_sdk.contract import is_valid_user_id
from config.settings import JWT_ALGORITHMS, AuthSettings

__all__ = ["JwtConfigError", "JwtVerifier", "PublicKey", "load_jwks", "looks_like_jwt"]

log = logging.getLogger(__name__)

# The curve each ES algorithm is defined on (RFC 7518, 3.4).
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_MIN_RSA_BITS = 2048  # RFC 7518, 3.3


class JwtConfigError(ValueError):
    """The JWT settings cannot be used (a key that does not load...); the message names the field."""


class _Refused(Exception):
    """Why one token is refused (logged, never told to the client)."""


@dataclass(frozen=True)
class PublicKey:
    """One verification key of the JWKS."""

    kid: str | None
    kty: str
    alg: str | None
    """The JWK's own ``alg``: when set, the only algorithm the key may check."""
    crv: str | None
    key: Any
    """The key as PyJWT verifies with it (a ``cryptography`` public key)."""

    def fits(self, alg: str) -> bool:
        if JWT_ALGORITHMS.get(alg) != self.kty or (self.alg is not None and self.alg != alg):
            return False
        return self.kty != "EC" or self.crv == _CURVES[alg]


def looks_like_jwt(secret: str) -> bool:
    """Whether ``secret`` is shaped as a signed JWT (three parts, the first a JSON header).

    Tokens of ``mqchat users`` have no dots, and a password that happens to have a base64url JSON
    object before its first of exactly two dots is not a worry; everything else keeps going to the
    stored credentials."""
    if secret.count(".") != 2:
        return False
    try:
        jwt.get_unverified_header(secret)
    except PyJWTError:
        return False
    return True


def load_jwks(path: Path) -> list[PublicKey]:
    """The signing keys of a JWKS file; a key that cannot be used is a :class:`JwtConfigError`."""
    field = "auth.jwt_jwks_file"
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise JwtConfigError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise JwtConfigError(f"{field}: {path} is not JSON: {exc}") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise JwtConfigError(f'{field}: {path} is not a JWKS: expected {{"keys": [{{...}}, ...]}}')
    keys: list[PublicKey] = []
    for index, entry in enumerate(entries):
        if entry.get("use", "sig") != "sig":
            continue  # an encryption key
        keys.append(_public_key(entry, f"{field}: key {entry.get('kid', index)!r}"))
    kids = [key.kid for key in keys if key.kid is not None]
    if len(kids) != len(set(kids)):
        raise JwtConfigError(f"{field}: two keys have the same kid")
    return keys


def _public_key(entry: Mapping[str, Any], where: str) -> PublicKey:
    kty, alg, kid = entry.get("kty"), entry.get("alg"), entry.get("kid")
    if kty not in ("RSA", "EC"):
        raise JwtConfigError(
            f"{where}: kty {kty!r} is not a public key type (RSA or EC; HS secrets go in auth.jwt_secret)"
        )
    if "d" in entry:
        raise JwtConfigError(f"{where} is a private key: publish only the public part")
    if alg is not None and JWT_ALGORITHMS.get(alg) != kty:
        raise JwtConfigError(f"{where}: alg {alg!r} does not fit kty {kty!r}")
    if kid is not None and not isinstance(kid, str):
        raise JwtConfigError(f"{where}: kid must be a string")
    try:
        loaded = jwt.PyJWK(dict(entry))
    except PyJWTError as exc:
        raise JwtConfigError(f"{where} does not load: {exc}") from None
    if kty == "RSA" and loaded.key.key_size < _MIN_RSA_BITS:
        raise JwtConfigError(f"{where}: an RSA key of {loaded.key.key_size} bits; {_MIN_RSA_BITS} at least")
    crv = entry.get("crv")
    return PublicKey(kid=kid, kty=kty, alg=alg, crv=crv if isinstance(crv, str) else None, key=loaded.key)


class JwtVerifier:
    """Checks JWT logins against the configured keys. Thread-safe; blocking (a signature check)."""

    def __init__(
        self,
        *,
        algorithms: Sequence[str],
        secret: bytes | None = None,
        keys: Sequence[PublicKey] = (),
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 30.0,
    ) -> None:
        unknown = [alg for alg in algorithms if alg not in JWT_ALGORITHMS]
        if unknown:
            raise JwtConfigError(f"auth.jwt_algorithms: {unknown[0]!r} is not supported")
        self._secret = secret
        self._keys: dict[str, list[PublicKey]] = {}
        for alg in algorithms:
            if JWT_ALGORITHMS[alg] == "oct":
                if not secret:
                    raise JwtConfigError(f"auth.jwt_algorithms: {alg} needs auth.jwt_secret")
                continue
            fitting = [key for key in keys if key.fits(alg)]
            if not fitting:
                raise JwtConfigError(f"auth.jwt_jwks_file has no key for {alg} (auth.jwt_algorithms)")
            self._keys[alg] = fitting
        self._algorithms = frozenset(algorithms)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        required = ["exp", "sub"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
        self._options: Any = {"require": required, "enforce_minimum_key_length": True}

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> JwtVerifier | None:
        """The verifier the settings describe, or None when JWT login is off (reads the JWKS)."""
        if not auth.jwt:
            return None
        secret = auth.jwt_secret.get_secret_value().encode() if auth.jwt_secret is not None else None
        keys = load_jwks(auth.jwt_jwks_file) if auth.jwt_jwks_file is not None else []
        return cls(
            algorithms=auth.jwt_accepted,
            secret=secret,
            keys=keys,
            issuer=auth.jwt_issuer,
            audience=auth.jwt_audience,
            leeway=auth.jwt_leeway,
        )

    def verify(self, token: str, user: str) -> bool:
        """Whether ``token`` is a valid JWT whose subject is ``user``."""
        return self.claims(token, user) is not None

    def claims(self, token: str, user: str) -> dict[str, Any] | None:
        """The claims of ``token`` if it is a valid JWT whose subject is ``user``, else None."""
        try:
            return self._check(token, user)
        except (_Refused, PyJWTError) as exc:
            log.info("refused a JWT for %s: %s", user, exc)
            return None

    def _check(self, token: str, user: str) -> dict[str, Any]:
        if not is_valid_user_id(user):
            raise _Refused("the user id is not valid")
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _Refused(f"algorithm {alg!r} is not accepted (auth.jwt_algorithms)")
        key = self._secret if JWT_ALGORITHMS[alg] == "oct" else self._key_for(alg, header.get("kid"))
        assert key is not None  # __init__ refused an HS algorithm without a secret
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            issuer=self._issuer,
            audience=self._audience,
            subject=user,
            leeway=self._leeway,
            options=self._options,
        )
        if claims.get("sub") != user:  # decode checked it; a second look costs nothing
            raise _Refused("sub is not the MQTT username")
        return claims

    def _key_for(self, alg: str, kid: object) -> Any:
        keys = self._keys[alg]
        if kid is None:
            if len(keys) == 1:
                return keys[0].key
            raise _Refused(f"no kid, and {len(keys)} keys could check {alg}")
        for key in keys:
            if key.kid == kid:
                return key.key
        raise _Refused(f"no {alg} key with kid {kid!r}")
