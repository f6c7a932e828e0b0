"""The web client's search box in a real browser against the real node: hits from
every chat with the chat's name and a snippet, a click opens the chat, and hostile strings are
only words. (A file of its own beside test_web_client.py, whose helpers it uses.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.harness import RunningNode, connect

if TYPE_CHECKING:  # selenium is imported by the browser fixture, which skips without it
    from tests.e2e.browser import Page

_HITS_JS = """
return [...document.querySelectorAll('#search-results .search-hit')].map((li) => ({
  chat: li.dataset.chat,
  name: li.querySelector('.search-chat').textContent,
  snippet: li.querySelector('.search-snippet').textContent,
  mark: li.querySelector('.search-snippet mark')?.textContent || '',
}));
"""


def _search(page: Page, query: str) -> None:
    box = page.element("#search-box")
    box.clear()
    box.send_keys(query)


def _hits(page: Page) -> list[dict[str, Any]]:
    return list(page.js(_HITS_JS))


def _status(page: Page) -> str:
    return str(page.js("return document.getElementById('search-status').textContent"))


def test_the_search_box_finds_messages_in_every_chat_and_a_hit_opens_its_chat(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    # Given bob and carol wrote to alice (through the SDK), and a group she is in talks too
    with connect(node, bob_id) as bob, connect(node, carol_id) as carol:
        bob.send(alice_id, "The Harbour café opens at nine").wait("sent", timeout=10)
        bob.send(alice_id, "unrelated news").wait("sent", timeout=10)
        carol.send(alice_id, "meet me at the harbour, <b>not</b> the station").wait("sent", timeout=10)
        group = carol.create_group("sailing", [alice_id, bob_id])
        bob.send(group.id, "harbourmaster says the wind drops tonight").wait("sent", timeout=10)

    alice = browser("alice")
    alice.login(f"{node.media_url}/", alice_id, alice_token)
    alice.wait("the chats show", lambda: alice.chat(carol_id) and alice.chat(group.id))

    # When alice types a word in the search box
    _search(alice, "harbo")
    hits = alice.wait("the hits show", lambda: _hits(alice) if len(_hits(alice)) == 3 else None)

    # Then she sees each hit with its chat and a snippet, the word marked, newest first; the chat
    # list gives way to them
    assert [h["chat"] for h in hits] == [group.id, carol_id, bob_id]
    assert hits[0]["name"] == "sailing" and hits[0]["snippet"].startswith(f"{bob_id}: harbourmaster")
    assert [h["mark"].lower() for h in hits] == ["harbo"] * 3
    assert "<b>not</b>" in hits[1]["snippet"]  # text, never HTML
    assert not alice.element("#chat-list").is_displayed()
    alice.shot("search-00-hits")

    # When she clicks carol's hit, carol's chat opens with the message
    alice.element(f'#search-results .search-hit[data-chat="{carol_id}"]').click()
    alice.wait("carol's chat opens", lambda: alice.title() == carol_id)
    alice.wait("the message shows", lambda: alice.message("meet me at the harbour, <b>not</b> the station"))
    alice.shot("search-01-opened")

    # When she searches for strings that are syntax to some engine, nothing breaks
    for hostile in ('"harbour" OR *', "$where", "NEAR(", "')--"):
        _search(alice, hostile)
        alice.wait(f"{hostile!r} is answered", lambda: _status(alice) != "Searching…")
    _search(alice, '"harbour" (café*')
    alice.wait("a quoted query is just its words", lambda: [h["chat"] for h in _hits(alice)] == [bob_id])

    # And a word nobody wrote finds nothing, and clearing the box brings the chat list back
    _search(alice, "zeppelin")
    alice.wait("nothing found", lambda: _status(alice) == "No messages found")
    alice.element("#search-box").clear()
    alice.element("#search-box").send_keys(" \b")
    alice.wait("the chat list is back", lambda: alice.element("#chat-list").is_displayed())
    assert alice.errors() == []
