"""The logins of a connect storm checked a batch at a time, on SQLite, PostgreSQL and MongoDB: one
look-up for the batch's stored credentials, and the same verdict for each login as alone."""

from __future__ import annotations

import pytest

from config.settings import Settings
from tests.harness import unique
from tests.jwt_tokens import AuthServer
from tests.stores.conftest import users
from workers.credentials import LoginCheck, hash_password, hash_token, new_token
from workers.credentials_jwt import JwtVerifier
from workers.stores import Store


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> AuthServer:
    return AuthServer(tmp_path_factory.mktemp("auth"))


def _verifier(server: AuthServer) -> JwtVerifier:
    built = JwtVerifier.from_settings(Settings().with_overrides(**server.settings()).auth)
    assert built is not None
    return built


def test_each_login_of_a_batch_gets_its_own_answer(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    nobody = unique("nobody")
    wide, phone, bobs = new_token(), new_token(), new_token()
    store.add_credential(alice, kind="token", secret_hash=hash_token(wide), now=1.0)
    store.add_credential(alice, kind="token", secret_hash=hash_token(phone), now=1.0, device="phone")
    store.add_credential(bob, kind="token", secret_hash=hash_token(bobs), now=1.0)
    store.add_credential(carol, kind="password", secret_hash=hash_password("carol's secret"), now=1.0)
    logins: list[tuple[str, str, str | None]] = [
        (alice, wide, "laptop"),  # a user-wide token: any device
        (alice, phone, "phone"),  # a device's own token, for its device
        (alice, phone, "laptop"),  # ... and for another device of the user
        (alice, bobs, "phone"),  # another user's token
        (bob, bobs, "phone"),
        (bob, new_token(), "phone"),  # a wrong secret beside the good one of the same user
        (nobody, wide, "phone"),  # an unknown user
        (carol, "carol's secret", "phone"),  # a password
        (carol, "not carol's secret", "phone"),
        (alice, phone, None),  # the media endpoint: no device, every token of the user
    ]
    check = LoginCheck(store)

    # When they are checked together
    verdicts = check.many(logins)

    # Then each has the answer it has alone
    assert verdicts == [True, True, False, False, True, False, False, True, False, True]
    assert verdicts == [check(user, secret, device) for user, secret, device in logins]


def test_a_batch_of_lookups_lists_each_logins_credentials(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    wide, phone = hash_token(new_token()), hash_token(new_token())
    store.add_credential(alice, kind="token", secret_hash=wide, now=1.0)
    store.add_credential(alice, kind="token", secret_hash=phone, now=1.0, device="phone")
    logins: list[tuple[str, str | None]] = [
        (alice, "phone"),
        (alice, "laptop"),
        (bob, "phone"),
        (unique("nobody"), None),
        (alice, None),
    ]

    found = store.credential_hashes_many(logins)

    assert [sorted(hashes) for hashes in found] == [
        sorted([("token", wide), ("token", phone)]),
        [("token", wide)],
        [],
        [],
        sorted([("token", wide), ("token", phone)]),
    ]
    assert found == [store.credential_hashes(user, device) for user, device in logins]


def test_an_empty_batch_asks_nothing(store: Store) -> None:
    assert store.credential_hashes_many([]) == []
    assert LoginCheck(store).many([]) == []


def test_jwt_logins_in_a_batch_keep_their_rules(store: Store, server: AuthServer) -> None:
    alice, bob = users(store, "alice", "bob")
    newcomer = unique("newcomer")
    token = new_token()
    store.add_credential(alice, kind="token", secret_hash=hash_token(token), now=1.0)
    old = server.token(bob, iat=100)
    store.add_credential(bob, kind="token", secret_hash=hash_token(new_token()), now=1.0, device="tablet")
    store.sign_out_device(bob, device="tablet", now=200.0)
    # a JWT-shaped secret stored as a password is never tried as one
    shaped = server.token(alice, aud="someone-else")
    store.add_credential(alice, kind="password", secret_hash=hash_password(shaped), now=1.0)
    logins: list[tuple[str, str, str | None]] = [
        (alice, server.token(alice), "phone"),  # a valid JWT of a known user
        (alice, token, "phone"),  # a token beside it
        (alice, server.token(bob), "phone"),  # a JWT of another user
        (newcomer, server.token(newcomer), "phone"),  # a valid JWT of an unknown user
        (bob, old, "tablet"),  # issued before the device was signed out
        (bob, old, "phone"),
        (alice, shaped, "phone"),  # a refused JWT, also alice's password
    ]
    closed = LoginCheck(store, jwt=_verifier(server))

    assert closed.many(logins) == [True, True, False, False, False, True, False]
    assert not store.user_exists(newcomer)

    # With users created on their first JWT login, the newcomer gets in, and is created
    created = LoginCheck(store, jwt=_verifier(server), create_users=True).many(logins)
    assert created == [True, True, False, True, False, True, False]
    assert store.user_exists(newcomer)
