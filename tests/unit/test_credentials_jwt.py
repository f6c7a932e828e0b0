"""The JWT verifier, the login check around it, and the ``[auth]`` settings: no node needed."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from config.settings import AuthSettings, Settings, SettingsError, load_settings
from tests.jwt_tokens import AUDIENCE, ISSUER, SECRET, AuthServer, forged_hs256, public_jwk, unsigned
from workers.credentials import LoginCheck, hash_token, new_token
from workers.credentials_jwt import JwtConfigError, JwtVerifier, load_jwks, looks_like_jwt
from workers.errors import UserExists


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> AuthServer:
    return AuthServer(tmp_path_factory.mktemp("auth"))


def verifier(server: AuthServer, **changes: Any) -> JwtVerifier:
    settings = Settings().with_overrides(**server.settings(**changes))
    built = JwtVerifier.from_settings(settings.auth)
    assert built is not None
    return built


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
def test_a_valid_token_lets_its_subject_in_and_no_one_else(server: AuthServer, alg: str) -> None:
    check = verifier(server)
    token = server.token("alice", alg=alg)

    assert check.verify(token, "alice")
    assert not check.verify(token, "bob")  # the MQTT username must be the sub


def now() -> int:
    return int(time.time())


TIMES = {"exp", "nbf", "iat"}


@pytest.mark.parametrize(
    ("case", "claims"),
    [
        ("expired", {"exp": -120}),
        ("not yet valid", {"nbf": 120}),
        ("issued in the future", {"iat": 120}),
        ("wrong issuer", {"iss": "https://evil.example/"}),
        ("no issuer", {"iss": None}),
        ("wrong audience", {"aud": "another-service"}),
        ("no audience", {"aud": None}),
        ("no expiry", {"exp": None}),
        ("no subject", {"sub": None}),
    ],
)
@pytest.mark.parametrize("alg", ["HS256", "RS256"])
def test_claims_out_of_bounds_are_refused(server: AuthServer, alg: str, case: str, claims: Any) -> None:
    # times are seconds from now, taken when the test runs (not when the suite is collected)
    at = {
        name: now() + value if name in TIMES and value is not None else value
        for name, value in claims.items()
    }
    assert not verifier(server).verify(server.token("alice", alg=alg, **at), "alice"), case


def test_the_leeway_forgives_a_little_clock_difference(server: AuthServer) -> None:
    check = verifier(server, jwt_leeway=30)

    assert check.verify(server.token("alice", exp=now() - 5), "alice")
    assert check.verify(server.token("alice", nbf=now() + 5), "alice")
    assert not check.verify(server.token("alice", exp=now() - 60), "alice")


def test_without_an_audience_setting_a_token_made_for_some_audience_is_refused(server: AuthServer) -> None:
    check = verifier(server, jwt_audience=None, jwt_issuer=None)

    assert check.verify(server.token("alice", aud=None, iss=None), "alice")
    assert not check.verify(server.token("alice"), "alice")  # it has aud "mqchat"


def test_wrong_signatures_are_refused(server: AuthServer, tmp_path: Path) -> None:
    check = verifier(server)
    other = AuthServer(tmp_path)  # other keys, the same kids
    payload = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60}

    assert not check.verify(forged_hs256(payload, b"not the secret at all, but long enough"), "alice")
    assert not check.verify(other.token("alice", alg="RS256"), "alice")
    assert not check.verify(other.token("alice", alg="ES256"), "alice")
    head, _, signature = server.token("alice").split(".")
    tampered = json.dumps({**payload, "sub": "mallory"}).encode()
    assert not check.verify(
        f"{head}.{base64.urlsafe_b64encode(tampered).rstrip(b'=').decode()}.{signature}", "mallory"
    )


def test_alg_none_is_refused(server: AuthServer) -> None:
    token = unsigned({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60})

    assert looks_like_jwt(token)
    assert not verifier(server).verify(token, "alice")


def test_an_hs256_token_signed_with_the_public_key_is_refused_where_rs256_is_configured(
    server: AuthServer,
) -> None:
    # Given a node that accepts RS256 only, whose public key anyone may have
    check = verifier(server, jwt_secret=None, jwt_algorithms=["RS256"])
    pem = server.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60}

    # When an attacker signs HS256 with that public key as the HMAC secret: refused
    assert not check.verify(forged_hs256(payload, pem, kid="rsa-1"), "alice")
    # and so is a genuine HS256 token: the algorithm is not configured
    assert not check.verify(server.token("alice"), "alice")
    assert check.verify(server.token("alice", alg="RS256"), "alice")


def test_an_algorithm_not_configured_is_refused_even_with_a_fitting_key(server: AuthServer) -> None:
    check = verifier(server)  # HS256, RS256, ES256

    assert not check.verify(server.token("alice", alg="PS256"), "alice")
    assert not check.verify(server.token("alice", alg="RS512"), "alice")
    payload = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60}
    assert not check.verify(jwt.encode(payload, SECRET * 2, "HS512"), "alice")


def test_keys_are_picked_by_kid_and_must_fit_the_algorithm(server: AuthServer) -> None:
    check = verifier(server)
    payload = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60}

    assert not check.verify(jwt.encode(payload, server.rsa, "RS256", headers={"kid": "nope"}), "alice")
    assert not check.verify(jwt.encode(payload, server.rsa, "RS256", headers={"kid": "ec-1"}), "alice")
    # no kid: fine while one key could check the algorithm
    assert check.verify(jwt.encode(payload, server.rsa, "RS256"), "alice")


def test_malformed_tokens_and_bad_subjects_are_refused(server: AuthServer) -> None:
    check = verifier(server)
    token = server.token("alice")

    for bad in (token[:-4], token + "x", token.replace(".", ".x", 1), "eyJhbGciOiJIUzI1NiJ9.e30.", "a.b.c"):
        assert not check.verify(bad, "alice"), bad
    assert not check.verify(server.token("bad name"), "bad name")
    assert not check.verify(server.token(""), "")
    assert not check.verify(server.token(42), "42")
    assert not check.verify(server.token(["alice"]), "alice")


def test_only_jwt_shaped_secrets_are_taken_for_tokens(server: AuthServer) -> None:
    assert looks_like_jwt(server.token("alice"))
    for secret in (new_token(), "correct horse battery", "with.two.dots", "", "a.b"):
        assert not looks_like_jwt(secret), secret


# ---------------------------------------------------------------------- the JWKS file


def write(path: Path, keys: Any) -> Path:
    path.write_text(json.dumps(keys) if not isinstance(keys, str) else keys)
    return path


def test_a_jwks_loads_its_signing_keys_and_skips_encryption_keys(server: AuthServer, tmp_path: Path) -> None:
    keys = json.loads(server.jwks.read_text())["keys"]
    encryption = {**public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048), "enc-1")}
    encryption["use"] = "enc"

    loaded = load_jwks(write(tmp_path / "jwks.json", {"keys": [*keys, encryption]}))

    assert [(key.kid, key.kty) for key in loaded] == [("rsa-1", "RSA"), ("ec-1", "EC")]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "is not JSON"),
        ({"no": "keys"}, "is not a JWKS"),
        ({"keys": ["x"]}, "is not a JWKS"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "HS secrets go in auth.jwt_secret"),
        ({"keys": [{"kty": "RSA", "n": "AQAB"}]}, "does not load"),
        ({"keys": [{"kty": "EC", "alg": "RS256", "crv": "P-256", "x": "AA", "y": "AA"}]}, "does not fit"),
    ],
)
def test_an_unusable_jwks_names_the_setting(tmp_path: Path, content: Any, says: str) -> None:
    with pytest.raises(JwtConfigError, match=r"^auth\.jwt_jwks_file") as error:
        load_jwks(write(tmp_path / "jwks.json", content))
    assert says in str(error.value)


def test_private_short_and_twice_named_keys_are_refused(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key))
    with pytest.raises(JwtConfigError, match="private key"):
        load_jwks(write(tmp_path / "a.json", {"keys": [private]}))
    short = public_jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024), "short")
    with pytest.raises(JwtConfigError, match="1024 bits"):
        load_jwks(write(tmp_path / "b.json", {"keys": [short]}))
    twice = [public_jwk(key, "k"), public_jwk(ec.generate_private_key(ec.SECP256R1()), "k")]
    with pytest.raises(JwtConfigError, match="same kid"):
        load_jwks(write(tmp_path / "c.json", {"keys": twice}))
    with pytest.raises(JwtConfigError, match="cannot read"):
        load_jwks(tmp_path / "missing.json")


def test_an_algorithm_without_a_fitting_key_stops_the_start(tmp_path: Path) -> None:
    only_ec = write(
        tmp_path / "jwks.json", {"keys": [public_jwk(ec.generate_private_key(ec.SECP256R1()), "e")]}
    )
    auth = AuthSettings(jwt_jwks_file=only_ec, jwt_algorithms=["RS256"])

    with pytest.raises(JwtConfigError, match=r"auth\.jwt_jwks_file has no key for RS256"):
        JwtVerifier.from_settings(auth)
    p384 = AuthSettings(jwt_jwks_file=only_ec, jwt_algorithms=["ES384"])  # a P-256 key
    with pytest.raises(JwtConfigError, match="no key for ES384"):
        JwtVerifier.from_settings(p384)


# ---------------------------------------------------------------------- settings


def test_jwt_login_is_off_by_default() -> None:
    assert not Settings().auth.jwt
    assert JwtVerifier.from_settings(Settings().auth) is None


def test_the_algorithms_default_to_what_the_keys_configured_allow(server: AuthServer) -> None:
    assert AuthSettings(jwt_secret=SECRET).jwt_accepted == ["HS256"]
    assert AuthSettings(jwt_jwks_file=server.jwks).jwt_accepted == ["RS256", "ES256"]
    both = AuthSettings(jwt_secret=SECRET, jwt_jwks_file=server.jwks)
    assert both.jwt_accepted == ["HS256", "RS256", "ES256"]
    assert "a-shared-secret" not in Settings(auth=both).model_dump_json()


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        ("jwt_algorithms = ['HS256']", "auth.jwt_algorithms needs auth.jwt_secret or auth.jwt_jwks_file"),
        ("jwt_secret = 'x'", "auth.jwt_secret"),
        (
            f"jwt_secret = '{SECRET}'\njwt_algorithms = ['RS256']",
            "RS256 needs public keys in auth.jwt_jwks_file",
        ),
        (f"jwt_secret = '{SECRET}'\njwt_algorithms = ['HS512']", "HS512 needs a secret of 64 bytes"),
        (f"jwt_secret = '{SECRET}'\njwt_algorithms = []", "at least one algorithm"),
        (f"jwt_secret = '{SECRET}'\njwt_algorithms = ['none']", "auth.jwt_algorithms"),
        ("jwt_jwks_file = '/nonexistent/jwks.json'", "auth.jwt_jwks_file: cannot read"),
        ("jwt_jwks_file = 'JWKS'\njwt_algorithms = ['HS256']", "HS256 needs auth.jwt_secret"),
        ("jwt_leeway = 3600", "auth.jwt_leeway"),
    ],
)
def test_unusable_auth_settings_name_the_field(tmp_path: Path, auth: str, says: str) -> None:
    jwks = write(tmp_path / "jwks.json", "{not json")
    config = write(tmp_path / "mqchat.toml", "[auth]\n" + auth.replace("'JWKS'", f"'{jwks}'") + "\n")

    with pytest.raises(SettingsError, match=r"auth") as error:
        load_settings(config)
    assert says in str(error.value)


def test_a_jwks_file_that_is_not_json_is_refused_when_the_settings_load(tmp_path: Path) -> None:
    jwks = write(tmp_path / "jwks.json", "{not json")
    config = write(tmp_path / "mqchat.toml", f"[auth]\njwt_jwks_file = '{jwks}'\n")

    with pytest.raises(SettingsError, match=r"auth\.jwt_jwks_file: .* is not JSON"):
        load_settings(config)


# ---------------------------------------------------------------------- the login check


class Users:
    """The store as the login check sees it."""

    def __init__(self, *known: str, tokens: dict[str, str] | None = None) -> None:
        self.known = set(known)
        self.hashes = {user: [("token", hash_token(token))] for user, token in (tokens or {}).items()}
        self.created: list[str] = []
        self.race = False

    def credential_hashes(self, user: str) -> list[tuple[str, str]]:
        return self.hashes.get(user, [])

    def credential_hashes_many(self, logins: Sequence[tuple[str, str | None]]) -> list[list[tuple[str, str]]]:
        return [self.hashes.get(user, []) for user, _ in logins]

    def user_exists(self, user: str) -> bool:
        return user in self.known

    def create_user(self, user: str, *, now: float) -> None:
        if self.race:
            raise UserExists(user)
        self.known.add(user)
        self.created.append(user)


def test_a_jwt_logs_in_a_known_user_and_an_unknown_one_only_when_creating_users(server: AuthServer) -> None:
    store = Users("alice")
    closed = LoginCheck(store, jwt=verifier(server))
    open_ = LoginCheck(store, jwt=verifier(server), create_users=True)

    assert closed("alice", server.token("alice"))
    assert not closed("newbie", server.token("newbie"))
    assert store.created == []
    assert open_("newbie", server.token("newbie"))
    assert store.created == ["newbie"]
    assert closed("newbie", server.token("newbie"))  # known from now on
    assert not open_("mallory", server.token("mallory", exp=now() - 600))
    assert store.created == ["newbie"]  # a refused token creates nobody


def test_two_first_logins_at_once_both_get_in(server: AuthServer) -> None:
    store = Users()
    store.race = True  # the other login created the user between the look-up and the insert

    assert LoginCheck(store, jwt=verifier(server), create_users=True)("alice", server.token("alice"))


def test_tokens_and_passwords_keep_working_beside_jwt(server: AuthServer) -> None:
    token = new_token()
    store = Users("alice", tokens={"alice": token})
    for check in (LoginCheck(store), LoginCheck(store, jwt=verifier(server))):
        assert check("alice", token)
        assert not check("alice", "mqc_wrong")
    # without JWT login, a JWT is just a wrong password
    assert not LoginCheck(store)("alice", server.token("alice"))
