"""The web client's history against the real node, in a real browser: a new browser whose inbox
the server already pruned (it gets ``sync_reset``, not a full sync) opens a chat and shows its
last 50 messages from ``history``, scrolling up loads the older pages down to the first, messages
show as they are now (a deleted one as deleted), and live messages carry on below them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tests.harness import RunningNode, node_settings, wait_until

if TYPE_CHECKING:  # selenium is imported by the browser fixture, which skips without it
    from tests.e2e.browser import Page

RETENTION = {"retention.inbox_days": 60 / 86_400, "retention.interval": 0.2}


def test_a_new_browser_reads_a_chat_from_history_and_scrolls_back_to_the_first_message(
    tmp_path: Path, browser: Callable[[str], Page]
) -> None:
    node = RunningNode(node_settings(tmp_path, **RETENTION)).start()
    try:
        alice_id, alice_token = node.add_user("alice")
        bob_id, bob_token = node.add_user("bob")
        store = node.node.store
        assert store is not None
        # Given 120 messages between them from an hour ago, the 7th deleted since, and bob's inbox
        # pruned by retention (his new browser cannot sync them)
        texts = [f"old message {n:03d}" for n in range(1, 121)]
        ids = []
        for n, text in enumerate(texts):
            sender, to = (alice_id, bob_id) if n % 2 == 0 else (bob_id, alice_id)
            stored = store.accept_message(
                sender=sender, command_id=uuid.uuid4().hex, recipient=to, text=text, now=time.time() - 3600
            )
            ids.append(stored.message.id)
        store.delete_for_everyone(ids[6], by=alice_id, now=time.time() - 3500)
        assert wait_until(lambda: store.inbox_floor(bob_id) >= 120, 20)
        shown = [("This message was deleted" if n == 6 else t) for n, t in enumerate(texts)]

        # When bob logs in on a new browser and opens the chat with alice
        url = f"{node.media_url}/"
        bob = browser("bob")
        bob.login(url, bob_id, bob_token)
        bob.new_chat(alice_id)

        # Then the last 50 messages show, in order, from history
        last = bob.wait("the last 50 messages show", lambda: (t := bob.texts()) and len(t) >= 50 and t)
        assert last == shown[-50:]
        bob.shot("latest-page")

        # When he scrolls up, the older pages come, down to the first message (deleted as deleted)
        def scrolled_to_the_first() -> list[str] | None:
            bob.js("document.getElementById('messages').scrollTop = 0")
            current = bob.texts()
            return current if current and current[0] == shown[0] else None

        assert bob.wait("scrolling up reaches the first message", scrolled_to_the_first, timeout=30) == shown
        assert bob.js("return document.getElementById('history-top').textContent") == ""
        bob.shot("first-page")

        # And a live message from alice comes below them
        alice = browser("alice")
        alice.login(url, alice_id, alice_token)
        alice.open_chat(bob_id) if alice.chat(bob_id) else alice.new_chat(bob_id)
        alice.send_text("and a new one")
        bob.wait("the new message shows last", lambda: bob.texts()[-1] == "and a new one")
        before = bob.texts()[:-1]  # the view keeps as many bubbles as it showed
        assert before == shown[-len(before) :] and len(before) >= 119
        assert bob.errors() == [] and alice.errors() == []
        bob.close()  # before the node stops: see test_web_client's docstring
        alice.close()
    finally:
        node.close()


def test_the_web_session_jumps_to_the_servers_cursor_on_a_sync_reset(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    """The page's own protocol module: a reset of its own sync moves the cursor to where the server
    resumes, reaches the app (to rebuild from history) and syncs on from there; another's does not."""
    page = browser("probe")
    page.driver.get(f"{node.media_url}/")
    result = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        import('/web/js/session.js').then(({ Session }) => {
          let n = 0;
          const session = new Session({ user: 'bob', cursor: 2, newCommandId: (p) => `${p}-${++n}` });
          session.onConnected();
          const first = session.onSubscribed(0).commands[0].payload;
          const other = session.onInbox({ v: 1, type: 'sync_reset', ref: 'not-mine', after: 0, cursor: 9,
                                          reason: 'pruned' }, 1);
          const mine = session.onInbox({ v: 1, type: 'sync_reset', ref: first.id, after: 2, cursor: 40,
                                         reason: 'pruned' }, 2);
          done({ first, other: other.events.length + other.commands.length,
                 events: mine.events.map((e) => e.type), commands: mine.commands.map((c) => c.payload),
                 cursor: session.cursor });
        }, (error) => done({ error: String(error) }));
        """
    )
    assert "error" not in result, result
    assert result["first"]["after"] == 2 and result["other"] == 0
    assert result["events"] == ["sync_reset"] and result["cursor"] == 40
    assert [(c["type"], c["after"]) for c in result["commands"]] == [("sync", 40)]
