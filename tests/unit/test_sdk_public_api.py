"""The SDK's public surface is exactly what the package exports."""

from __future__ import annotations

import importlib.resources
import pkgutil
import typing

import client_sdk
from client_sdk import (
    AuthenticationError,
    CommandRejected,
    ConnectError,
    Event,
    GroupEvent,
    Message,
    MqchatError,
    NotConnected,
    Presence,
    PresenceForbidden,
    PresenceRefused,
    Receipt,
    Sent,
    ServerError,
    Timeout,
    Typing,
)
from client_sdk.contract import Status


def test_all_is_pinned() -> None:
    # When the package's exports are listed, Then they are exactly these (a change here is an API change)
    assert sorted(client_sdk.__all__) == [
        "AuthenticationError",
        "Client",
        "CommandRejected",
        "ConnectError",
        "Event",
        "Group",
        "GroupEvent",
        "Media",
        "Message",
        "MqchatError",
        "NotConnected",
        "OutgoingMessage",
        "Presence",
        "PresenceForbidden",
        "PresenceRefused",
        "Receipt",
        "Sent",
        "ServerError",
        "Status",
        "Timeout",
        "Typing",
    ]
    assert all(hasattr(client_sdk, name) for name in client_sdk.__all__)


def test_only_the_wire_contract_is_a_public_module() -> None:
    # When the package's modules are listed, Then all but the contract the server shares are private
    modules = {module.name for module in pkgutil.iter_modules(client_sdk.__path__)}
    assert {name for name in modules if not name.startswith("_")} == {"contract"}
    assert "_client" in modules  # the listing does see the private ones


def test_every_error_has_one_root() -> None:
    # Then the tree documented in _errors.py holds
    assert issubclass(ConnectError, MqchatError)
    assert issubclass(AuthenticationError, ConnectError)
    assert issubclass(NotConnected, MqchatError)
    assert issubclass(CommandRejected, MqchatError)
    assert issubclass(PresenceForbidden, MqchatError)
    assert issubclass(Timeout, MqchatError)
    assert issubclass(Timeout, TimeoutError)


def test_event_is_the_union_of_the_event_types() -> None:
    # Then Event names every event type an iterator can yield
    assert set(typing.get_args(Event)) == {
        Message,
        Sent,
        Receipt,
        GroupEvent,
        Presence,
        PresenceRefused,
        Typing,
        ServerError,
    }


def test_status_is_the_contract_status() -> None:
    # Then the exported Status is the contract's, ordered sent < delivered < read
    assert client_sdk.Status is Status
    assert Status.SENT < Status.DELIVERED < Status.READ


def test_the_package_is_typed() -> None:
    # Then the py.typed marker ships with the package
    assert importlib.resources.files("client_sdk").joinpath("py.typed").is_file()
