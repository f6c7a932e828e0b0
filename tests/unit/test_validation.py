"""Command validation: anything off the wire is either a valid command or an InvalidCommand."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.validation import InvalidCommand, parse_command
from client_sdk.contract import ErrorCode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
command_like = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, "1", None, True]),
        "type": st.sampled_from(["send", "receipt", "typing", "sync", "group_create", "group_add", "x", 3]),
        "id": st.text(max_size=70) | st.integers(),
    },
    optional={
        "to": st.text(max_size=70) | json_values,
        "text": st.text(max_size=30) | json_values,
        "status": st.sampled_from(["delivered", "read", "seen"]),
        "messages": st.lists(st.text(max_size=10), max_size=3) | json_values,
        "after": st.integers() | json_values,
        "group": st.text(max_size=20),
        "members": st.lists(st.text(max_size=10), max_size=3),
        "name": st.text(max_size=10),
        "from": st.text(max_size=5),
    },
)


def _check(data: bytes) -> None:
    """Either a valid command, or an InvalidCommand with a code, a message and a readable ref."""
    outcome: dict[str, object] | InvalidCommand
    try:
        outcome = parse_command(data, max_bytes=4096)
    except InvalidCommand as exc:
        outcome = exc
    if isinstance(outcome, InvalidCommand):
        assert isinstance(outcome.code, ErrorCode)
        assert outcome.message
        assert outcome.ref is None or isinstance(outcome.ref, str)
    else:
        assert outcome["v"] == 1
        assert "from" not in outcome


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_validation(data: bytes) -> None:
    _check(data)


@settings(max_examples=500, deadline=None)
@given(command_like)
def test_command_shaped_json_is_accepted_or_refused_with_a_code(command: dict[str, object]) -> None:
    _check(json.dumps(command).encode())


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    _check(b"[" * 100_000 + b"]" * 100_000)
    _check(b'{"v":1,"type":"send","id":"a","to":"bob","text":' + b"[" * 50_000 + b"]" * 50_000 + b"}")


def _reference_error(command: dict[str, object]) -> str | None:
    """What the contract's schema, ``$ref``s resolved by jsonschema itself, says about ``command``."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    from broker.validation import _SCHEMA_DEFS
    from client_sdk.contract import load_schema

    name = _SCHEMA_DEFS[str(command["type"])]
    validator = Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": load_schema()["$defs"]})
    error = best_match(validator.iter_errors(command))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


@settings(max_examples=400, deadline=None)
@given(command_like)
def test_schema_errors_are_the_ones_the_contract_schema_gives(command: dict[str, object]) -> None:
    # Given a command that passes the checks before the schema (version, type, no sender field)
    command = {**command, "v": 1}
    command.pop("from", None)
    if command["type"] not in ("send", "receipt", "typing", "sync", "group_create", "group_add"):
        command["type"] = "send"
    # When it is parsed, Then it is refused with the message the unoptimised schema gives, or accepted
    expected = _reference_error(command)
    outcome: object
    try:
        outcome = parse_command(json.dumps(command).encode(), max_bytes=4096)
    except InvalidCommand as exc:
        outcome = exc
    if expected is None:
        assert outcome == command
    else:
        assert isinstance(outcome, InvalidCommand)
        assert (outcome.code, outcome.message) == (ErrorCode.BAD_REQUEST, expected)


near_sends = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 1.0, True]),
        "type": st.just("send"),
        "id": st.sampled_from(["c1", "a:b-c.d_e", "x" * 64, "x" * 65, "", "a b", "c1\n", 7]),
        "to": st.sampled_from(["bob", "g:team", "g:", "g:a:b", "b@b", "bob\n", "x" * 64, "x" * 65, "", 3]),
        "text": st.sampled_from(["hi", "", "é", "x" * 65536, "x" * 65537, None, ["hi"]]),
    },
    optional={"extra": st.just(1), "ts": st.just(1.5)},
)
near_receipts = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1.0]),
        "type": st.just("receipt"),
        "id": st.sampled_from(["r1", "", "r 1"]),
        "status": st.sampled_from(["delivered", "read", "seen", "", None, ["read"], {"a": 1}]),
        "messages": st.one_of(
            st.lists(st.sampled_from(["m1", "m2", "m3", "", "x" * 64, "x" * 65, 5, None]), max_size=4),
            st.sampled_from([["m"] * 2, [f"m{i}" for i in range(500)], [f"m{i}" for i in range(501)]]),
            st.sampled_from(["m1", None, {"m1": 1}]),
        ),
    },
    optional={"extra": st.just(1)},
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(near_sends, near_receipts))
def test_the_hand_check_of_send_and_receipt_accepts_only_what_the_schema_accepts(
    command: dict[str, object],
) -> None:
    from broker.validation import _plainly_valid

    if _plainly_valid(str(command["type"]), command):
        assert _reference_error(command) is None, command


def test_what_the_sdk_sends_takes_the_hand_checked_path() -> None:
    from broker.validation import _plainly_valid

    send = {"v": 1, "type": "send", "id": "c-1", "to": "bob", "text": "hello"}
    group_send = {**send, "to": "g:team_1"}
    receipt = {"v": 1, "type": "receipt", "id": "r-1", "status": "read", "messages": ["m1", "m2"]}
    assert all(_plainly_valid(str(c["type"]), c) for c in (send, group_send, receipt))


def test_what_orjson_refuses_is_still_read_as_the_standard_library_reads_it() -> None:
    # UTF-16 and NaN: orjson refuses both, json reads them; the command is judged as before
    command = {"v": 1, "type": "send", "id": "c1", "to": "bob", "text": "hi"}
    assert parse_command(json.dumps(command).encode("utf-16"), max_bytes=1000) == command
    with pytest.raises(InvalidCommand) as refused:  # read, then refused by the schema: not "bad JSON"
        parse_command(b'{"v":1,"type":"send","id":"c1","to":"bob","text":NaN}', max_bytes=1000)
    assert (refused.value.code, refused.value.ref) == (ErrorCode.BAD_REQUEST, "c1")
    with pytest.raises(InvalidCommand) as broken:
        parse_command(b'{"v":1,', max_bytes=1000)
    assert broken.value.code == ErrorCode.BAD_JSON
