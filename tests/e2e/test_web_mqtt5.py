"""The web client on MQTT 5 (its default when the server speaks it) and on 3.1.1 (``?mqtt=3.1.1``),
in Chromium against the real node."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from tests.harness import RunningNode

if TYPE_CHECKING:  # selenium is imported by the browser fixture, which skips without it
    from tests.e2e.browser import Page


async def _levels(node: RunningNode) -> dict[str, int]:
    """The MQTT protocol level of each connected client, as the broker decoded its CONNECT."""
    return {s.client_id: s.protocol_level for s in node.node.broker.connected_sessions()}


def _web_level(node: RunningNode, user: str) -> int | None:
    levels = node.call(_levels(node))
    return next((level for client, level in levels.items() if client.startswith(f"{user}/web-")), None)


def test_an_mqtt_5_page_and_a_3_1_1_page_chat_with_ticks_and_typing(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice, bob = browser("alice"), browser("bob")

    # Given alice's page on the server's default (MQTT 5) and bob's asked for 3.1.1
    alice.login(f"{node.media_url}/", alice_id, alice_token)
    bob.login(f"{node.media_url}/?mqtt=3.1.1", bob_id, bob_token)
    assert _web_level(node, alice_id) == 5
    assert _web_level(node, bob_id) == 4

    # When alice writes to bob, he gets it, and she sees it delivered, then read
    alice.new_chat(bob_id)
    alice.send_text("hello over MQTT 5")
    bob.wait("bob's list shows alice's chat", lambda: (bob.chat(alice_id) or {}).get("unread"))
    bob.open_chat(alice_id)
    assert bob.wait("bob sees the message", lambda: bob.message("hello over MQTT 5"))["mine"] is False
    assert alice.wait_ticks("hello over MQTT 5", "read")["tick"] == "✓✓"

    # When bob types and answers, alice (MQTT 5) sees him typing, then his message, and reads it
    bob.type("and back")
    alice.wait("alice sees bob typing", lambda: alice.status_line() == "typing…")
    bob.send_text(" over 3.1.1", shown="and back over 3.1.1")
    alice.wait("alice gets bob's answer", lambda: alice.message("and back over 3.1.1"))
    bob.wait_ticks("and back over 3.1.1", "read")
    alice.wait("bob shows online", lambda: alice.status_line() == "online")
    alice.shot("chat-mqtt5")
    bob.shot("chat-mqtt311")
    assert alice.errors() == [] and bob.errors() == []


@pytest.mark.parametrize("query", ["", "?mqtt=3.1.1"], ids=["mqtt5", "mqtt311"])
def test_a_wrong_token_is_refused_on_either_version(
    node: RunningNode, browser: Callable[[str], Page], query: str
) -> None:
    # Given MQTT 5's CONNACK refusal is a reason code (0x86), not 3.1.1's return code 4
    alice_id, _ = node.add_user("alice")
    page = browser("mallory")
    page.login(f"{node.media_url}/{query}", alice_id, "mqc_not-her-token", wait=False)

    # Then both say the same to the user
    error = page.wait("the login form says why", lambda: page.element("#login-error").text)
    assert error == "Wrong user id or token"
    assert page.js("return document.body.dataset.view") == "login"


def test_the_page_chooses_its_mqtt_version_from_the_server_and_its_address(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    """connection.js's choice: the address's ``?mqtt=`` first, then what config.json offers."""
    page = browser("probe")
    page.driver.get(f"{node.media_url}/")
    cases = [
        ([4, 5], None),
        ([4, 5], "3.1.1"),
        ([4, 5], "4"),
        ([4, 5], "5"),
        ([4], None),  # a server that speaks 3.1.1 only
        (None, None),  # a server older than `mqtt_versions`
        ([4], "5"),  # asked for: tried even so (the CONNACK then says if the server refuses it)
        ([4, 5], "6"),  # not a version: the server's choice
    ]
    chosen = page.driver.execute_async_script(
        """
        const [cases, done] = arguments;
        import('/web/js/connection.js').then(({ mqttVersion }) =>
          done(cases.map(([offered, asked]) => mqttVersion(offered, asked))));
        """,
        cases,
    )
    assert chosen == [5, 4, 4, 5, 4, 4, 5, 5]
