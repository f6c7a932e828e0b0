"""A user's devices and signing one out, on SQLite, PostgreSQL and MongoDB."""

from __future__ import annotations

import pytest

from tests.stores.conftest import users
from workers.credentials import LoginCheck, hash_token, new_token
from workers.errors import UnknownDevice, UnknownUser
from workers.stores import DeviceSeen, Store


def _seen(user: str, device: str, ts: float, *, node: str = "n1", online: bool = True) -> DeviceSeen:
    return DeviceSeen(user, device, ts, node, online)


def test_a_device_is_recorded_when_it_connects_and_leaves(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")

    # When alice's phone connects, her laptop connects, then the phone leaves
    store.record_devices([_seen(alice, "phone", 10.0), _seen(alice, "laptop", 11.0)])
    store.record_devices([_seen(alice, "phone", 20.0, online=False)])

    # Then both are listed by first seen, the laptop online, the phone with its last seen
    listed = {d.device: d for d in store.devices_of(alice)}
    assert [d.device for d in store.devices_of(alice)] == ["phone", "laptop"]
    assert (listed["phone"].first_seen, listed["phone"].last_seen, listed["phone"].online) == (
        10.0,
        20.0,
        False,
    )
    assert (listed["laptop"].online, listed["laptop"].platform) == (True, None)
    assert store.devices_of(bob) == []


def test_a_reconnect_keeps_first_seen_and_a_platform_is_kept(store: Store) -> None:
    (alice,) = users(store, "alice")
    store.record_devices([_seen(alice, "phone", 10.0), _seen(alice, "phone", 12.0, online=False)])

    store.record_devices(
        [_seen(alice, "phone", 30.0), DeviceSeen(alice, "phone", 31.0, "n1", True, "android")]
    )

    (phone,) = store.devices_of(alice)
    assert (phone.first_seen, phone.last_seen, phone.platform, phone.online) == (10.0, 30.0, "android", True)


def test_a_late_disconnect_from_another_node_leaves_the_device_online(store: Store) -> None:
    (alice,) = users(store, "alice")
    # Given the phone moved from node n1 to n2, and n1 reports its disconnect afterwards
    store.record_devices([_seen(alice, "phone", 10.0, node="n1"), _seen(alice, "phone", 11.0, node="n2")])
    store.record_devices([_seen(alice, "phone", 12.0, node="n1", online=False)])

    # Then it is still online (on n2), until n2 restarts
    assert store.devices_of(alice)[0].online
    store.devices_offline_on("n2")
    assert not store.devices_of(alice)[0].online


def test_a_connect_storm_is_recorded_in_order(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.record_devices([_seen(alice, "phone", 1.0), _seen(alice, "phone", 2.0, online=False)])
    phones = [f"phone-{i}" for i in range(40)]

    # When one batch has many new devices connecting, a known one reconnecting twice in a row (on
    # n2, then n1), one seen twice with a platform between, and others connecting and leaving
    store.record_devices(
        [
            *(_seen(bob, phone, 10.0 + i) for i, phone in enumerate(phones)),
            _seen(alice, "phone", 59.0, node="n2"),
            _seen(alice, "phone", 60.0),
            _seen(alice, "laptop", 61.0, node="n1"),
            DeviceSeen(alice, "laptop", 62.0, "n1", True, "android"),
            _seen(alice, "laptop", 63.0, node="n2"),
            _seen(alice, "tablet", 64.0),
            _seen(alice, "tablet", 65.0, online=False),
            _seen(alice, "tablet", 66.0, node="n2"),
            _seen(alice, "watch", 67.0),
            _seen(alice, "watch", 68.0, online=False),
            _seen(alice, "desk", 70.0, node="n2"),  # a new device twice in a row
            _seen(alice, "desk", 71.0),
        ]
    )

    # Then each device is as its last change left it
    listed = {d.device: d for d in store.devices_of(bob)}
    assert sorted(listed) == sorted(phones)
    assert [(listed[p].first_seen, listed[p].last_seen, listed[p].online) for p in phones] == [
        (10.0 + i, 10.0 + i, True) for i in range(40)
    ]
    mine = {d.device: (d.first_seen, d.last_seen, d.platform, d.online) for d in store.devices_of(alice)}
    assert mine == {
        "phone": (1.0, 60.0, None, True),
        "laptop": (61.0, 63.0, "android", True),
        "tablet": (64.0, 66.0, None, True),
        "watch": (67.0, 68.0, None, False),
        "desk": (70.0, 71.0, None, True),
    }
    # the laptop is n2's now, the phone and the desk n1's
    store.devices_offline_on("n2")
    online = {d.device for d in store.devices_of(alice) if d.online}
    assert online == {"phone", "desk"}


def test_a_device_token_logs_in_only_as_its_device(store: Store) -> None:
    (alice,) = users(store, "alice")
    token = new_token()
    store.add_credential(alice, kind="token", secret_hash=hash_token(token), now=1.0, device="phone")
    check = LoginCheck(store)

    assert check(alice, token, "phone")
    assert not check(alice, token, "laptop")
    assert check(alice, token)  # the media endpoint knows no device: any token of the user


def test_signing_a_device_out_revokes_its_tokens_and_records_when(store: Store) -> None:
    (alice,) = users(store, "alice")
    phone, wide = new_token(), new_token()
    store.add_credential(alice, kind="token", secret_hash=hash_token(phone), now=1.0, device="phone")
    store.add_credential(alice, kind="token", secret_hash=hash_token(wide), now=1.0)
    store.record_devices([_seen(alice, "phone", 5.0), _seen(alice, "laptop", 6.0)])

    # When the phone is signed out
    assert store.sign_out_device(alice, device="phone", now=50.0) == 1

    # Then its token is gone, the user-wide one still works, and the sign-out is on record
    check = LoginCheck(store)
    assert not check(alice, phone, "phone")
    assert check(alice, wide, "phone")
    assert store.device_signed_out_at(alice, "phone") == 50.0
    assert store.device_signed_out_at(alice, "laptop") is None
    assert (alice, "phone", 50.0) in store.signed_out_since(49.0)
    assert all(entry[:2] != (alice, "phone") for entry in store.signed_out_since(51.0))
    # and the phone is no longer listed, until it connects again
    store.record_devices([_seen(alice, "phone", 51.0, online=False)])
    assert [d.device for d in store.devices_of(alice)] == ["laptop"]
    store.record_devices([_seen(alice, "phone", 60.0)])
    assert [d.device for d in store.devices_of(alice)] == ["phone", "laptop"]


def test_a_device_with_only_a_token_can_be_signed_out(store: Store) -> None:
    (alice,) = users(store, "alice")
    store.add_credential(alice, kind="token", secret_hash=hash_token(new_token()), now=1.0, device="tablet")

    assert store.sign_out_device(alice, device="tablet", now=5.0) == 1
    assert store.device_signed_out_at(alice, "tablet") == 5.0


def test_signing_out_an_unknown_device_or_user_is_refused(store: Store) -> None:
    (alice,) = users(store, "alice")

    with pytest.raises(UnknownDevice):
        store.sign_out_device(alice, device="nothere", now=5.0)
    with pytest.raises(UnknownUser):
        store.sign_out_device("nobody-" + alice, device="phone", now=5.0)
    assert store.device_signed_out_at(alice, "nothere") is None
