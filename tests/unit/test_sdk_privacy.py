"""Privacy on the client side, without a broker: the commands are checked before they go, a change
and the live answer of ``privacy_get`` answer their request, invitations are kept until answered,
joined or expired, and presence may come without ``last_seen``."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import GroupEvent, GroupInvitation, PrivacyChanged, PrivacySettings
from client_sdk._events import PrivacyAnswer, parse_presence
from client_sdk._privacy import group_invite_command, privacy_get_command, privacy_set_command
from client_sdk.contract import load_schema
from tests.unit.test_sdk_session import ME, commands, new_session, synced

GID = "g:7f3a9c"
SETTINGS = {
    "last_seen": "contacts",
    "online": "everyone",
    "read_receipts": False,
    "photo": "nobody",
    "about": "everyone",
    "groups": "contacts",
}


def conforms(payload: dict[str, Any]) -> dict[str, Any]:
    Draft202012Validator(load_schema()).validate(payload)
    return payload


def invitation(cursor: int, state: str = "invited", ref: str | None = None) -> dict[str, Any]:
    return conforms(
        {
            "v": 1,
            "type": "group_invitation",
            "cursor": cursor,
            "ref": ref,
            "state": state,
            "group": {"id": GID, "name": "Climbing"},
            "by": "bob",
            "expires": 1000.0,
            "ts": 10.0,
        }
    )


def test_commands_carry_only_the_settings_given_and_refuse_bad_values() -> None:
    assert conforms(privacy_set_command(id="c1", last_seen="nobody", online=None, read_receipts=False)) == {
        "v": 1,
        "type": "privacy_set",
        "id": "c1",
        "last_seen": "nobody",
        "read_receipts": False,
    }
    with pytest.raises(ValueError, match="at least one"):
        privacy_set_command(id="c1", photo=None)
    with pytest.raises(ValueError, match="photo"):
        privacy_set_command(id="c1", photo="friends")
    with pytest.raises(ValueError, match="read_receipts"):
        privacy_set_command(id="c1", read_receipts="no")
    assert conforms(privacy_get_command(id="c2"))["type"] == "privacy_get"
    assert conforms(group_invite_command(id="c3", group=GID, accept=False))["type"] == "group_invite_decline"
    with pytest.raises(ValueError, match="group id"):
        group_invite_command(id="c3", group="bob", accept=True)


def test_a_change_answers_its_request_and_is_an_event() -> None:
    session = new_session()
    synced(session)
    request, effects = session.request(lambda id: privacy_set_command(id=id, photo="nobody"), PrivacyChanged)
    (sent,) = commands(effects)

    event = conforms({"v": 1, "type": "privacy", "cursor": 1, "ref": sent["id"], "settings": SETTINGS})
    out = session.on_inbox(event, now=1.0)

    changed = PrivacyChanged(settings=PrivacySettings(**SETTINGS), ref=sent["id"], cursor=1)
    assert out.events == [changed]
    assert request.wait(timeout=0) == changed


def test_the_live_answer_of_privacy_get_answers_its_request_only() -> None:
    session = new_session()
    synced(session)
    request, effects = session.request(lambda id: privacy_get_command(id=id), PrivacyAnswer)
    (sent,) = commands(effects)

    out = session.on_inbox(
        conforms({"v": 1, "type": "privacy", "ref": sent["id"], "settings": SETTINGS}), now=1.0
    )

    assert out.events == [] and session.cursor == 0  # live: no place in the inbox order
    assert request.wait(timeout=0).settings == PrivacySettings(**SETTINGS)


def test_invitations_are_kept_until_declined_joined_or_expired() -> None:
    session = new_session()
    synced(session)
    (event,) = session.on_inbox(invitation(1), now=1.0).events
    assert isinstance(event, GroupInvitation) and (event.group, event.name, event.by) == (
        GID,
        "Climbing",
        "bob",
    )
    assert session.group_invitations(now=999.0) == [event]
    assert session.group_invitations(now=1000.0) == []  # expired

    # a decline (from any device) drops it
    session.on_inbox(invitation(2, "declined", ref="x"), now=2.0)
    assert session.group_invitations(now=3.0) == []

    # and so does joining the group
    session.on_inbox(invitation(3), now=3.0)
    joined = conforms(
        {
            "v": 1,
            "type": "group",
            "cursor": 4,
            "ref": "y",
            "action": "joined",
            "by": ME,
            "affected": [ME],
            "group": {"id": GID, "name": "Climbing", "members": ["bob", ME], "admins": ["bob"]},
            "ts": 4.0,
        }
    )
    (group,) = session.on_inbox(joined, now=4.0).events
    assert isinstance(group, GroupEvent) and group.action == "joined" and group.invited == ()
    assert session.group_invitations(now=5.0) == []


def test_an_adders_group_event_lists_the_invited() -> None:
    session = new_session()
    synced(session)
    added = conforms(
        {
            "v": 1,
            "type": "group",
            "cursor": 1,
            "ref": "c9",
            "action": "added",
            "by": ME,
            "affected": [],
            "invited": ["dave"],
            "group": {"id": GID, "name": "Climbing", "members": [ME], "admins": [ME]},
            "ts": 4.0,
        }
    )
    (event,) = session.on_inbox(added, now=1.0).events
    assert isinstance(event, GroupEvent) and event.invited == ("dave",) and event.affected == ()


def test_presence_without_last_seen_is_read_as_none() -> None:
    payload = conforms({"v": 1, "type": "presence", "user": "bob", "status": "online"})
    assert parse_presence(payload).last_seen is None
    assert parse_presence({**payload, "last_seen": 5.0}).last_seen == 5.0
