"""The SDK's public surface is exactly what the package exports."""

from __future__ import annotations

import importlib.resources
import pkgutil
import subprocess
import sys
import typing

import client_sdk
import client_sdk.aio
from client_sdk import (
    AuthenticationError,
    Blocking,
    CommandRejected,
    ConnectError,
    Event,
    GroupEvent,
    GroupInvitation,
    JoinRequest,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageHidden,
    MessagesExpired,
    MqchatError,
    NotConnected,
    Presence,
    PresenceForbidden,
    PresenceRefused,
    PrivacyChanged,
    ProfileChanged,
    Reaction,
    ReadState,
    Receipt,
    Sent,
    ServerError,
    SyncReset,
    Timeout,
    TimerChanged,
    Typing,
)
from client_sdk.contract import Status


def test_all_is_pinned() -> None:
    # When the package's exports are listed, Then they are exactly these (a change here is an API change)
    assert sorted(client_sdk.__all__) == [
        "AuthenticationError",
        "Blocking",
        "Chat",
        "ChatPage",
        "Client",
        "CommandRejected",
        "ConnectError",
        "Device",
        "Event",
        "Group",
        "GroupEvent",
        "GroupInvitation",
        "GroupInvite",
        "HistoryPage",
        "JoinRequest",
        "Media",
        "Message",
        "MessageDeleted",
        "MessageEdited",
        "MessageHidden",
        "MessagesExpired",
        "MqchatError",
        "NotConnected",
        "OutgoingMessage",
        "Presence",
        "PresenceForbidden",
        "PresenceRefused",
        "PrivacyChanged",
        "PrivacySettings",
        "Profile",
        "ProfileChanged",
        "Reaction",
        "ReadState",
        "Receipt",
        "ReceiptState",
        "Reply",
        "SearchResults",
        "Sent",
        "ServerError",
        "Status",
        "SyncReset",
        "Timeout",
        "TimerChanged",
        "Typing",
    ]
    assert all(hasattr(client_sdk, name) for name in client_sdk.__all__)


def test_only_the_wire_contract_and_the_asyncio_client_are_public_modules() -> None:
    # When the package's modules are listed, Then all but the contract the server shares and the
    # asyncio client are private
    modules = {module.name for module in pkgutil.iter_modules(client_sdk.__path__)}
    assert {name for name in modules if not name.startswith("_")} == {"aio", "contract"}
    assert "_client" in modules  # the listing does see the private ones
    aio_modules = {module.name for module in pkgutil.iter_modules(client_sdk.aio.__path__)}
    assert all(name.startswith("_") for name in aio_modules) and "_client" in aio_modules


def test_aio_all_is_pinned() -> None:
    # When the asyncio package's exports are listed, Then they are the blocking package's, with
    # its own Client and OutgoingMessage (whose waits are awaited) and the very same other types
    assert sorted(client_sdk.aio.__all__) == sorted(client_sdk.__all__)
    for name in client_sdk.aio.__all__:
        same = getattr(client_sdk.aio, name) is getattr(client_sdk, name)
        assert same is (name not in {"Client", "OutgoingMessage"}), name


def test_aio_without_aiomqtt_names_the_extra() -> None:
    # Given aiomqtt is not installed, When an app imports client_sdk.aio, Then the error says how to get it
    code = (
        "import sys; sys.modules['aiomqtt'] = None\n"
        "try:\n    import client_sdk.aio\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'mqchat[aio]'" in out


def test_neither_the_sdk_nor_the_node_imports_the_asyncio_client() -> None:
    # When the blocking SDK and the node are imported, Then aiomqtt and client_sdk.aio are not
    code = (
        "import sys, client_sdk, broker.node\n"
        "print(sorted(m for m in sys.modules if m.startswith(('aiomqtt', 'client_sdk.aio'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


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
        ProfileChanged,
        MessageDeleted,
        Reaction,
        MessageEdited,
        MessageHidden,
        JoinRequest,
        TimerChanged,
        MessagesExpired,
        PrivacyChanged,
        GroupInvitation,
        Blocking,
        ReadState,
        Presence,
        PresenceRefused,
        Typing,
        ServerError,
        SyncReset,
    }


def test_status_is_the_contract_status() -> None:
    # Then the exported Status is the contract's, ordered sent < delivered < read
    assert client_sdk.Status is Status
    assert Status.SENT < Status.DELIVERED < Status.READ


def test_the_package_is_typed() -> None:
    # Then the py.typed marker ships with the package
    assert importlib.resources.files("client_sdk").joinpath("py.typed").is_file()
