"""Validation of client commands against the wire contract's JSON Schema, with clear messages."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from client_sdk.contract import (
    BLOCK_COMMAND_TYPES,
    CHAT_COMMAND_TYPES,
    COMMAND_ID_RE,
    COMMAND_TYPES,
    GROUP_COMMAND_TYPES,
    GROUP_ID_RE,
    GROUP_SETTINGS_COMMAND_TYPES,
    MESSAGE_CHANGE_COMMAND_TYPES,
    PRIVACY_COMMAND_TYPES,
    PROFILE_COMMAND_TYPES,
    PUSH_COMMAND_TYPES,
    TIMER_COMMAND_TYPES,
    USER_ID_RE,
    VERSION,
    ErrorCode,
    load_schema,
)

__all__ = ["InvalidCommand", "parse_command"]

_SCHEMA_DEFS = {
    "send": "send",
    "receipt": "receipt_command",
    "typing": "typing_command",
    "sync": "sync",
    **{name: name for name in GROUP_COMMAND_TYPES | PUSH_COMMAND_TYPES | PROFILE_COMMAND_TYPES},
    "devices": "device_list",
    "react": "react",
    **{name: name for name in MESSAGE_CHANGE_COMMAND_TYPES},
    "forward": "forward",
    **{name: name for name in GROUP_SETTINGS_COMMAND_TYPES},
    **{name: name for name in TIMER_COMMAND_TYPES},
    **{name: name for name in CHAT_COMMAND_TYPES},
    "search": "search",
    "history": "history",
    **{name: name for name in PRIVACY_COMMAND_TYPES},
    **{name: name for name in BLOCK_COMMAND_TYPES - {"blocks"}},
    "blocks": "block_list",
}
_SENDER_FIELDS = ("from", "sender", "user")
_ABOUT_A_USER = frozenset({"block", "unblock", "report"})
"""Commands whose ``user`` names the user they are about (whom to block or report), not a sender."""
_DEFS = "#/$defs/"


class InvalidCommand(Exception):
    """A command that breaks the contract; ``ref`` is its id when one could be read."""

    def __init__(self, code: ErrorCode, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


@cache
def _validator(command_type: str) -> Draft202012Validator:
    """The schema of one command with its ``$ref``s written out: resolving them on every command
    through ``referencing`` was most of the validation time. A bare ``$ref`` (the contract has no
    other kind) validates and reports exactly as its target, so the messages do not change."""
    defs = load_schema()["$defs"]
    inlined = _inline({"$ref": f"#/$defs/{_SCHEMA_DEFS[command_type]}"}, defs, ())
    return Draft202012Validator({**inlined, "$defs": defs})


def _inline(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if len(node) == 1 and isinstance(ref, str) and ref.startswith(_DEFS):
        name = ref.removeprefix(_DEFS)
        if name in defs and name not in seen:  # a recursive definition keeps its reference
            return _inline(defs[name], defs, (*seen, name))
    return {key: _inline(value, defs, seen) for key, value in node.items()}


_SEND_KEYS = frozenset({"v", "type", "id", "to", "text"})
_RECEIPT_KEYS = frozenset({"v", "type", "id", "status", "messages"})
_STATUSES = frozenset({"delivered", "read"})


def _plainly_valid(kind: object, command: dict[str, Any]) -> bool:
    """True only for a ``send`` or ``receipt`` of version 1 that the schema accepts (most of the
    traffic), checked by hand: jsonschema was the largest cost left on the event loop. False means
    "check it step by step, then ask the schema", which also writes the error message, so refusals
    read the same as before. Its exact set of fields leaves no room for a sender field."""
    cid = command.get("id")
    if (
        command.get("v") != VERSION
        or type(command["v"]) is not int
        or type(cid) is not str
        or not COMMAND_ID_RE.fullmatch(cid)
    ):
        return False
    if kind == "send":
        to, text = command.get("to"), command.get("text")
        return (
            command.keys() == _SEND_KEYS
            and type(to) is str
            and (USER_ID_RE.fullmatch(to) is not None or GROUP_ID_RE.fullmatch(to) is not None)
            and type(text) is str
            and 1 <= len(text) <= 65536
        )
    if kind == "receipt":
        ids, status = command.get("messages"), command.get("status")
        return (
            command.keys() == _RECEIPT_KEYS
            and type(status) is str
            and status in _STATUSES
            and type(ids) is list
            and 1 <= len(ids) <= 500
            and all(type(i) is str and 1 <= len(i) <= 64 for i in ids)
            and len(set(ids)) == len(ids)
        )
    return False


def _loads(data: bytes | bytearray) -> Any:
    """JSON through orjson (about twice as fast on the commands of every message); what it refuses
    and the standard library reads (NaN, numbers past a double, UTF-16 and -32, deeper nesting) goes
    to the standard library. One difference is left: orjson reads an integer past 64 bits as a
    float, and no field of the contract takes one."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidCommand(ErrorCode.BAD_JSON, "payload is not UTF-8 JSON") from None


def parse_command(data: bytes | bytearray, *, max_bytes: int) -> dict[str, Any]:
    """The command in ``data``, or InvalidCommand saying what is wrong with it."""
    if len(data) > max_bytes:
        raise InvalidCommand(
            ErrorCode.TOO_LARGE, f"payload of {len(data)} bytes exceeds the limit of {max_bytes}"
        )
    command = _loads(data)
    if type(command) is dict and _plainly_valid(command.get("type"), command):
        return command  # the traffic of every chat message, without the steps below
    if not isinstance(command, dict):
        raise InvalidCommand(ErrorCode.BAD_REQUEST, "a command is a JSON object")
    raw_id = command.get("id")
    ref = raw_id if isinstance(raw_id, str) and COMMAND_ID_RE.fullmatch(raw_id) else None
    if "v" not in command:
        raise InvalidCommand(ErrorCode.BAD_REQUEST, "missing 'v' (the contract version, 1)", ref)
    if command["v"] != VERSION or isinstance(command["v"], bool):
        raise InvalidCommand(
            ErrorCode.UNSUPPORTED_VERSION, f"version {command['v']!r} is not supported (use {VERSION})", ref
        )
    kind = command.get("type")
    if not isinstance(kind, str) or kind not in COMMAND_TYPES:
        raise InvalidCommand(
            ErrorCode.UNKNOWN_TYPE,
            f"unknown command type {kind!r} (one of {', '.join(sorted(COMMAND_TYPES))})",
            ref,
        )
    for name in _SENDER_FIELDS:
        if name in command and not (name == "user" and kind in _ABOUT_A_USER):
            raise InvalidCommand(
                ErrorCode.BAD_REQUEST,
                f"field {name!r} is not allowed: the sender is always the authenticated user",
                ref,
            )
    validator = _validator(kind)
    if validator.is_valid(command):  # the common case, without collecting errors (about 5x faster)
        return command
    error = best_match(validator.iter_errors(command))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise InvalidCommand(ErrorCode.BAD_REQUEST, f"{where + ': ' if where else ''}{error.message}", ref)
    return command
