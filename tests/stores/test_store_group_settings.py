"""Group settings, invite links and join requests in every store backend (SQLite, PostgreSQL,
MongoDB): admins only, one ``group`` event per change, a code found only while it is live, the
same refusal for a wrong, revoked and expired code, and "only admins can send" on the send path."""

from __future__ import annotations

import uuid

import pytest

from client_sdk.contract import ErrorCode
from tests.stores.conftest import users
from workers.errors import CommandError
from workers.stores import Store
from workers.stores.rules.group_settings import invite_hash

ICON = {"key": "gi/abc.jpg", "type": "image/jpeg", "size": 10, "width": 64, "height": 64}


def _group(store: Store, admin: str, *members: str) -> str:
    change = store.create_group(
        creator=admin, name="g", members=list(members), now=2.0, ref="g", max_members=10
    )
    return change.group.id


_salt = [""]


@pytest.fixture(autouse=True)
def _fresh_codes() -> None:
    """Codes unique to each test: the PostgreSQL database is shared by the tests of a run."""
    _salt[0] = uuid.uuid4().hex


def _code_of(code: str) -> str:
    return invite_hash(_salt[0] + code)


def test_an_admin_sets_the_settings_and_every_member_hears_it_once(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    group = _group(store, alice, bob)

    changes = {"description": "climbing on Sundays", "only_admins_send": True, "approval": True, "icon": ICON}
    update = store.set_group_settings(group=group, actor=alice, changes=changes, now=3.0, ref="s1")

    assert update.changed
    by_user = {e.user: e.payload for e in update.entries}
    assert sorted(by_user) == sorted([alice, bob])
    assert by_user[alice]["ref"] == "s1" and by_user[bob]["ref"] is None
    snapshot = by_user[bob]["group"]
    assert by_user[bob]["action"] == "settings"
    assert snapshot["description"] == "climbing on Sundays" and snapshot["icon"] == ICON
    assert snapshot["only_admins_send"] is True and snapshot["approval"] is True
    (listed,) = store.groups_of(bob)
    assert listed.wire()["description"] == "climbing on Sundays"
    # the same values again (a resend): nothing changes, no event
    again = store.set_group_settings(group=group, actor=alice, changes=changes, now=4.0, ref="s1")
    assert not again.changed and again.entries == []
    # turning them off leaves them out of the snapshot
    off = store.set_group_settings(
        group=group, actor=alice, changes={"only_admins_send": False, "description": None}, now=5.0, ref="s2"
    )
    wire = off.entries[0].payload["group"]
    assert "only_admins_send" not in wire and "description" not in wire and wire["approval"] is True


def test_a_new_icon_gives_up_the_old_one_and_only_members_may_read_it(store: Store) -> None:
    alice, bob, eve = users(store, "alice", "bob", "eve")
    group = _group(store, alice, bob)
    store.set_group_settings(group=group, actor=alice, changes={"icon": ICON}, now=3.0, ref="i1")
    assert store.can_read_group_icon(bob, ICON["key"]) and not store.can_read_group_icon(eve, ICON["key"])

    newer = {**ICON, "key": "gi/def.jpg"}
    update = store.set_group_settings(group=group, actor=alice, changes={"icon": newer}, now=4.0, ref="i2")

    assert update.replaced == [ICON["key"]]
    assert not store.can_read_group_icon(bob, ICON["key"]) and store.can_read_group_icon(bob, newer["key"])


@pytest.mark.parametrize(
    "changes",
    [{"description": "x"}, {"only_admins_send": True}, {"approval": True}, {"icon": ICON}, {"icon": None}],
)
def test_a_member_who_is_not_an_admin_changes_no_setting(store: Store, changes: dict[str, object]) -> None:
    alice, bob = users(store, "alice", "bob")
    group = _group(store, alice, bob)

    with pytest.raises(CommandError) as refused:
        store.set_group_settings(group=group, actor=bob, changes=changes, now=3.0, ref="s")

    assert refused.value.code is ErrorCode.NOT_ADMIN
    (listed,) = store.groups_of(bob)
    assert listed.settings == {}


def test_only_admins_send_refuses_a_member_and_lets_an_admin_send(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = _group(store, alice, bob, carol)
    store.accept_message(
        sender=bob, command_id="m0", recipient=group, text="before", now=2.5
    )  # cached roster
    store.set_group_settings(group=group, actor=alice, changes={"only_admins_send": True}, now=3.0, ref="s")

    with pytest.raises(CommandError) as refused:
        store.accept_message(sender=bob, command_id="m1", recipient=group, text="hi", now=4.0)
    sent = store.accept_message(sender=alice, command_id="m2", recipient=group, text="news", now=4.0)

    assert refused.value.code is ErrorCode.NOT_ADMIN
    assert sorted(e.user for e in sent.entries) == sorted([alice, bob, carol])
    entries, _ = store.sync(user=carol, after=0, limit=100)
    assert [e.payload["message"]["text"] for e in entries if e.payload["type"] == "message"] == [
        "before",
        "news",
    ]
    # promoted, bob may send; with the setting off, everyone may
    store.promote(group=group, actor=alice, members=[bob], now=5.0, ref="p")
    store.accept_message(sender=bob, command_id="m3", recipient=group, text="now me", now=6.0)
    store.set_group_settings(group=group, actor=alice, changes={"only_admins_send": False}, now=7.0, ref="s2")
    store.accept_message(sender=carol, command_id="m4", recipient=group, text="and me", now=8.0)


def test_whoever_holds_the_code_joins(store: Store) -> None:
    alice, bob, dave = users(store, "alice", "bob", "dave")
    group = _group(store, alice, bob)
    store.set_invite(group=group, actor=alice, code_hash=_code_of("secret-code"), expires_at=None, now=3.0)

    joined = store.join_by_invite(
        user=dave, code_hash=_code_of("secret-code"), now=4.0, ref="j", max_members=10
    )

    assert joined.state == "joined" and joined.changed
    by_user = {e.user: e.payload for e in joined.entries}
    assert sorted(by_user) == sorted([alice, bob, dave])
    assert by_user[dave]["action"] == "joined" and by_user[dave]["ref"] == "j"
    assert by_user[alice]["group"]["members"] == [alice, bob, dave]
    # a resend: a member already, nothing more
    again = store.join_by_invite(
        user=dave, code_hash=_code_of("secret-code"), now=5.0, ref="j", max_members=10
    )
    assert again.state == "member" and again.entries == []


def test_a_wrong_revoked_or_expired_code_gets_the_same_refusal(store: Store) -> None:
    alice, dave = users(store, "alice", "dave")
    revoked, expired, live = _group(store, alice), _group(store, alice), _group(store, alice)
    store.set_invite(group=revoked, actor=alice, code_hash=_code_of("old"), expires_at=None, now=3.0)
    store.set_invite(group=revoked, actor=alice, code_hash=None, expires_at=None, now=3.1)
    store.set_invite(group=expired, actor=alice, code_hash=_code_of("late"), expires_at=3.5, now=3.0)
    store.set_invite(group=live, actor=alice, code_hash=_code_of("first"), expires_at=None, now=3.0)
    store.set_invite(group=live, actor=alice, code_hash=_code_of("second"), expires_at=None, now=3.2)

    answers = []
    for code in ("wrong", "old", "late", "first"):  # "first" was replaced by "second"
        with pytest.raises(CommandError) as refused:
            store.join_by_invite(user=dave, code_hash=_code_of(code), now=4.0, ref="j", max_members=10)
        answers.append((refused.value.code, refused.value.message))

    assert answers == [(ErrorCode.NOT_FOUND, "no such invite")] * 4
    assert store.groups_of(dave) == []
    assert store.join_by_invite(
        user=dave, code_hash=_code_of("second"), now=4.0, ref="j", max_members=10
    ).changed


def test_only_an_admin_makes_or_revokes_a_link(store: Store) -> None:
    alice, bob, eve = users(store, "alice", "bob", "eve")
    group = _group(store, alice, bob)
    for actor, code in ((bob, ErrorCode.NOT_ADMIN), (eve, ErrorCode.NOT_MEMBER)):
        with pytest.raises(CommandError) as refused:
            store.set_invite(group=group, actor=actor, code_hash=_code_of("c"), expires_at=None, now=3.0)
        assert refused.value.code is code
    with pytest.raises(CommandError):
        store.join_by_invite(user=eve, code_hash=_code_of("c"), now=4.0, ref="j", max_members=10)


def test_a_join_past_max_members_is_refused(store: Store) -> None:
    alice, bob, dave = users(store, "alice", "bob", "dave")
    group = _group(store, alice, bob)
    store.set_invite(group=group, actor=alice, code_hash=_code_of("c"), expires_at=None, now=3.0)

    with pytest.raises(CommandError) as refused:
        store.join_by_invite(user=dave, code_hash=_code_of("c"), now=4.0, ref="j", max_members=2)

    assert refused.value.code is ErrorCode.GROUP_FULL
    assert store.groups_of(dave) == []


def test_a_group_with_approval_takes_requests_that_an_admin_decides(store: Store) -> None:
    alice, bob, dave, erin = users(store, "alice", "bob", "dave", "erin")
    group = _group(store, alice, bob)
    store.promote(group=group, actor=alice, members=[bob], now=2.5, ref="p")
    store.set_group_settings(group=group, actor=alice, changes={"approval": True}, now=3.0, ref="s")
    store.set_invite(group=group, actor=alice, code_hash=_code_of("c"), expires_at=None, now=3.0)

    asked = store.join_by_invite(user=dave, code_hash=_code_of("c"), now=4.0, ref="j1", max_members=10)
    store.join_by_invite(user=erin, code_hash=_code_of("c"), now=4.5, ref="j2", max_members=10)

    assert asked.state == "pending"
    by_user = {e.user: e.payload for e in asked.entries}
    assert sorted(by_user) == sorted([dave, alice, bob])  # the requester and every admin
    assert by_user[alice]["type"] == "group_request" and by_user[alice]["state"] == "pending"
    assert by_user[dave]["ref"] == "j1" and by_user[alice]["ref"] is None and by_user[alice]["user"] == dave
    assert store.groups_of(dave) == []
    again = store.join_by_invite(user=dave, code_hash=_code_of("c"), now=5.0, ref="j1", max_members=10)
    assert again.state == "pending" and not again.changed
    assert [r.user for r in store.join_requests(group=group, actor=alice)] == [dave, erin]
    with pytest.raises(CommandError) as refused:
        store.join_requests(group=group, actor=dave)
    assert refused.value.code is ErrorCode.NOT_MEMBER

    approved = store.decide_request(
        group=group, actor=bob, user=dave, approve=True, now=6.0, ref="a", max_members=10
    )
    rejected = store.decide_request(
        group=group, actor=alice, user=erin, approve=False, now=6.5, ref="r", max_members=10
    )

    assert approved.state == "joined" and approved.entries[0].payload["action"] == "approved"
    assert dave in approved.entries[0].payload["group"]["members"]
    assert {e.user: e.payload["state"] for e in rejected.entries} == {
        erin: "rejected",
        alice: "rejected",
        bob: "rejected",
    }
    assert store.join_requests(group=group, actor=alice) == []
    assert store.groups_of(erin) == []
    # resends change nothing more
    assert not store.decide_request(
        group=group, actor=bob, user=dave, approve=True, now=7.0, ref="a", max_members=10
    ).changed
    assert not store.decide_request(
        group=group, actor=alice, user=erin, approve=False, now=7.0, ref="r", max_members=10
    ).changed
    with pytest.raises(CommandError) as unknown:
        store.decide_request(
            group=group, actor=alice, user=erin, approve=True, now=8.0, ref="x", max_members=10
        )
    assert unknown.value.code is ErrorCode.NOT_FOUND


def test_a_member_cannot_decide_requests(store: Store) -> None:
    alice, bob, dave = users(store, "alice", "bob", "dave")
    group = _group(store, alice, bob)
    store.set_group_settings(group=group, actor=alice, changes={"approval": True}, now=3.0, ref="s")
    store.set_invite(group=group, actor=alice, code_hash=_code_of("c"), expires_at=None, now=3.0)
    store.join_by_invite(user=dave, code_hash=_code_of("c"), now=4.0, ref="j", max_members=10)

    with pytest.raises(CommandError) as refused:
        store.decide_request(
            group=group, actor=bob, user=dave, approve=True, now=5.0, ref="a", max_members=10
        )

    assert refused.value.code is ErrorCode.NOT_ADMIN
    assert [r.user for r in store.join_requests(group=group, actor=alice)] == [dave]


def test_a_media_upload_of_a_member_is_refused_where_only_admins_send(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    group = _group(store, alice, bob)
    store.check_recipient(bob, group)
    store.set_group_settings(group=group, actor=alice, changes={"only_admins_send": True}, now=3.0, ref="s")

    with pytest.raises(CommandError) as refused:
        store.check_recipient(bob, group)

    assert refused.value.code is ErrorCode.NOT_ADMIN
    store.check_recipient(alice, group)


def test_the_admin_reads_carry_the_settings_too(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    group = _group(store, alice, bob)
    store.set_group_settings(
        group=group, actor=alice, changes={"description": "d", "approval": True}, now=3.0, ref="s"
    )

    page = store.groups_page(after=group[:-1], limit=10_000)
    info = store.group_info(group)

    (listed,) = [g for g in page if g.id == group]
    assert listed.settings == {"description": "d", "approval": True}
    assert info is not None and info.settings == listed.settings


def test_the_icon_upload_is_checked_before_its_body_is_read(store: Store) -> None:
    alice, bob, eve = users(store, "alice", "bob", "eve")
    group = _group(store, alice, bob)

    store.check_group_admin(alice, group)
    codes = []
    for user, target in ((bob, group), (eve, group), (alice, "g:missing")):
        with pytest.raises(CommandError) as refused:
            store.check_group_admin(user, target)
        codes.append(refused.value.code)

    assert codes == [ErrorCode.NOT_ADMIN, ErrorCode.NOT_MEMBER, ErrorCode.UNKNOWN_GROUP]
