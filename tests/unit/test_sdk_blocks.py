"""Blocking and reports in the I/O-free SDK core: the commands, the ``Blocking`` event in cursor
order, and the requests that wait for their answers (``blocking`` or ``ok``; ``blocks``)."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk import Blocking
from client_sdk._commands import block_command, blocks_command, report_command, unblock_command
from client_sdk._events import BlockList, Ok, parse_inbox
from tests.unit.test_sdk_session import ME, commands, new_session, synced


def blocking_event(
    cursor: int, *, user: str = "bob", blocked: bool = True, ref: str | None = None
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "blocking",
        "cursor": cursor,
        "ref": ref,
        "user": user,
        "blocked": blocked,
        "ts": 5.0,
    }


def test_the_commands_are_the_contract_s() -> None:
    assert block_command(id="c1", user="bob") == {"v": 1, "type": "block", "id": "c1", "user": "bob"}
    assert unblock_command(id="c2", user="bob")["type"] == "unblock"
    assert blocks_command(id="c3") == {"v": 1, "type": "blocks", "id": "c3"}
    assert report_command(id="c4", user="bob") == {"v": 1, "type": "report", "id": "c4", "user": "bob"}
    full = report_command(id="c5", user="bob", messages=["m1", "m1", "m2"], reason="spam", block=True)
    assert full == {
        "v": 1,
        "type": "report",
        "id": "c5",
        "user": "bob",
        "messages": ["m1", "m2"],
        "reason": "spam",
        "block": True,
    }


@pytest.mark.parametrize(
    "build",
    [
        lambda: block_command(id="c1", user=""),
        lambda: block_command(id="c1", user="a b"),
        lambda: report_command(id="c1", user="bob", messages=[f"m{i}" for i in range(51)]),
        lambda: report_command(id="c1", user="bob", messages=[""]),
        lambda: report_command(id="c1", user="bob", reason="x" * 1001),
    ],
)
def test_a_malformed_command_never_leaves_the_client(build: Any) -> None:
    with pytest.raises(ValueError, match=r"user|message|reason|report"):
        build()


def test_a_blocking_event_reaches_the_app_and_answers_its_request() -> None:
    session = new_session()
    synced(session)
    request, effects = session.request(lambda id: block_command(id=id, user="bob"), Ok)
    (command,) = commands(effects)

    out = session.on_inbox(blocking_event(1, ref=command["id"]), now=1.0)

    assert out.events == [Blocking(user="bob", blocked=True, ref=command["id"], ts=5.0, cursor=1)]
    assert request.done and request.wait(timeout=0) == Ok(ref=command["id"])


def test_another_devices_blocking_event_is_only_an_event() -> None:
    session = new_session()
    synced(session)
    out = session.on_inbox(blocking_event(1, blocked=False), now=1.0)
    (event,) = out.events
    assert isinstance(event, Blocking) and event.ref is None and not event.blocked
    assert event.user != ME


def test_the_blocks_answer_resolves_its_request() -> None:
    session = new_session()
    synced(session)
    request, effects = session.request(lambda id: blocks_command(id=id), BlockList)
    (command,) = commands(effects)

    session.on_inbox({"v": 1, "type": "blocks", "ref": command["id"], "users": ["bob", "carol"]}, now=1.0)

    assert request.wait(timeout=0) == BlockList(ref=command["id"], users=("bob", "carol"))
    with pytest.raises(ValueError, match="users"):
        parse_inbox({"v": 1, "type": "blocks", "ref": "x", "users": [3]})
