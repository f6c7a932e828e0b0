"""An auth server of the tests' own: signing keys made here, their JWKS file, and tokens."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SECRET = "a-shared-secret-of-the-apps-auth-server-0123456789"
ISSUER = "https://auth.example.test/"
AUDIENCE = "mqchat"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class AuthServer:
    """Signs tokens as the app's auth server would: HS256 with ``SECRET``, RS256 and ES256 with keys
    published in ``jwks`` (kids ``rsa-1`` and ``ec-1``)."""

    def __init__(self, folder: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(
            json.dumps({"keys": [public_jwk(self.rsa, "rsa-1"), public_jwk(self.ec, "ec-1")]})
        )

    def token(self, sub: Any, /, *, alg: str = "HS256", **claims: Any) -> str:
        """A token for ``sub``, valid for a minute, with the tests' issuer and audience; ``claims``
        change or add claims (None removes one)."""
        now = int(time.time())
        payload: dict[str, Any] = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        if alg.startswith("HS"):
            return jwt.encode(payload, SECRET, algorithm=alg)
        key: PrivateKey = self.rsa if alg.startswith(("RS", "PS")) else self.ec
        kid = "rsa-1" if key is self.rsa else "ec-1"
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})

    def settings(self, **changes: Any) -> dict[str, Any]:
        """``auth.*`` overrides of ``tests.harness.node_settings`` for this server (every algorithm)."""
        settings: dict[str, Any] = {
            "auth.jwt_secret": SECRET,
            "auth.jwt_jwks_file": self.jwks,
            "auth.jwt_algorithms": ["HS256", "RS256", "ES256"],
            "auth.jwt_issuer": ISSUER,
            "auth.jwt_audience": AUDIENCE,
        }
        settings.update({f"auth.{name}": value for name, value in changes.items()})
        return settings


def public_jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, use="sig")
    return jwk


def unsigned(payload: dict[str, Any]) -> str:
    """An ``alg: none`` token."""
    return jwt.encode(payload, None, algorithm="none")


def forged_hs256(payload: dict[str, Any], secret: bytes, *, kid: str | None = None) -> str:
    """An HS256 token signed with ``secret`` whatever it is (PyJWT refuses a public key as an HMAC
    secret when it signs: the algorithm-confusion attack needs it done by hand)."""
    import base64
    import hashlib
    import hmac

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"
