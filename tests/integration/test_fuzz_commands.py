"""Every command type of the wire contract, fuzzed through the real broker (hypothesis).

Commands near the valid shape of each type in the JSON Schema, with hostile values swapped in,
fields dropped or added and the version changed, go to a real node as plain MQTT publishes.
The schema is the oracle: a command it refuses gets exactly one ``error`` with a validation code;
one it accepts gets its answer (``sent``, ``ok``, ``group``, ``sync_page``... or an error the
contract names, never ``internal``). After each command the connection still answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from client_sdk.contract import COMMAND_TYPES, ErrorCode, dm_conversation_id, load_schema
from tests.harness import RunningNode, node_settings
from tests.plain import PlainClient

BOB, ALICE, GROUP, FOREIGN, MESSAGE = "$BOB", "$ALICE", "$GROUP", "$FOREIGN", "$MESSAGE"
CHAT, OTHERS_CHAT = "$CHAT", "$OTHERS_CHAT"
"""Alice and bob's 1-on-1 conversation, and bob and carol's (for ``history``)."""
"""Stand-ins for the users, groups and message of the running node, filled in per example."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
users = st.sampled_from([BOB, ALICE, "nobody-here"])
groups = st.sampled_from([GROUP, FOREIGN, "g:nothere"])
members = st.lists(users, min_size=1, max_size=3, unique=True)
names = st.text(min_size=1, max_size=100)
audiences = st.sampled_from(["everyone", "contacts", "nobody"])
hostile = json_values | st.sampled_from(["", "b b", "x" * 65, "g:", "g:" + "a" * 70, [], [""] * 3])

FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "send": {
        "to": users | groups,
        "text": st.text(max_size=40),
        "reply_to": st.sampled_from([MESSAGE, "0" * 32]),
    },
    "receipt": {
        "status": st.sampled_from(["delivered", "read"]),
        "messages": st.lists(st.sampled_from([MESSAGE, "0" * 32]), min_size=1, max_size=2, unique=True),
    },
    "typing": {"to": users | groups, "state": st.sampled_from(["composing", "paused"])},
    "sync": {"after": st.integers(0, 2**40), "limit": st.integers(1, 1000)},
    "group_create": {"name": names, "members": members},
    "group_add": {"group": groups, "members": members},
    "group_remove": {"group": groups, "members": members},
    "group_promote": {"group": groups, "members": members},
    "group_rename": {"group": groups, "name": names},
    "group_leave": {"group": groups},
    "group_list": {},
    "push_register": {
        "token": st.text(min_size=1, max_size=20),
        "platform": st.sampled_from(["android", "ios", "web"]),
        "preview": st.booleans(),
    },
    "push_unregister": {"token": st.text(min_size=1, max_size=20)},
    "profile_set": {"name": st.text(max_size=70), "about": st.text(max_size=150)},
    "profile_get": {"users": members},
    "devices": {},
    "react": {
        "message": st.sampled_from([MESSAGE, "0" * 32]),
        "emoji": st.sampled_from(["👍", "❤️", "👨‍👩‍👧", "", "ok", "👍👍", "🏽"]),
    },
    "forward": {"message": st.sampled_from([MESSAGE, "0" * 32]), "to": users | groups},
    "edit": {"message": st.sampled_from([MESSAGE, "0" * 32]), "text": st.text(max_size=40)},
    "delete": {"message": st.sampled_from([MESSAGE, "0" * 32]), "for": st.sampled_from(["everyone", "me"])},
    # group settings, invite links and join requests
    "group_set": {
        "group": groups,
        "description": st.text(max_size=40),
        "only_admins_send": st.booleans(),
        "approval": st.booleans(),
        "remove_icon": st.booleans(),
    },
    "group_invite_link": {"group": groups, "revoke": st.booleans(), "expires_in": st.integers(1, 31536000)},
    "group_join": {"code": st.sampled_from(["A" * 22, "not-a-code", "x"])},
    "group_requests": {"group": groups},
    "group_approve": {"group": groups, "member": users},
    "group_reject": {"group": groups, "member": users},
    "timer_set": {
        "to": users | groups,
        "seconds": st.sampled_from([0, 86_400, 604_800, 7_776_000, 5, 31_536_000]),
    },
    "timer_get": {"to": users | groups},
    "chat_list": {
        "limit": st.integers(-5, 500),
        "before": st.sampled_from(["c1.WzEuMCwiZG06YTpiIl0", "c1.!!", "nope"])
        | st.text(min_size=1, max_size=30),
    },
    "mark_read": {
        "conversation": st.sampled_from([f"dm:{ALICE}:{BOB}", GROUP, FOREIGN, "dm:x:y"])
        | st.text(min_size=1, max_size=20),
        "seq": st.integers(0, 2**40),
    },
    "history": {
        "conversation": groups | st.sampled_from([CHAT, OTHERS_CHAT, "dm:b:a", "dm:zz:zzz"]),
        "before": st.integers(0, 2**40),
        "after": st.integers(0, 2**40),
        "limit": st.integers(-5, 10_000),
    },
    **{  # privacy settings and group invitations
        "privacy_set": {
            **dict.fromkeys(("last_seen", "online", "photo", "about", "groups"), audiences),
            "read_receipts": st.booleans(),
        },
        "privacy_get": {},
        "group_invite_accept": {"group": groups},
        "group_invite_decline": {"group": groups},
    },
    "block": {"user": users},
    "unblock": {"user": users},
    "blocks": {},
    "report": {
        "user": users,
        "messages": st.lists(st.sampled_from([MESSAGE, "0" * 32]), max_size=2, unique=True),
        "reason": st.text(max_size=40),
        "block": st.booleans(),
    },
    # search: strings that are syntax to some engine, a conversation of others
    "search": {
        "query": st.text(min_size=1, max_size=200)
        | st.sampled_from(['"a" OR *', "NEAR(a b)", "$where", "x:*"]),
        "conversation": st.sampled_from([GROUP, FOREIGN, "dm:a:b"]),
        "before": st.sampled_from(["0" * 32, "f" * 32, "not-a-cursor"]),
        "limit": st.integers(-5, 500),
    },
}
"""Each command type and well-formed values of the fields it may carry (a test checks these are the
schema's); well-formed is not welcome: users, groups and messages that do not exist are among them."""

ids = st.sampled_from(["valid"] * 6 + ["missing", "", "a b", "x" * 65, 42, None])
changes = st.sampled_from(
    ["none"] * 6 + ["hostile"] * 4 + ["drop", "extra", "from", "version", "unknown_type"]
)
VALIDATION_CODES = {"bad_json", "bad_request", "unsupported_version", "unknown_type", "too_large"}
SHAPE_ONLY_CODES = {"bad_json", "unsupported_version", "unknown_type", "too_large"}
"""Codes about the shape of a command; bad_request also answers a well-formed but wrong request."""
ANSWERS = {"sent", "ok", "group", "groups", "sync_page", "profile", "profiles", "devices"}
ANSWERS |= {"reaction", "edited", "deleted", "hidden", "group_invite", "group_requests", "group_request"}
ANSWERS |= {"timer", "timer_info"}
ANSWERS |= {"chats", "read"}  # the chat list and read state
ANSWERS |= {"history"}
ANSWERS |= {"privacy", "group_invitation"}
ANSWERS |= {"blocking", "blocks"}
ANSWERS |= {"search_results"}


def schema_commands() -> set[str]:
    """The command types the JSON Schema defines (its ``command`` is one of them)."""
    defs = load_schema()["$defs"]
    refs = [choice["$ref"].rsplit("/", 1)[1] for choice in defs["command"]["oneOf"]]
    return {defs[ref]["properties"]["type"]["const"] for ref in refs}


def test_every_command_type_of_the_schema_is_fuzzed() -> None:
    assert set(FIELDS) == schema_commands() == set(COMMAND_TYPES)
    defs = load_schema()["$defs"]
    for ref in (choice["$ref"].rsplit("/", 1)[1] for choice in defs["command"]["oneOf"]):
        properties = set(defs[ref]["properties"]) - {"v", "type", "id"}
        assert set(FIELDS[defs[ref]["properties"]["type"]["const"]]) == properties, ref


@st.composite
def commands(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A command (stand-ins not yet filled in) and the id to match answers with."""
    kind = draw(st.sampled_from(sorted(FIELDS)))
    command: dict[str, Any] = {"v": 1, "type": kind}
    cid = f"fz-{uuid.uuid4().hex}"
    chosen = draw(ids)
    if chosen != "missing":
        command["id"] = cid if chosen == "valid" else chosen
    for name, values in FIELDS[kind].items():
        command[name] = draw(values)
    change = draw(changes)
    if change == "hostile" and FIELDS[kind]:
        command[draw(st.sampled_from(sorted(FIELDS[kind])))] = draw(hostile)
    elif change == "drop" and len(command) > 1:
        del command[draw(st.sampled_from(sorted(command)))]
    elif change == "extra":
        command[draw(st.sampled_from(["extra", "sender", "user", "ts"]))] = draw(json_values)
    elif change == "from":
        command["from"] = BOB
    elif change == "version":
        command["v"] = draw(st.sampled_from([0, 2, "1", None, 1.5, True]))
    elif change == "unknown_type":
        command["type"] = draw(st.sampled_from(["dance", "", "SEND", "message", "sent", 7]))
    return command, cid


class World:
    """A node, alice (who sends the fuzz) and what her commands may name."""

    def __init__(self, node: RunningNode) -> None:
        self.node = node
        alice_id, alice_token = node.add_user("alice")
        bob_id, bob_token = node.add_user("bob")
        carol_id, _ = node.add_user("carol")
        self.alice = PlainClient(node.port, alice_id, alice_token)
        self.bob = PlainClient(node.port, bob_id, bob_token)
        self.alice.inbox()
        self.bob.inbox()
        self.bob.send(alice_id, "hello")
        message_id = self.alice.expect_type("message")["message"]["id"]
        mine = self._create(self.alice, "alice's", [bob_id])
        foreign = self._create(self.bob, "bob's", [carol_id])
        self.names = {BOB: bob_id, ALICE: alice_id, GROUP: mine, FOREIGN: foreign, MESSAGE: message_id}
        self.names |= {
            CHAT: dm_conversation_id(alice_id, bob_id),
            OTHERS_CHAT: dm_conversation_id(bob_id, carol_id),
        }
        self.validator = Draft202012Validator({"$ref": "#/$defs/command", "$defs": load_schema()["$defs"]})

    @staticmethod
    def _create(client: PlainClient, name: str, members: list[str]) -> str:
        cid = uuid.uuid4().hex
        client.publish({"v": 1, "type": "group_create", "id": cid, "name": name, "members": members})
        return str(client.expect_type("group", ref=cid)["group"]["id"])

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.names.get(value, value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value

    def answers_to(self, command: dict[str, Any], cid: str) -> list[dict[str, Any]]:
        """Publish ``command``, then a ``group_list``: commands of a connection are handled in order,
        so once that is answered every answer to ``command`` is in. Those answers (errors without a
        ref count: a command whose id cannot be read is answered without one)."""
        self.alice.publish(command)
        sentinel = f"sentinel-{uuid.uuid4().hex}"
        self.alice.publish({"v": 1, "type": "group_list", "id": sentinel})
        self.alice.expect_type("groups", ref=sentinel)
        ref = command.get("id")
        return [
            payload
            for _, payload in self.alice.drain(0.0)
            if isinstance(payload, dict)
            and (
                payload.get("ref") == cid
                or (payload.get("type") == "error" and payload.get("ref") in (None, ref))
            )
        ]

    def close(self) -> None:
        self.alice.close()
        self.bob.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    path: Path = tmp_path_factory.mktemp("fuzz-commands")
    node = RunningNode(node_settings(path, **{"limits.commands_burst": 100_000})).start()
    world = World(node)
    try:
        yield world
    finally:
        world.close()
        node.close()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands())
def test_fuzzed_commands_get_the_answer_the_schema_calls_for(
    world: World, drawn: tuple[dict[str, Any], str]
) -> None:
    raw, cid = drawn
    command = world.fill(raw)
    schema_valid = world.validator.is_valid(command)
    event(
        f"{command['type'] if command.get('type') in FIELDS else 'unknown type'}: "
        f"{'valid' if schema_valid else 'refused'}"
    )

    answers = world.answers_to(command, cid)

    codes = [a.get("code") for a in answers if a.get("type") == "error"]
    assert all(code in {c.value for c in ErrorCode} for code in codes), answers
    assert ErrorCode.INTERNAL.value not in codes, answers
    if not schema_valid:
        assert len(answers) == 1 and codes and codes[0] in VALIDATION_CODES, (command, answers)
        if command.get("id") == cid:
            assert answers[0]["ref"] == cid
    elif command["type"] == "typing":
        assert answers == [] or codes, answers  # typing is answered only when refused
    else:
        assert len(answers) == 1 and answers[0]["type"] in ANSWERS | {"error"}, (command, answers)
        assert not set(codes) & SHAPE_ONLY_CODES, (command, answers)
