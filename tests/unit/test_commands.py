"""The typed commands of the workers (``workers/commands.py``) are the JSON Schema's commands.

One class per command type of the schema, with the schema's properties as its fields (required
ones without a default, optional ones with one) and types that fit; and every command the schema
accepts, once the ingest has accepted it, reads into its class with every value kept. A change
of the schema without a change of the classes fails here.
"""

from __future__ import annotations

import json
import keyword
import typing
from collections.abc import Sequence
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from broker.validation import parse_command
from client_sdk.contract import COMMAND_TYPES, Status, load_schema
from workers.commands import COMMANDS, typed_command

WIRE_ONLY = {"v", "type"}
"""Properties of every command that are not fields: the version (there is one) and the type (the class)."""
SENDER = "user"
"""The field that is not a property: the authenticated user who sent the command."""
OTHER_USER = "target"
"""The field of a ``user`` property (the user a command is about: block, report): ``user`` is taken."""


def field(prop: str) -> str:
    """The field of a property: a Python keyword (``for``) gets a trailing underscore (PEP 8)."""
    if prop == SENDER:
        return OTHER_USER
    return f"{prop}_" if keyword.iskeyword(prop) else prop


def prop(name: str) -> str:
    """The property of a field (see ``field``)."""
    if name == OTHER_USER:
        return SENDER
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def defs() -> dict[str, Any]:
    return typing.cast(dict[str, Any], load_schema()["$defs"])


def schema_commands() -> dict[str, dict[str, Any]]:
    """Each command type the schema defines (its ``command`` is one of them), with its definition."""
    refs = [choice["$ref"].rsplit("/", 1)[1] for choice in defs()["command"]["oneOf"]]
    return {defs()[ref]["properties"]["type"]["const"]: defs()[ref] for ref in refs}


def resolved(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs()[node["$ref"].rsplit("/", 1)[1]]
    return node


def annotation_for(node: dict[str, Any]) -> Any:
    """The Python type a field with this schema has."""
    node = resolved(node)
    if "oneOf" in node:
        options = {annotation_for(choice) for choice in node["oneOf"]}
        assert len(options) == 1, node
        return options.pop()
    if "enum" in node:
        return Literal[tuple(node["enum"])]
    if node["type"] == "array":
        return Sequence[annotation_for(node["items"])]  # type: ignore[misc]
    return {"string": str, "integer": int, "boolean": bool}[node["type"]]


def test_there_is_one_class_for_each_command_type_of_the_schema() -> None:
    assert set(COMMANDS) == set(schema_commands()) == set(COMMAND_TYPES)


@pytest.mark.parametrize("kind", sorted(COMMAND_TYPES))
def test_each_class_has_the_properties_of_its_command_as_fields(kind: str) -> None:
    command, cls = schema_commands()[kind], COMMANDS[kind]
    assert cls._fields[0] == SENDER
    fields = set(cls._fields) - {SENDER}
    assert fields == {field(p) for p in set(command["properties"]) - WIRE_ONLY}
    required = {name for name in fields if name not in cls._field_defaults}
    assert required == {field(p) for p in set(command["required"]) - WIRE_ONLY}


@pytest.mark.parametrize("kind", sorted(COMMAND_TYPES))
def test_each_field_has_the_type_of_its_property(kind: str) -> None:
    command, cls = schema_commands()[kind], COMMANDS[kind]
    hints = typing.get_type_hints(cls)
    assert hints[SENDER] is str
    for name in set(cls._fields) - {SENDER}:
        expected, hint = annotation_for(command["properties"][prop(name)]), hints[name]
        if cls._field_defaults.get(name, ...) is None:
            expected = expected | None
        if hint is Status:  # an enum of status labels, parsed
            assert all(Status.parse(label) for label in typing.get_args(expected)), name
        else:
            assert hint == expected, name


def strategy(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema accepts, for the kinds of schema a command uses (short ones)."""
    node = resolved(node)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "oneOf" in node:
        return st.one_of([strategy(choice) for choice in node["oneOf"]])
    kind = node["type"]
    if kind == "object":
        properties = {name: strategy(value) for name, value in node["properties"].items()}
        required = set(node["required"])
        return st.fixed_dictionaries(
            {name: s for name, s in properties.items() if name in required},
            optional={name: s for name, s in properties.items() if name not in required},
        )
    if kind == "string":
        low, high = node.get("minLength", 0), min(node.get("maxLength", 40), 40)
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True).filter(lambda s: low <= len(s) <= high)
        return st.text(min_size=low, max_size=high)
    if kind == "integer":
        return st.integers(node.get("minimum"), node.get("maximum", 2**40))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(
            strategy(node["items"]),
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", 4), 4),
            unique=node.get("uniqueItems", False),
        )
    raise AssertionError(f"no strategy for {node}")


valid_commands = st.one_of([strategy(command) for command in schema_commands().values()])
validator = Draft202012Validator({"$ref": "#/$defs/command", "$defs": defs()})


@settings(max_examples=400, deadline=None)
@given(valid_commands)
def test_every_command_the_ingest_accepts_reads_into_its_class_with_its_values(
    command: dict[str, Any],
) -> None:
    assert validator.is_valid(command)  # the strategy makes what the schema accepts
    accepted = parse_command(json.dumps(command).encode(), max_bytes=1 << 20)

    typed = typed_command("alice", accepted)

    cls = COMMANDS[command["type"]]
    assert type(typed) is cls
    assert typed.user == "alice"
    for name in set(cls._fields) - {SENDER}:
        value = getattr(typed, name)
        if prop(name) not in command:
            assert value == cls._field_defaults[name], name
        elif isinstance(value, Status):
            assert value.label == command[prop(name)]
        else:
            assert value == command[prop(name)], name


def test_every_command_class_has_a_handler_in_the_pipeline() -> None:
    """The pipeline runs commands through a table by class: a command class without an entry would
    fail at its first use, so every class of ``COMMANDS`` must have one (and nothing else)."""
    from workers.pipeline import _HANDLERS

    assert set(_HANDLERS) == set(COMMANDS.values())
