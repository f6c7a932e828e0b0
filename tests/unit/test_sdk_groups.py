"""Groups on the client side (docs/protocol.md "Groups"): group calls matched with their answers by
``ref``, the group cache, group messages and per-member receipts, all without a broker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from jsonschema import Draft202012Validator
from paho.mqtt.enums import MQTTErrorCode

from client_sdk import (
    Client,
    CommandRejected,
    Group,
    GroupEvent,
    Message,
    NotConnected,
    Receipt,
    ServerError,
    Status,
    Timeout,
)
from client_sdk._base import State
from client_sdk._commands import group_create_command, group_list_command, group_members_command
from client_sdk._events import GroupList
from client_sdk._pending import PendingRequest, PendingRequests
from client_sdk._session import Session
from client_sdk.contract import load_schema
from tests.unit.test_sdk_session import (
    ME,
    commands,
    connect,
    error_event,
    new_session,
    page,
    receipt_event,
    synced,
)

GID = "g:7f3a9c"
CLIMBING = {"id": GID, "name": "Climbing", "members": [ME, "bob", "carol"], "admins": [ME]}


def conforms(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload, after checking it against the published schema (so the tests speak the real contract)."""
    Draft202012Validator(load_schema()).validate(payload)
    return payload


def group_event(
    cursor: int,
    ref: str | None,
    *,
    action: str = "created",
    by: str = ME,
    affected: list[str] | None = None,
    group: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return conforms(
        {
            "v": 1,
            "type": "group",
            "cursor": cursor,
            "ref": ref,
            "action": action,
            "by": by,
            "affected": [ME, "bob", "carol"] if affected is None else affected,
            "group": CLIMBING if group is None else group,
            "ts": 1764100002.0,
        }
    )


def groups_answer(ref: str, groups: list[dict[str, Any]]) -> dict[str, Any]:
    return conforms({"v": 1, "type": "groups", "ref": ref, "groups": groups})


def group_message(cursor: int, message_id: str, *, sender: str = "bob") -> dict[str, Any]:
    stored = {
        "id": message_id,
        "conversation": GID,
        "seq": cursor,
        "from": sender,
        "to": GID,
        "text": "hello everyone",
        "ts": 1764100000.0,
    }
    return conforms({"v": 1, "type": "message", "cursor": cursor, "message": stored})


def as_group(snapshot: dict[str, Any]) -> Group:
    return Group(
        id=snapshot["id"],
        name=snapshot["name"],
        members=tuple(snapshot["members"]),
        admins=tuple(snapshot["admins"]),
    )


def create(session: Session) -> tuple[PendingRequest[GroupEvent], dict[str, Any]]:
    """Ask the session to create Climbing; returns the pending request and the published command."""
    request, effects = session.request(
        lambda id: group_create_command(id=id, name="Climbing", members=["bob", "carol"]), GroupEvent
    )
    (command,) = commands(effects)
    return request, command


# -- matching answers to requests -----------------------------------------------------------------------


def test_a_group_change_is_answered_by_the_group_event_with_its_ref() -> None:
    # Given a synced session that asked to create a group
    session = new_session()
    synced(session)
    request, command = create(session)

    # When the server's group event with ref = the command id arrives
    effects = session.on_inbox(group_event(1, command["id"]), now=0.0)

    # Then the command went out as QoS 1, the request is answered with the group,
    # the app sees the event too, and the group is cached
    assert command == conforms(
        {"v": 1, "type": "group_create", "id": command["id"], "name": "Climbing", "members": ["bob", "carol"]}
    )
    answer = request.wait(timeout=0)
    assert answer.group == as_group(CLIMBING)
    assert effects.events == [answer]
    assert effects.cursor_advanced
    assert session.group(GID) == as_group(CLIMBING)


def test_the_answer_counts_only_once_the_sequencer_processes_it() -> None:
    # Given a request, and its answer arriving live at cursor 2 while cursor 1 was lost
    session = new_session()
    synced(session)
    request, command = create(session)
    held = session.on_inbox(group_event(2, command["id"]), now=1.0)

    # Then the answer waits behind the gap: not answered yet
    assert held.events == []
    with pytest.raises(Timeout):
        request.wait(timeout=0)

    # When the gap's sync returns cursors 1 and 2
    (gap_sync,) = commands(session.on_tick(now=1.3), "sync")
    session.on_inbox(page(gap_sync["id"], [group_message(1, "m-1"), group_event(2, command["id"])]), now=1.4)

    # Then the request is answered
    assert request.wait(timeout=0).cursor == 2


def test_an_answer_missed_while_offline_comes_with_the_sync() -> None:
    # Given a request whose answer was published while the connection was down
    session = new_session()
    synced(session)
    request, command = create(session)
    session.on_disconnected()

    # When the client reconnects and the sync returns the group event
    sync_id = connect(session, now=5.0)
    session.on_inbox(page(sync_id, [group_event(1, command["id"])]), now=5.1)

    # Then the request is answered
    assert request.wait(timeout=0).group.id == GID


def test_group_events_of_other_commands_do_not_answer_but_still_count() -> None:
    # Given a pending request
    session = new_session()
    synced(session)
    request, _ = create(session)

    # When group events arrive for a change bob made (no ref) and for another device's command
    renamed = {**CLIMBING, "name": "Bouldering"}
    effects = session.on_inbox(group_event(1, None, action="renamed", by="bob", group=renamed), now=0.0)
    effects += session.on_inbox(group_event(2, "other-device-cmd", action="renamed", group=renamed), now=0.0)

    # Then the request still waits, the app sees both events and the cache has the new name
    with pytest.raises(Timeout):
        request.wait(timeout=0)
    assert [(e.ref, e.action) for e in effects.events if isinstance(e, GroupEvent)] == [
        (None, "renamed"),
        ("other-device-cmd", "renamed"),
    ]
    group = session.group(GID)
    assert group is not None
    assert group.name == "Bouldering"


def test_an_error_with_the_ref_rejects_the_request() -> None:
    # Given a request to add a member to a group where alice is not an admin
    session = new_session()
    synced(session)
    request, effects = session.request(
        lambda id: group_members_command(kind="group_add", id=id, group=GID, members=["dave"]), GroupEvent
    )
    (command,) = commands(effects)

    # When the server refuses it
    refusal = conforms({**error_event(command["id"], "not_admin"), "message": "only admins add members"})
    reported = session.on_inbox(refusal, now=0.0)

    # Then the wait raises CommandRejected naming the code and the command, and the app sees the error
    with pytest.raises(CommandRejected) as raised:
        request.wait(timeout=1)
    assert (raised.value.code, raised.value.ref) == ("not_admin", command["id"])
    assert reported.events == [
        ServerError(ref=command["id"], code="not_admin", message="only admins add members")
    ]


def test_group_list_is_answered_by_the_groups_event_with_its_ref() -> None:
    # Given a group_list request
    session = new_session()
    synced(session)
    request, effects = session.request(lambda id: group_list_command(id=id), GroupList)
    (command,) = commands(effects)

    # When the live answer arrives
    answered = session.on_inbox(groups_answer(command["id"], [CLIMBING]), now=0.0)

    # Then the request holds the groups, they are cached, and no event (nor cursor) is involved
    assert command == conforms({"v": 1, "type": "group_list", "id": command["id"]})
    assert request.wait(timeout=0).groups == (as_group(CLIMBING),)
    assert session.group(GID) == as_group(CLIMBING)
    assert answered.events == []
    assert not answered.cursor_advanced


def test_another_devices_group_list_answer_fills_the_cache_only() -> None:
    # Given a pending group_list request
    session = new_session()
    synced(session)
    request, _ = session.request(lambda id: group_list_command(id=id), GroupList)

    # When the answer to another device's group_list arrives
    session.on_inbox(groups_answer("other-device-cmd", [CLIMBING]), now=0.0)

    # Then the group is cached, but our request still waits for its own answer
    assert session.group(GID) == as_group(CLIMBING)
    with pytest.raises(Timeout):
        request.wait(timeout=0)


def test_an_answer_of_the_wrong_kind_does_not_answer() -> None:
    # Given a pending group_create request
    session = new_session()
    synced(session)
    request, command = create(session)

    # When a (buggy) groups answer carries its ref
    session.on_inbox(groups_answer(command["id"], [CLIMBING]), now=0.0)

    # Then the request still waits for its group event, which then answers it
    with pytest.raises(Timeout):
        request.wait(timeout=0)
    session.on_inbox(group_event(1, command["id"]), now=0.0)
    assert request.wait(timeout=0).action == "created"


def test_a_request_given_up_ignores_its_late_answer_which_is_still_an_event() -> None:
    # Given a request whose caller timed out and gave up
    session = new_session()
    synced(session)
    request, command = create(session)
    with pytest.raises(Timeout, match=command["id"]):
        request.wait(timeout=0.01)
    session.requests.discard(request.id)

    # When the answer arrives late
    effects = session.on_inbox(group_event(1, command["id"]), now=0.0)

    # Then it reaches the app as an event and updates the cache
    assert [type(e).__name__ for e in effects.events] == ["GroupEvent"]
    assert session.group(GID) == as_group(CLIMBING)


def test_a_bad_argument_sends_and_registers_nothing() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When a group command is built from a bad argument, Then ValueError and nothing is pending
    with pytest.raises(ValueError, match="members"):
        session.request(lambda id: group_create_command(id=id, name="Climbing", members=[]), GroupEvent)
    assert len(session.requests) == 0


# -- the cache ------------------------------------------------------------------------------------------


def test_the_cache_follows_every_change_including_leaving() -> None:
    # Given a session that saw Climbing created
    session = new_session()
    synced(session)
    session.on_inbox(group_event(1, None, by="bob"), now=0.0)

    # When carol is promoted, and then alice leaves
    promoted = {**CLIMBING, "admins": [ME, "carol"]}
    left = {**CLIMBING, "members": ["bob", "carol"], "admins": ["carol"]}
    session.on_inbox(group_event(2, None, action="promoted", affected=["carol"], group=promoted), now=0.0)
    after_promote = session.group(GID)
    session.on_inbox(group_event(3, None, action="left", affected=[ME], group=left), now=0.0)

    # Then the cache had carol as admin, and now holds the group as it is without alice
    assert after_promote is not None
    assert after_promote.admins == (ME, "carol")
    assert session.group(GID) == as_group(left)
    assert session.group("g:unknown") is None


# -- group messages and receipts ------------------------------------------------------------------------


def test_a_group_message_from_another_member_is_acknowledged_as_delivered() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When a group message from bob and one alice sent from another device arrive
    effects = session.on_inbox(group_message(1, "m-1"), now=0.0)
    effects += session.on_inbox(group_message(2, "m-2", sender=ME), now=0.0)

    # Then only bob's is acknowledged, and both reach the app as messages of the group
    assert [(r["status"], r["messages"]) for r in commands(effects, "receipt")] == [("delivered", ["m-1"])]
    assert [(m.id, m.group) for m in effects.events if isinstance(m, Message)] == [("m-1", GID), ("m-2", GID)]


def test_a_group_message_moves_forward_only_when_every_member_got_there() -> None:
    # Given a message alice sent to the group, stored by the server
    session = new_session()
    synced(session)
    outgoing, effects = session.send(to=GID, text="hello everyone", id="a-1", now=0.0)
    stored = group_message(1, "m-1", sender=ME)["message"]
    session.on_inbox(
        conforms({"v": 1, "type": "sent", "cursor": 1, "ref": "a-1", "message": stored}), now=0.0
    )

    def receipt(cursor: int, by: str, status: str, *, everyone: bool) -> list[Any]:
        payload = {**receipt_event(cursor, "m-1", status, by=by, all=everyone), "conversation": GID}
        return session.on_inbox(conforms(payload), now=0.0).events

    # When bob's delivered receipt arrives
    events = receipt(2, "bob", "delivered", everyone=False)

    # Then the send named the group, and bob shows delivered while the message is still only sent
    assert commands(effects) == [{"v": 1, "type": "send", "id": "a-1", "to": GID, "text": "hello everyone"}]
    assert (outgoing.status, outgoing.receipts) == (Status.SENT, {"bob": Status.DELIVERED})

    # When carol's delivered receipt completes it for everyone, and then bob reads it
    events += receipt(3, "carol", "delivered", everyone=True)
    events += receipt(4, "bob", "read", everyone=False)

    # Then the message is delivered (not read: carol has not read it), bob shows read,
    # and the app saw each member's receipt
    assert outgoing.status is Status.DELIVERED
    assert outgoing.receipts == {"bob": Status.READ, "carol": Status.DELIVERED}
    assert [(r.by, r.status, r.all) for r in events if isinstance(r, Receipt)] == [
        ("bob", Status.DELIVERED, False),
        ("carol", Status.DELIVERED, True),
        ("bob", Status.READ, False),
    ]


# -- the bookkeeping of pending requests ----------------------------------------------------------------


def test_a_command_id_cannot_wait_twice() -> None:
    # Given a pending request c-1
    requests = PendingRequests()
    requests.add(PendingRequest(id="c-1", kind="group_leave", answer_type=GroupEvent))

    # When another request reuses the id, Then it is refused
    with pytest.raises(ValueError, match="already pending"):
        requests.add(PendingRequest(id="c-1", kind="group_list", answer_type=GroupList))


def test_a_wait_wakes_up_when_another_thread_answers() -> None:
    # Given a pending request and a thread that answers it shortly
    requests = PendingRequests()
    request = PendingRequest(id="c-13", kind="group_list", answer_type=GroupList)
    requests.add(request)
    answer = GroupList(ref="c-13", groups=())
    timer = threading.Timer(0.05, requests.resolve, args=("c-13", answer))
    timer.start()

    # When the caller waits
    try:
        result = request.wait(timeout=5)
    finally:
        timer.join()

    # Then it wakes up with the answer, and nothing is left pending
    assert result is answer
    assert "c-13" not in requests


def test_closing_wakes_every_waiter_with_not_connected() -> None:
    # Given a request awaited by a thread
    requests = PendingRequests()
    request = PendingRequest(id="c-1", kind="group_leave", answer_type=GroupEvent)
    requests.add(request)
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            request.wait(timeout=5)
        except NotConnected as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()

    # When the client closes
    time.sleep(0.05)
    requests.close()
    thread.join(5)

    # Then the wait ended with NotConnected
    assert len(errors) == 1


# -- the Client's group calls, over a stand-in for paho -------------------------------------------------


class FakeMqtt:
    """Stands in for the paho client of an open, connected :class:`Client`: records what is published
    and lets a test play the server by answering on the inbox (as paho's network thread would)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.published: list[tuple[str, dict[str, Any], int]] = []
        self.server: Callable[[dict[str, Any]], list[dict[str, Any]]] = lambda command: []

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> SimpleNamespace:
        command = json.loads(payload)
        self.published.append((topic, command, qos))
        answers = self.server(command)
        if answers:
            # Answer from another thread once the caller released the client's lock, like the network.
            threading.Timer(0.02, self.deliver, args=answers).start()
        return SimpleNamespace(rc=MQTTErrorCode.MQTT_ERR_SUCCESS)

    def deliver(self, *payloads: dict[str, Any]) -> None:
        for payload in payloads:
            message = mqtt.MQTTMessage(topic=f"chat/{ME}/in".encode())
            message.payload = json.dumps(payload).encode()
            self.client._on_message(self, None, message)  # type: ignore[arg-type]

    def disconnect(self) -> None:
        pass

    def loop_stop(self) -> None:
        pass


@pytest.fixture
def chat() -> Iterator[tuple[Client, FakeMqtt]]:
    """A client in the state a successful connect leaves it in, its network replaced by FakeMqtt."""
    client = Client(user=ME, token="t")
    fake = FakeMqtt(client)
    client._mqtt = fake  # type: ignore[assignment]
    client._state = State.OPEN
    client._session.on_connected()
    yield client, fake
    client.close()


def test_create_group_publishes_the_command_and_returns_the_new_group(chat: tuple[Client, FakeMqtt]) -> None:
    # Given a server that answers group_create with the created group
    client, fake = chat
    fake.server = lambda command: [group_event(1, command["id"])]

    # When alice creates a group
    group = client.create_group("Climbing", ["bob", "carol"])

    # Then the command went to her outbox topic with QoS 1, she gets the group,
    # it is cached, and the change is also an event
    [(topic, command, qos)] = fake.published
    assert (topic, command["type"], command["members"], qos) == (
        "chat/alice/out",
        "group_create",
        ["bob", "carol"],
        1,
    )
    assert group == as_group(CLIMBING)
    assert client.group(GID) == group
    assert [type(e).__name__ for e in client.events(timeout=0.1)] == ["GroupEvent"]


def test_each_group_call_sends_its_command_and_returns_the_group_after_it(
    chat: tuple[Client, FakeMqtt],
) -> None:
    # Given a server that answers every group change with a group event (named after the command here)
    client, fake = chat
    cursors = iter(range(1, 100))
    fake.server = lambda command: [
        group_event(next(cursors), command["id"], group={**CLIMBING, "name": command["type"]})
    ]
    climbing = as_group(CLIMBING)

    # When alice uses every group call (by Group or by id)
    results = [
        client.add_members(climbing, ["dave"]),
        client.remove_members(GID, ["dave"]),
        client.promote(GID, ["bob"]),
        client.rename_group(climbing, "Bouldering"),
        client.leave_group(GID),
    ]

    # Then each published its command about the group and returned the group from its own answer
    sent = [command for _, command, _ in fake.published]
    assert [(c["type"], c["group"]) for c in sent] == [
        ("group_add", GID),
        ("group_remove", GID),
        ("group_promote", GID),
        ("group_rename", GID),
        ("group_leave", GID),
    ]
    assert all(conforms(c) for c in sent)
    assert [group.name for group in results] == [c["type"] for c in sent]
    assert (sent[0]["members"], sent[3]["name"]) == (["dave"], "Bouldering")


def test_groups_returns_the_list_the_server_answers(chat: tuple[Client, FakeMqtt]) -> None:
    # Given a server with alice in two groups
    client, fake = chat
    other = {"id": "g:b0b", "name": "Family", "members": [ME, "bob"], "admins": ["bob"]}
    fake.server = lambda command: [groups_answer(command["id"], [CLIMBING, other])]

    # When alice lists her groups
    groups = client.groups(timeout=5)

    # Then she gets both, and both are cached
    assert groups == [as_group(CLIMBING), as_group(other)]
    assert client.group("g:b0b") == as_group(other)


def test_a_refused_group_call_raises_command_rejected(chat: tuple[Client, FakeMqtt]) -> None:
    # Given a server that refuses with not_member
    client, fake = chat
    fake.server = lambda command: [conforms(error_event(command["id"], "not_member"))]

    # When alice tries to leave a group she is not in, Then CommandRejected says why
    with pytest.raises(CommandRejected, match="not_member") as raised:
        client.leave_group(GID)
    assert raised.value.code == "not_member"


def test_an_unanswered_group_call_times_out_and_a_late_answer_is_an_event(
    chat: tuple[Client, FakeMqtt],
) -> None:
    # Given a server that does not answer
    client, fake = chat

    # When alice renames a group with a short timeout, Then Timeout (a builtin TimeoutError too)
    with pytest.raises(TimeoutError):
        client.rename_group(GID, "Bouldering", timeout=0.05)

    # When the answer arrives after all, Then it is just an event, and the cache takes it
    [(_, command, _)] = fake.published
    fake.deliver(group_event(1, command["id"], action="renamed"))
    assert [type(e).__name__ for e in client.events(timeout=0.1)] == ["GroupEvent"]
    assert client.group(GID) == as_group(CLIMBING)


def test_group_calls_need_a_live_connection(chat: tuple[Client, FakeMqtt]) -> None:
    # Given an open client whose connection just dropped
    client, fake = chat
    client._on_disconnect(fake, None, None, None, None)  # type: ignore[arg-type]

    # When alice makes a group call, Then NotConnected at once and nothing is published (not queued)
    with pytest.raises(NotConnected):
        client.create_group("Climbing", ["bob"])
    with pytest.raises(NotConnected):
        client.groups()
    assert fake.published == []


def test_closing_the_client_ends_a_waiting_group_call(chat: tuple[Client, FakeMqtt]) -> None:
    # Given a group call waiting for a server that does not answer
    client, _ = chat
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.groups(timeout=5)
        except NotConnected as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()

    # When the client is closed
    time.sleep(0.05)
    client.close()
    caller.join(5)

    # Then the call ended with NotConnected
    assert len(errors) == 1
