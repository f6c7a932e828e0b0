"""Group settings, invite links and join requests on the client side, without a broker: the
commands the SDK builds are the contract's, the answers are matched by ``ref`` (a ``group`` event,
a ``group_request`` event or ``ok``), and the group cache carries the settings."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk import Group, GroupEvent, GroupInvite, JoinRequest
from client_sdk._commands import (
    group_invite_link_command,
    group_join_command,
    group_request_command,
    group_set_command,
)
from client_sdk._events import JoinRequestList, Ok, parse_group
from tests.unit.test_sdk_groups import CLIMBING, GID, conforms, group_event
from tests.unit.test_sdk_session import ME, new_session, synced

ICON = {"key": "gi/abc.jpg", "type": "image/jpeg", "size": 10, "width": 64, "height": 64}


def test_the_commands_are_the_contracts() -> None:
    for command in [
        group_set_command(id="c1", group=GID, description="Sundays", only_admins_send=True, approval=False),
        group_set_command(id="c2", group=GID, remove_icon=True),
        group_invite_link_command(id="c3", group=GID, expires_in=60),
        group_invite_link_command(id="c4", group=GID, revoke=True),
        group_join_command(id="c5", code="A" * 22),
        group_request_command(kind="group_requests", id="c6", group=GID),
        group_request_command(kind="group_approve", id="c7", group=GID, member="bob"),
        group_request_command(kind="group_reject", id="c8", group=GID, member="bob"),
    ]:
        conforms(command)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: group_set_command(id="c", group=GID), "at least one"),
        (lambda: group_set_command(id="c", group=GID, description="x" * 513), "description"),
        (lambda: group_set_command(id="c", group="bob", approval=True), "group id"),
        (lambda: group_invite_link_command(id="c", group=GID, expires_in=0), "expires_in"),
        (lambda: group_join_command(id="c", code="has spaces"), "invite code"),
        (lambda: group_request_command(kind="group_approve", id="c", group=GID), "member"),
    ],
)
def test_bad_arguments_raise_before_anything_is_sent(build: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_a_snapshot_carries_the_settings_that_are_set() -> None:
    plain = parse_group(CLIMBING)
    assert (plain.description, plain.icon, plain.only_admins_send, plain.approval) == (
        None,
        None,
        False,
        False,
    )

    full = parse_group(
        {**CLIMBING, "description": "Sundays", "icon": ICON, "only_admins_send": True, "approval": True}
    )

    assert full.description == "Sundays" and full.only_admins_send and full.approval
    assert full.icon is not None and full.icon.key == ICON["key"]
    with pytest.raises(ValueError, match="approval"):
        parse_group({**CLIMBING, "approval": "yes"})


def test_a_setting_change_is_answered_by_its_group_event_and_cached() -> None:
    session = new_session()
    synced(session)
    request, _ = session.request(lambda id: group_set_command(id=id, group=GID, approval=True), Ok)

    event = group_event(1, request.id, action="settings", group={**CLIMBING, "approval": True})
    session.on_inbox(event, now=0.0)

    assert request.wait(timeout=0).ref == request.id
    answer = session.take_group_answer(request.id)
    assert isinstance(answer, GroupEvent) and answer.action == "settings"
    cached = session.group(GID)
    assert isinstance(cached, Group) and cached.approval
    assert session.take_group_answer(request.id) is None  # taken once


def test_a_join_that_waits_for_approval_is_answered_by_its_request() -> None:
    session = new_session()
    synced(session)
    request, _ = session.request(lambda id: group_join_command(id=id, code="A" * 22), Ok)
    pending = conforms(
        {
            "v": 1,
            "type": "group_request",
            "cursor": 1,
            "ref": request.id,
            "group": GID,
            "name": "Climbing",
            "user": ME,
            "state": "pending",
            "by": None,
            "ts": 5.0,
        }
    )

    effects = session.on_inbox(pending, now=0.0)

    request.wait(timeout=0)
    answer = session.take_group_answer(request.id)
    assert isinstance(answer, JoinRequest) and (answer.state, answer.group, answer.cursor) == (
        "pending",
        GID,
        1,
    )
    assert effects.events == [answer]  # the app sees it too


def test_live_answers_resolve_their_requests() -> None:
    session = new_session()
    synced(session)
    link, _ = session.request(lambda id: group_invite_link_command(id=id, group=GID), GroupInvite)
    listed, _ = session.request(
        lambda id: group_request_command(kind="group_requests", id=id, group=GID), JoinRequestList
    )

    session.on_inbox(
        conforms(
            {
                "v": 1,
                "type": "group_invite",
                "ref": link.id,
                "group": GID,
                "code": "A" * 22,
                "expires_at": None,
            }
        ),
        now=0.0,
    )
    session.on_inbox(
        conforms(
            {
                "v": 1,
                "type": "group_requests",
                "ref": listed.id,
                "group": GID,
                "requests": [{"user": "dave", "ts": 3.0}],
            }
        ),
        now=0.0,
    )

    assert link.wait(timeout=0) == GroupInvite(ref=link.id, group=GID, code="A" * 22, expires_at=None)
    assert listed.wait(timeout=0).requests == (("dave", 3.0),)
