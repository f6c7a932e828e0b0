"""The web client in real browsers against the real node: two people chat, with ticks, presence,
typing, a photo and a group; history survives a reload; the inbox is applied in cursor order.

Each person has a separate headless Chromium (own profile). Screenshots of the key moments go to
``test-artifacts/web/``, with each browser's console log.

Pages are closed before the node stops: the node's shutdown can wait forever for a client that is
still connected (amqtt's reader loop sometimes survives its cancellation on Python 3.11), which is
a broker issue, not the client's.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from client_sdk import Client
from tests.harness import RunningNode, connect, node_settings
from tests.media_files import png

if TYPE_CHECKING:  # selenium is imported by the browser fixture, which skips without it
    from tests.e2e.browser import Page

BLUE_TICKS = "rgb(83, 189, 235)"  # the read ticks' colour (style.css, --tick-read)


def test_two_people_chat_with_ticks_presence_typing_a_photo_and_a_group(
    node: RunningNode, browser: Callable[[str], Page], tmp_path: Path
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    alice, bob = browser("alice"), browser("bob")

    # Given alice is logged in and starts a chat with bob, who has not logged in yet
    alice.login(url, alice_id, alice_token)
    alice.new_chat(bob_id)

    # When she writes to him, the server stores it: one tick
    alice.send_text("hello bob")
    sent = alice.wait_ticks("hello bob", "sent")
    assert sent["tick"] == "✓"
    alice.shot("01-sent")

    # When bob logs in, his browser catches up and says delivered: two grey ticks, bob is online
    bob.login(url, bob_id, bob_token)
    chat = bob.wait(
        "alice's chat shows one unread message", lambda: (c := bob.chat(alice_id)) and c["unread"] and c
    )
    assert (chat["unread"], chat["preview"]) == (1, "hello bob")
    delivered = alice.wait_ticks("hello bob", "delivered")
    assert delivered["tick"] == "✓✓" and delivered["tick_color"] != BLUE_TICKS
    alice.wait("bob shows online", lambda: alice.status_line() == "online")
    assert alice.wait("bob's online dot", lambda: (alice.chat(bob_id) or {}).get("online"))
    alice.shot("02-delivered-online")
    bob.shot("02-unread")

    # When bob opens the chat, it is read: two blue ticks
    bob.open_chat(alice_id)
    assert bob.wait("bob sees the message", lambda: bob.message("hello bob"))["mine"] is False
    read = alice.wait_ticks("hello bob", "read")
    assert read["tick"] == "✓✓" and read["tick_color"] == BLUE_TICKS
    assert bob.chat(alice_id)["unread"] == 0  # type: ignore[index]

    # When bob types, alice sees "typing…" under his name and in her chat list
    bob.type("hi ali")
    alice.wait("alice sees bob typing", lambda: alice.status_line() == "typing…")
    assert alice.chat(bob_id)["preview"] == "typing…"  # type: ignore[index]
    alice.shot("03-typing")
    bob.send_text("ce, how are you?", shown="hi alice, how are you?")
    alice.wait("alice gets bob's answer", lambda: alice.message("hi alice, how are you?"))
    alice.wait("typing… gives way to online", lambda: alice.status_line() == "online")
    bob.wait_ticks("hi alice, how are you?", "read")  # alice has the chat open

    # When alice sends a photo with a caption, bob's page shows it, fetched with his credentials
    photo = tmp_path / "view.png"
    photo.write_bytes(png(640, 400))
    alice.send_file(photo, "the view from the top")
    image = bob.wait(
        "bob's page shows the photo",
        lambda: (m := bob.message("the view from the top")) and m["image"] and m["image"]["width"] and m,
    )["image"]
    assert image["complete"] and image["blob"] and image["width"] > 0 and image["height"] > 0
    assert image["width"] / image["height"] == 640 / 400  # the server's thumbnail of this photo
    alice.wait_ticks("the view from the top", "read")
    alice.shot("04-photo")
    bob.shot("04-photo")

    # When alice makes a group with bob and writes to it, bob sees the group and her message
    alice.new_group("Climbing", [bob_id])
    alice.send_text("Saturday?")
    bob.wait("the group shows in bob's list", lambda: (bob.chat_by_name("Climbing") or {}).get("unread"))
    bob.open_chat(bob.chat_by_name("Climbing")["id"])  # type: ignore[index]
    message = bob.wait("bob sees the group message", lambda: bob.message("Saturday?"))
    assert message["sender"] == alice_id
    assert bob.texts()[0] == f"* {alice_id} created the group"
    assert alice.texts()[0] == "* You created the group"
    alice.wait_ticks("Saturday?", "read")  # every member read it ("all": true)
    alice.shot("05-group")
    bob.shot("05-group")

    # When bob closes his browser, alice sees when he was last seen
    bob.close()
    alice.open_chat(bob_id)
    alice.wait("bob shows last seen", lambda: alice.status_line().startswith("last seen today at"))
    assert not (alice.chat(bob_id) or {}).get("online")
    alice.shot("06-last-seen")
    assert alice.errors() == []


def test_messages_sent_while_away_arrive_in_order_and_history_survives_a_reload(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    # Given bob got 230 messages while away (more than one sync page), sent with the Python SDK
    texts = [f"message {n:03d}" for n in range(1, 231)]
    with connect(node, alice_id) as alice:
        outs = [alice.send(bob_id, text) for text in texts]
        for out in outs:
            out.wait("sent", timeout=20)

    # When he logs in and opens the chat, he sees the latest ones, in order, without duplicates
    bob = browser("bob")
    bob.login(url, bob_id, bob_token)
    bob.wait("230 unread", lambda: (bob.chat(alice_id) or {}).get("unread") == 230)
    bob.open_chat(alice_id)

    def up_to_the_last() -> list[str] | None:
        current = bob.texts()
        return current if current and current[-1] == texts[-1] else None

    shown = bob.wait("the latest messages show", up_to_the_last)
    assert shown == texts[-len(shown) :] and len(shown) < len(texts)

    # and scrolling up shows the older ones, down to the first
    def scrolled_to_top() -> list[str] | None:
        bob.js("document.getElementById('messages').scrollTop = 0")
        current = bob.texts()
        return current if current[0] == texts[0] else None

    assert bob.wait("scrolling up reaches the first message", scrolled_to_top) == texts
    bob.js("document.getElementById('messages').scrollTop = 0")
    bob.shot("history-top")

    # When he reloads the page, he is still logged in and the history is still there, once
    bob.driver.refresh()
    bob.wait_online()
    bob.open_chat(alice_id)
    again = bob.wait("the history is back", up_to_the_last)
    assert again == texts[-len(again) :] and len(set(again)) == len(again)

    # When the moderation deletes the last message for everyone, its bubble says so at once
    node.call(node.node.delete_message(outs[-1].message_id))
    gone = "This message was deleted"
    bob.wait("the bubble says it was deleted", lambda: bob.texts()[-1] == gone)
    assert texts[-1] not in bob.texts() and bob.chat(alice_id)["preview"] == gone  # type: ignore[index]
    bob.shot("deleted")
    # and after a reload (from what the page kept, and the sync after it) it still does
    bob.driver.refresh()
    bob.wait_online()
    bob.open_chat(alice_id)
    bob.wait("still deleted after a reload", lambda: (t := bob.texts()) and t[-1] == gone)
    assert texts[-1] not in bob.texts() and bob.texts()[-2] == texts[-2]
    assert bob.errors() == []


def test_a_message_written_while_the_server_is_down_is_sent_once_when_it_is_back(
    tmp_path: Path, browser: Callable[[str], Page]
) -> None:
    nodes = [RunningNode(node_settings(tmp_path / "node")).start()]
    try:
        first = nodes[0]
        alice_id, alice_token = first.add_user("alice")
        bob_id, bob_token = first.add_user("bob")
        url = f"{first.media_url}/"
        ports = {
            "broker.mqtt_port": first.port,
            "broker.ws_port": first.ws_port,
            "media.http_port": first.node.http_port,
        }
        alice = browser("alice")
        alice.login(url, alice_id, alice_token)
        alice.new_chat(bob_id)
        alice.send_text("before the restart")
        alice.wait_ticks("before the restart", "sent")

        # When the server stops, the page says so, and what alice writes waits with a clock
        nodes.pop().close()
        alice.wait("the page shows it is offline", lambda: alice.connection() == "offline")
        alice.send_text("while the server was down")
        assert alice.message("while the server was down")["status"] == "pending"  # type: ignore[index]
        alice.shot("offline")

        # When it is back (same ports, same data), the page reconnects, syncs and sends it
        second = RunningNode(node_settings(tmp_path / "node", **ports)).start()
        nodes.append(second)
        alice.wait_online()
        alice.wait_ticks("while the server was down", "sent", timeout=20)
        alice.shot("back")

        # Then bob gets both, once each, in order
        with Client("127.0.0.1", second.port, user=bob_id, token=bob_token) as bob:
            bob.wait_synced(timeout=10)
            got = [m.text for m in bob.messages(timeout=1)]  # all came with the sync
        assert got == ["before the restart", "while the server was down"]
        assert alice.errors() == []
        alice.close()  # before the node stops: see the module's docstring
    finally:
        for running in nodes:
            running.close()


def test_a_wrong_token_is_refused_on_the_login_form(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, _ = node.add_user("alice")
    page = browser("mallory")
    page.login(f"{node.media_url}/", alice_id, "mqc_not-her-token", wait=False)
    error = page.wait("the login form says why", lambda: page.element("#login-error").text)
    assert error == "Wrong user id or token"
    assert page.js("return document.body.dataset.view") == "login"
    page.shot("refused")


def test_the_web_client_applies_its_inbox_in_cursor_order(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    """The page's own protocol module: gaps are buffered and filled by sync, duplicates dropped;
    its store marks every member a group receipt names."""
    page = browser("probe")
    page.driver.get(f"{node.media_url}/")
    result = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        import('/web/js/session.js').then(({ Session }) => {
          let n = 0;
          const session = new Session({ user: 'bob', cursor: 0, newCommandId: (p) => `${p}-${++n}` });
          const msg = (cursor, id) => ({ v: 1, type: 'message', cursor, message: {
            id, conversation: 'dm:alice:bob', seq: cursor, from: 'alice', to: 'bob', text: id, ts: 1 } });
          const out = [];
          const take = (fx) => { out.push({ events: fx.events.map((e) => e.message && e.message.id),
                                            commands: fx.commands.map((c) => c.payload) }); };
          take(session.send({ to: 'alice', text: 'typed offline', id: 'm-kept' }).effects);  // waits
          session.onConnected();
          take(session.onSubscribed(0));                         // sync after 0
          const lastSync = () => out.flatMap((o) => o.commands).filter((c) => c.type === 'sync').pop().id;
          take(session.onInbox({ v: 1, type: 'sync_page', ref: lastSync(), entries: [msg(1, 'a')],
                                 more: false, cursor: 1 }, 10));  // a; synced
          take(session.onInbox(msg(3, 'c'), 20));                // a gap: buffered
          take(session.onTick(100));                             // not yet due
          take(session.onTick(400));                             // due: sync after 1
          take(session.onInbox(msg(1, 'a'), 410));               // duplicate: dropped
          // the sync's page: b and c, in order
          take(session.onInbox({ v: 1, type: 'sync_page', ref: lastSync(),
                                 entries: [msg(2, 'b'), msg(3, 'c')], more: false, cursor: 3 }, 420));
          done({ out, cursor: session.cursor });
        }, (error) => done({ error: String(error) }));
        """
    )
    assert "error" not in result, result
    nothing: dict[str, list[object]] = {"events": [], "commands": []}
    sent_offline, synced, *out = result["out"]
    assert sent_offline == nothing  # not connected: kept for later
    assert synced["commands"] == [{"v": 1, "type": "sync", "id": "s-1", "after": 0, "limit": 200}]
    # the first page: a is released and acknowledged, then the waiting message goes, same id
    assert out[0]["events"] == ["a"]
    receipt, resent = out[0]["commands"]
    assert (receipt["type"], receipt["status"], receipt["messages"]) == ("receipt", "delivered", ["a"])
    assert resent == {"v": 1, "type": "send", "id": "m-kept", "to": "alice", "text": "typed offline"}
    # c waits behind the gap; after the gap timeout a sync asks for what follows a
    assert out[1] == out[2] == nothing
    assert [(c["type"], c["after"]) for c in out[3]["commands"]] == [("sync", 1)]
    assert out[4] == nothing  # a again: a duplicate
    assert out[5]["events"] == ["b", "c"] and result["cursor"] == 3

    # and one `receipt` event may name several members (`by`, then `also_by`): each gets the status
    result = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const modules = [import('/web/js/protocol.js'), import('/web/js/store.js')];
        Promise.all(modules).then(([protocol, { Store }]) => {
          const store = new Store('alice');
          const message = { id: 'm1', conversation: 'g:team', seq: 1, from: 'alice', to: 'g:team',
                            text: 'hi', ts: 1 };
          const receipt = (cursor, by, extra) => ({ v: 1, type: 'receipt', cursor, status: 'delivered',
            message_id: 'm1', conversation: 'g:team', seq: 1, by, ts: 2, ...extra });
          const events = [
            { v: 1, type: 'sent', cursor: 1, ref: 'c1', message },
            receipt(2, 'carol', { all: false }),
            receipt(3, 'bob', { also_by: ['dave'], all: true }),
          ];
          const readable = events.map((e) => protocol.isReadableSequenced(e));
          const broken = protocol.isReadableSequenced(receipt(4, 'bob', { also_by: 'dave', all: true }));
          events.forEach((e) => store.apply(e));
          const item = store.byId.get('m1');
          done({ readable, broken, by: item.by, status: item.status });
        }, (error) => done({ error: String(error) }));
        """
    )
    assert "error" not in result, result
    assert result["readable"] == [True, True, True] and result["broken"] is False
    assert result["by"] == {"carol": "delivered", "bob": "delivered", "dave": "delivered"}
    assert result["status"] == "delivered"


def test_the_node_serves_the_page_and_tells_it_where_the_broker_is(node: RunningNode) -> None:
    with urllib.request.urlopen(f"{node.media_url}/web/config.json", timeout=10) as response:
        config = json.load(response)
    assert config == {
        "mqtt_ws": f"ws://127.0.0.1:{node.ws_port}/",
        "mqtt_versions": [4, 5],
        "media": node.media_url,
        "prefix": "chat",
        "presence_prefix": "presence",
        "disappearing_timers": [86400, 604800, 7776000],
    }
    with urllib.request.urlopen(f"{node.media_url}/", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert b'src="/web/vendor/mqtt.min.js"' in response.read()
    with urllib.request.urlopen(f"{node.media_url}/web/vendor/mqtt.min.js", timeout=10) as response:
        assert response.headers["Content-Type"] in {"application/javascript", "text/javascript"}


_AVATAR_JS = """
const node = document.querySelector(arguments[0]);
if (!node) return null;
const img = node.querySelector('img');
return {letter: img ? null : node.textContent,
        photo: img && {complete: img.complete, width: img.naturalWidth, blob: img.src.startsWith('blob:')}};
"""
_DEVICES_JS = """
return [...document.querySelectorAll('#devices-list .device')].map((li) => ({
  device: li.dataset.device,
  own: li.classList.contains('own'),
  text: li.textContent,
  state: li.querySelector('.state').textContent,
}));
"""


def _avatar(page: Page, css: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = page.js(_AVATAR_JS, css)
    return found


def _photo_shown(page: Page, css: str) -> bool:
    photo = (_avatar(page, css) or {}).get("photo")
    return bool(photo and photo["complete"] and photo["width"] == 512 and photo["blob"])


def test_a_contact_sees_a_name_and_photo_live_and_after_a_reload_and_devices_are_listed(
    node: RunningNode, browser: Callable[[str], Page], tmp_path: Path
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    alice, bob = browser("alice"), browser("bob")

    # Given alice and bob have a chat, open on both sides
    alice.login(url, alice_id, alice_token)
    alice.new_chat(bob_id)
    alice.send_text("hi bob")
    bob.login(url, bob_id, bob_token)
    bob.wait("alice's chat shows", lambda: bob.chat(alice_id))
    bob.open_chat(alice_id)
    assert bob.title() == alice_id  # no name set yet: the user id

    # When alice sets her name and about in her profile form, she sees it saved
    alice.element("#me-button").click()
    alice.wait("the profile form opens", lambda: alice._shown("#profile-name"))
    alice.element("#profile-name").send_keys("Alice Liddell")
    alice.element("#profile-about").send_keys("down the rabbit hole")
    alice.element("#profile-save").click()
    alice.wait("the name is saved", lambda: alice.element("#profile-status").text == "Saved")
    assert alice.element("#me-name").text == "Alice Liddell"

    # and a file that is no image is refused with a visible message, nothing changes
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    alice.element("#profile-avatar-input").send_keys(str(notes))
    error = alice.wait("the refusal shows", lambda: alice.element("#profile-error").text)
    assert error.startswith("Your photo was not changed:")
    alice.shot("profile-refused")

    # and then she picks a photo: the server crops it square, 512 pixels, and her form shows it
    photo = tmp_path / "me.png"
    photo.write_bytes(png(900, 600))
    alice.element("#profile-avatar-input").send_keys(str(photo))
    alice.wait("her photo shows in the form", lambda: _photo_shown(alice, "#profile-avatar"))
    alice.wait("and in her header", lambda: _photo_shown(alice, "#me-avatar"))
    assert alice.element("#profile-error").text == ""
    alice.shot("profile-form")
    alice.element("#profile-dialog .cancel").click()

    # Then bob sees her name and photo live, in his chat list and the chat's header
    bob.wait("her name in bob's list", lambda: (bob.chat(alice_id) or {}).get("name") == "Alice Liddell")
    in_list = f'.chat-item[data-conv="{alice_id}"] .avatar'
    bob.wait("her photo in bob's list", lambda: _photo_shown(bob, in_list))
    bob.wait("her name in the header", lambda: bob.title() == "Alice Liddell")
    bob.wait("her photo in the header", lambda: _photo_shown(bob, "#conv-avatar"))
    assert bob.element("#conv-handle").text == alice_id  # the user id beside the name
    bob.shot("profile-live")

    # and after a reload (what the page kept, then profile_get after the sync) still does
    bob.driver.refresh()
    bob.wait_online()
    bob.open_chat(alice_id)
    assert (bob.chat(alice_id) or {}).get("name") == "Alice Liddell"
    bob.wait("her photo after the reload", lambda: _photo_shown(bob, "#conv-avatar"))
    assert bob.title() == "Alice Liddell"
    bob.shot("profile-reloaded")

    # When alice removes her photo, bob's page goes back to her initial
    alice.element("#me-button").click()
    alice.wait("the profile form opens", lambda: alice._shown("#profile-avatar-remove"))
    alice.element("#profile-avatar-remove").click()
    alice.wait("the photo is removed", lambda: (_avatar(alice, "#profile-avatar") or {}).get("letter") == "A")
    alice.element("#profile-dialog .cancel").click()
    bob.wait("bob sees her initial", lambda: (_avatar(bob, "#conv-avatar") or {}).get("letter") == "A")

    # When alice is also logged in on her phone (the SDK), her devices view lists both,
    # this browser marked
    with connect(node, alice_id, device="phone"):
        alice.element("#show-devices").click()

        def both() -> list[dict[str, Any]] | None:
            rows: list[dict[str, Any]] = alice.js(_DEVICES_JS)
            return rows if len(rows) == 2 else None

        rows = alice.wait("two devices listed", both)
        alice.shot("devices")
    own = [row for row in rows if row["own"]]
    assert len(own) == 1 and own[0]["device"].startswith("web-") and "this browser" in own[0]["text"]
    assert own[0]["state"] == "online"
    phone = next(row for row in rows if row["device"] == "phone")
    assert not phone["own"] and phone["state"] == "online" and "first seen today at" in phone["text"]
    # the console's only error is the refused upload (Chromium logs every 4xx load)
    assert [e for e in alice.errors() if "/media/avatar" not in e or "415" not in e] == []
    assert bob.errors() == []
    alice.close()
    bob.close()


_REACTIONS_JS = """
const [text] = arguments;
for (const m of document.querySelectorAll('#message-list .msg')) {
  const body = m.querySelector('.text');
  if (!body || body.textContent !== text) continue;
  return [...m.querySelectorAll('.reactions .reaction-chip')].map((c) => ({
    emoji: c.querySelector('.emoji').textContent,
    count: Number(c.querySelector('.count').textContent),
    mine: c.classList.contains('mine'),
  }));
}
return null;
"""


def _bubble(page: Page, text: str) -> Any:
    from selenium.webdriver.common.by import By

    for bubble in page.driver.find_elements(By.CSS_SELECTOR, "#message-list .msg"):
        if (
            bubble.find_elements(By.CSS_SELECTOR, ".text")
            and bubble.find_element(By.CSS_SELECTOR, ".text").text == text
        ):
            return bubble
    raise AssertionError(f"{page.name}'s page shows no message {text!r}")


def _pick_reaction(page: Page, text: str, emoji: str, *, shot: str | None = None) -> None:
    """Hover the bubble, open its actions toolbar's picker and pick ``emoji``."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    bubble = _bubble(page, text)
    ActionChains(page.driver).move_to_element(bubble).perform()
    bubble.find_element(By.CSS_SELECTOR, '.msg-actions [data-action="react-open"]').click()
    picks = bubble.find_elements(By.CSS_SELECTOR, ".react-picker .react-pick")
    page.wait("the picker opens", lambda: all(p.is_displayed() for p in picks) and picks)
    if shot:
        page.shot(shot)
    next(p for p in picks if p.text == emoji).click()


def _click_chip(page: Page, text: str, emoji: str) -> None:
    from selenium.webdriver.common.by import By

    chips = _bubble(page, text).find_elements(By.CSS_SELECTOR, ".reaction-chip")
    next(c for c in chips if c.get_attribute("data-emoji") == emoji).click()


def _chips(page: Page, text: str) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] | None = page.js(_REACTIONS_JS, text)
    return found


def test_a_reaction_is_seen_by_the_other_person_changed_and_removed(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    alice, bob = browser("alice"), browser("bob")

    # Given alice wrote to bob and both have the chat open
    alice.login(url, alice_id, alice_token)
    alice.new_chat(bob_id)
    alice.send_text("pizza tonight?")
    bob.login(url, bob_id, bob_token)
    bob.wait("alice's chat shows", lambda: bob.chat(alice_id))
    bob.open_chat(alice_id)
    bob.wait("bob sees the message", lambda: bob.message("pizza tonight?"))
    assert _chips(bob, "pizza tonight?") == []

    # When bob picks 👍 in the message's toolbar
    _pick_reaction(bob, "pizza tonight?", "👍", shot="reaction-picker")

    # Then both see a 👍 chip under the bubble, marked as his on his page only
    mine = [{"emoji": "👍", "count": 1, "mine": True}]
    theirs = [{"emoji": "👍", "count": 1, "mine": False}]
    bob.wait("bob's chip is his", lambda: _chips(bob, "pizza tonight?") == mine)
    alice.wait("alice sees bob's 👍", lambda: _chips(alice, "pizza tonight?") == theirs)
    alice.shot("reaction-seen")
    bob.shot("reaction-mine")

    # When bob changes it to ❤️, alice's page replaces the chip
    _pick_reaction(bob, "pizza tonight?", "❤️")
    alice.wait(
        "alice sees ❤️ instead",
        lambda: _chips(alice, "pizza tonight?") == [{"emoji": "❤️", "count": 1, "mine": False}],
    )

    # When alice joins in by clicking the chip, both see two
    _click_chip(alice, "pizza tonight?", "❤️")
    bob.wait(
        "bob sees two ❤️", lambda: _chips(bob, "pizza tonight?") == [{"emoji": "❤️", "count": 2, "mine": True}]
    )
    alice.wait(
        "hers is marked",
        lambda: _chips(alice, "pizza tonight?") == [{"emoji": "❤️", "count": 2, "mine": True}],
    )
    alice.shot("reaction-two")
    # and what alice's page kept shows the same after a reload
    alice.driver.refresh()
    alice.wait_online()
    alice.open_chat(bob_id)
    alice.wait(
        "the chip after the reload",
        lambda: _chips(alice, "pizza tonight?") == [{"emoji": "❤️", "count": 2, "mine": True}],
    )

    # When bob clicks his own chip, his reaction is removed; then alice removes hers
    _click_chip(bob, "pizza tonight?", "❤️")
    alice.wait(
        "one ❤️ left", lambda: _chips(alice, "pizza tonight?") == [{"emoji": "❤️", "count": 1, "mine": True}]
    )
    bob.wait(
        "bob's is gone", lambda: _chips(bob, "pizza tonight?") == [{"emoji": "❤️", "count": 1, "mine": False}]
    )
    _click_chip(alice, "pizza tonight?", "❤️")
    bob.wait("no chip left for bob", lambda: _chips(bob, "pizza tonight?") == [])
    alice.wait("no chip left for alice", lambda: _chips(alice, "pizza tonight?") == [])
    bob.shot("reaction-removed")
    assert alice.errors() == [] and bob.errors() == []
    alice.close()
    bob.close()


_BUBBLE_JS = """
for (const m of document.querySelectorAll('#message-list .msg')) {
  const body = m.querySelector('.text');
  if (body && body.textContent === arguments[0]) return m;
}
return null;
"""


def _message_action(page: Page, text: str, action: str, *, shot: str | None = None) -> None:
    """Point at the bubble with ``text`` (its actions bar shows on hover) and click ``action``
    (``shot``: a screenshot with the bar showing first)."""
    from selenium.webdriver.common.action_chains import ActionChains

    bubble = page.wait(f"the bubble {text!r} shows", lambda: page.js(_BUBBLE_JS, text))
    ActionChains(page.driver).move_to_element(bubble).perform()
    button = page.wait(
        f"the {action} button of {text!r} shows",
        lambda: (
            (b := bubble.find_element("css selector", f'.actions [data-action="{action}"]')).is_displayed()
            and b
        ),
    )
    if shot is not None:
        page.shot(shot)
    button.click()


def _edited_mark(page: Page, text: str) -> bool:
    return bool(
        page.js("return arguments[0]?.querySelector('.meta .edited') !== null", page.js(_BUBBLE_JS, text))
    )


def test_an_edit_and_deletes_from_the_bubbles_actions_reach_the_other_browser(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    alice, bob = browser("alice"), browser("bob")
    alice.login(url, alice_id, alice_token)
    alice.new_chat(bob_id)
    alice.send_text("see you at 5")
    alice.send_text("this was for someone else")
    alice.send_text("bring the rope")
    bob.login(url, bob_id, bob_token)
    bob.wait("alice's chat shows", lambda: bob.chat(alice_id))
    bob.open_chat(alice_id)
    bob.wait("bob sees alice's messages", lambda: bob.message("bring the rope"))
    alice.wait_ticks("bring the rope", "read")

    # When alice edits her first message in the edit dialog
    _message_action(alice, "see you at 5", "edit", shot="00-actions")
    field = alice.wait("the edit dialog opens", lambda: alice._shown("#edit-text"))
    field.clear()
    field.send_keys("see you at 6")
    alice.element("#edit-save").click()

    # Then both browsers show the new text, marked edited, and the old text is gone
    for page in (alice, bob):
        page.wait("the edited text shows", lambda p=page: p.message("see you at 6"))  # type: ignore[misc]
        assert _edited_mark(page, "see you at 6")
        assert page.message("see you at 5") is None
    alice.shot("01-edited")
    bob.shot("01-edited")

    # When alice deletes her second message for everyone, bob sees a tombstone in its place
    _message_action(alice, "this was for someone else", "delete-everyone")
    for page in (alice, bob):
        page.wait(
            "the tombstone shows",
            lambda p=page: "This message was deleted" in p.texts(),  # type: ignore[misc]
        )
        assert "this was for someone else" not in page.texts()
    bob.shot("02-deleted")

    # When bob deletes the edited message for himself, it leaves his page only
    _message_action(bob, "see you at 6", "delete-me", shot="00-actions")
    bob.wait("the hidden message leaves bob's page", lambda: bob.message("see you at 6") is None)
    assert bob.message("bring the rope") is not None
    assert alice.message("see you at 6") is not None
    bob.shot("03-deleted-for-me")

    # And after a reload bob's page still shows neither the old text nor the hidden message
    bob.driver.refresh()
    bob.wait_online()
    bob.open_chat(alice_id)
    bob.wait("bob's history is back", lambda: bob.message("bring the rope"))
    assert "see you at 6" not in bob.texts() and "see you at 5" not in bob.texts()
    assert "This message was deleted" in bob.texts()
    assert alice.errors() == [] and bob.errors() == []


_BUBBLE_JS = """
for (const m of document.querySelectorAll('#message-list .msg')) {
  const body = m.querySelector('.text');
  if (body && body.textContent === arguments[0]) return m;
}
return null;
"""
_QUOTE_JS = """
const [m] = arguments;
const quote = m.querySelector('.quote');
return {
  quote: quote && {from: quote.querySelector('.quote-from').textContent,
                   text: quote.querySelector('.quote-text').textContent, id: quote.dataset.quoted},
  forwarded: m.querySelector('.forwarded-label')?.textContent || null,
};
"""


def _bubble(page: Page, text: str) -> Any:
    """The bubble of the open conversation's message with this text (a WebElement), or None."""
    return page.js(_BUBBLE_JS, text)


def _marks(page: Page, text: str) -> dict[str, Any] | None:
    """The quote and the "Forwarded" label of the message with this text."""
    bubble = _bubble(page, text)
    found: dict[str, Any] | None = page.js(_QUOTE_JS, bubble) if bubble else None
    return found


def _act(page: Page, text: str, action: str) -> None:
    """Hover the message with this text and click a button of its actions toolbar."""
    from selenium.webdriver.common.action_chains import ActionChains

    bubble = page.wait(f"{text!r} is shown", lambda: _bubble(page, text))
    ActionChains(page.driver).move_to_element(bubble).perform()
    button = page.wait(
        f"the {action} button shows on hover",
        lambda: (b := bubble.find_element("css selector", f'[data-action="{action}"]')).is_displayed() and b,
    )
    button.click()


def test_a_reply_and_a_forward_are_seen_by_the_other_user(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    alice, bob = browser("alice"), browser("bob")
    alice.login(url, alice_id, alice_token)
    alice.new_chat(bob_id)
    alice.send_text("where do we meet?")
    bob.login(url, bob_id, bob_token)
    bob.wait("alice's chat shows", lambda: bob.chat(alice_id))
    bob.open_chat(alice_id)

    # When bob replies to her message from its toolbar
    _act(bob, "where do we meet?", "reply")
    bob.wait("the reply bar shows what he answers", lambda: bob._shown("#reply-bar"))
    bob.shot("reply-01-composing")
    bob.send_text("at the old mill")
    assert not bob.element("#reply-bar").is_displayed()

    # Then alice sees his message under a quote of hers, and clicking it shows the original
    marks = alice.wait(
        "alice sees the quote", lambda: (m := _marks(alice, "at the old mill")) and m["quote"] and m
    )
    assert marks["quote"]["from"] == "You" and marks["quote"]["text"] == "where do we meet?"
    assert (_marks(bob, "at the old mill") or {}).get("quote", {}).get("from") == alice_id
    alice.js("arguments[0].querySelector('.quote').click()", _bubble(alice, "at the old mill"))
    alice.wait(
        "the original flashes", lambda: "flash" in _bubble(alice, "where do we meet?").get_attribute("class")
    )
    alice.shot("reply-02-quote")

    # When bob forwards her message to a group he makes with her, from the forward dialog
    bob.new_group("Crew", [alice_id])
    crew = bob.js("return document.querySelector('.chat-item.active').dataset.conv")
    bob.open_chat(alice_id)
    _act(bob, "where do we meet?", "forward")
    pick = bob.wait(
        "the forward dialog lists the group",
        lambda: bob.js(f"""return document.querySelector('#forward-list [data-conv="{crew}"]')"""),
    )
    bob.shot("reply-03-forward-dialog")
    pick.click()

    # Then alice sees it in the group, marked forwarded, sent by bob
    alice.wait("the group shows in alice's list", lambda: alice.chat(crew))
    alice.open_chat(crew)
    forwarded = alice.wait(
        "alice sees the forward", lambda: (m := _marks(alice, "where do we meet?")) and m["forwarded"] and m
    )
    assert forwarded["forwarded"] == "↪ Forwarded" and forwarded["quote"] is None
    assert (alice.message("where do we meet?") or {}).get("sender") == bob_id
    alice.shot("reply-04-forwarded")
    assert alice.errors() == [] and bob.errors() == []


def test_the_web_client_resends_unanswered_replies_and_forwards_as_they_were(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    """The page's protocol module keeps a reply's reply_to and a forward's message across a reload."""
    page = browser("probe")
    page.driver.get(f"{node.media_url}/")
    result = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        import('/web/js/session.js').then(({ Session }) => {
          let n = 0;
          const first = new Session({ user: 'bob', newCommandId: (p) => `${p}-${++n}` });
          first.send({ to: 'alice', text: 'yes', replyTo: 'm-7' });
          first.forward({ message: 'm-7', to: 'g:crew' });
          // a reload: a new session from the saved outbox, then connected and synced
          const again = new Session({ user: 'bob', outbox: JSON.parse(JSON.stringify(first.pending())) });
          again.onConnected();
          const sync = again.onSubscribed(0).commands[0].payload;
          const page = { v: 1, type: 'sync_page', ref: sync.id, entries: [], more: false, cursor: 0 };
          done(again.onInbox(page, 10).commands.map((c) => c.payload));
        }, (error) => done({ error: String(error) }));
        """
    )
    assert result == [
        {"v": 1, "type": "send", "id": "m-1", "to": "alice", "text": "yes", "reply_to": "m-7"},
        {"v": 1, "type": "forward", "id": "f-2", "message": "m-7", "to": "g:crew"},
    ]


_ATTACHMENTS_JS = """
const inline = document.querySelectorAll('iframe, object, embed').length;
const found = {voice: null, document: null, inline};
for (const m of document.querySelectorAll('#message-list .msg')) {
  const voice = m.querySelector('.voice');
  if (voice) {
    const audio = voice.querySelector('audio');
    found.voice = {
      mine: m.classList.contains('out'),
      controls: audio.controls,
      blob: audio.src.startsWith('blob:'),
      duration: isFinite(audio.duration) ? audio.duration : null,
      bars: voice.querySelectorAll('.waveform .bar').length,
      heights: [...voice.querySelectorAll('.waveform .bar')].map((b) => parseFloat(b.style.height)),
      length: voice.querySelector('.voice-length').textContent,
      status: m.dataset.status,
    };
  }
  const card = m.querySelector('.document');
  if (card) {
    const link = card.querySelector('a.download');
    const img = card.querySelector('.document-icon img');
    found.document = {
      mine: m.classList.contains('out'),
      name: card.querySelector('.document-name').textContent,
      size: card.querySelector('.document-size').textContent,
      link: link ? link.textContent : null,
      href: link ? link.dataset.href || null : null,
      thumbnail: img ? img.complete && img.naturalWidth > 0 : false,
      caption: (m.querySelector('.text') || {}).textContent || null,
    };
  }
}
return found;
"""


def _attachments(page: Page) -> dict[str, Any]:
    found: dict[str, Any] = page.js(_ATTACHMENTS_JS)
    return found


def _attach(page: Page, path: Path, caption: str, what: str) -> None:
    """Pick ``path`` with the paperclip; the preview dialog shows ``what`` (voice or document)."""
    page.element("#attach-input").send_keys(str(path))
    page.wait(f"the {what} preview opens", lambda: page._shown(f"#media-preview .{what}"))
    if caption:
        page.element("#media-caption").send_keys(caption)
    page.element("#media-send").click()


def test_a_voice_note_and_a_document_are_played_and_offered_for_download(
    node: RunningNode, browser: Callable[[str], Page], tmp_path: Path
) -> None:
    from tests.harness import need
    from tests.media_files import audio, have_pyav, pdf
    from workers.media.documents import pdf_support

    need(have_pyav(), "PyAV (av) is not installed: no voice note to make")
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    alice, bob = browser("alice"), browser("bob")
    note = tmp_path / "note.ogg"
    recording = audio(note, "opus", seconds=3.0)
    minutes = tmp_path / "minutes.pdf"
    minutes.write_bytes(pdf("Minutes"))

    # Given alice has a chat with bob
    alice.login(url, alice_id, alice_token)
    alice.new_chat(bob_id)

    # When she attaches a recording (sent as a voice note) and a PDF (sent as a document)
    _attach(alice, note, "", "voice")
    alice.wait("her voice note is sent", lambda: (_attachments(alice)["voice"] or {}).get("status") == "sent")
    _attach(alice, minutes, "for Monday", "document")
    alice.wait(
        "her document is sent", lambda: (_attachments(alice)["document"] or {}).get("link") == "Download"
    )
    alice.shot("voice-document-sent")

    # Then bob's page shows a player with the waveform the server drew, and the recording plays
    bob.login(url, bob_id, bob_token)
    bob.wait("alice's chat shows", lambda: bob.chat(alice_id))
    assert (bob.chat(alice_id) or {}).get("preview") == "📄 minutes.pdf: for Monday"
    bob.open_chat(alice_id)
    voice = bob.wait(
        "bob's player loads the voice note",
        lambda: (v := _attachments(bob)["voice"]) and v["blob"] and v["duration"] and v,
    )
    assert voice["controls"] and not voice["mine"] and voice["bars"] == 64
    assert voice["duration"] == pytest.approx(3.0, abs=0.2) and voice["length"] == "0:03"
    assert min(voice["heights"][:28]) > 3 * max(voice["heights"][36:60])  # loud, then quiet

    # and a document card, never the document itself inline, with its name, size and a download link
    card = bob.wait(
        "bob sees the document card",
        lambda: (d := _attachments(bob)["document"]) and (d["thumbnail"] or pdf_support() is None) and d,
    )
    assert (card["name"], card["caption"], card["link"]) == ("minutes.pdf", "for Monday", "Download")
    assert card["size"].endswith("application/pdf")
    assert _attachments(bob)["inline"] == 0
    bob.shot("voice-document-received")

    # When bob clicks Download, the page stays, and the link it followed serves an attachment
    page_url = bob.driver.current_url
    bob.element(".document a.download").click()
    href = bob.wait("the download link is fetched", lambda: _attachments(bob)["document"]["href"])
    with urllib.request.urlopen(href, timeout=10) as response:
        assert response.read() == pdf("Minutes")
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["Content-Disposition"].startswith('attachment; filename="minutes.pdf"')
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert bob.driver.current_url == page_url and _attachments(bob)["inline"] == 0
    assert len(recording) > 0

    # When alice records a voice note with her microphone (the browser's fake one beeps)
    alice.element("#record-button").click()
    alice.wait(
        "she is recording", lambda: "recording" in alice.element("#record-button").get_attribute("class")
    )
    time.sleep(1.5)  # what she says; nothing is measured against this
    alice.element("#record-button").click()

    # Then bob gets a second voice note, measured by the server
    def recorded() -> dict[str, Any] | None:
        players = bob.js(
            "return [...document.querySelectorAll('#message-list .voice audio')]"
            ".map((a) => isFinite(a.duration) ? a.duration : null)"
        )
        return {"duration": players[1]} if len(players) == 2 and players[1] else None

    assert bob.wait("bob's page plays the recording", recorded)["duration"] > 0.5
    bob.shot("voice-recorded")
    assert alice.errors() == [] and bob.errors() == []
    alice.close()
    bob.close()


# ---------------------------------------------------------------- group info and invite links
def _group_info(page: Page) -> dict[str, Any]:
    info: dict[str, Any] = page.js(
        """const d = document.getElementById('group-info-dialog');
        return {open: d.open, name: document.getElementById('group-info-name').textContent,
          description: document.getElementById('group-description').value,
          onlyAdmins: document.getElementById('group-only-admins').checked,
          approval: document.getElementById('group-approval').checked,
          link: document.getElementById('group-invite-code').value,
          status: document.getElementById('group-info-status').textContent,
          icon: document.querySelector('#group-info-icon img')?.naturalWidth || 0,
          requests: [...document.querySelectorAll('#group-requests li span')].map((s) => s.textContent)};"""
    )
    return info


def test_an_admin_sets_up_a_group_and_a_newcomer_joins_by_its_link_with_approval(
    node: RunningNode, browser: Callable[[str], Page], tmp_path: Path
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, carol_token = node.add_user("carol")
    url = f"{node.media_url}/"
    alice = browser("alice")
    alice.login(url, alice_id, alice_token)
    alice.new_group("Crag", [bob_id])

    # When alice opens the group info, writes a description, asks for approval and sets an icon
    alice.element("#group-info-button").click()
    alice.wait("the group info opens", lambda: _group_info(alice)["open"])
    alice.element("#group-description").send_keys("Sundays at the crag")
    alice.element("#group-approval").click()
    alice.element("#group-only-admins").click()
    alice.element("#group-info-save").click()
    alice.wait("the settings are saved", lambda: _group_info(alice)["status"] == "Saved")
    icon = tmp_path / "icon.png"
    icon.write_bytes(png(300, 200))
    alice.element("#group-icon-input").send_keys(str(icon))
    alice.wait("the icon shows", lambda: _group_info(alice)["icon"] == 200)
    assert alice.texts()[-1] == "* You changed the group settings"

    # And makes an invite link
    alice.element("#group-invite-make").click()
    link = alice.wait("the invite link shows", lambda: _group_info(alice)["link"])
    assert "#join=" in link
    alice.shot("01-group-info")

    # When carol opens the link, she is offered to join, and asks to
    carol = browser("carol")
    carol.login(link, carol_id, carol_token)
    carol.wait(
        "the join dialog opens with the code",
        lambda: carol.js("return document.getElementById('join-group-dialog').open"),
    )
    carol.shot("02-join")
    carol.element("#join-group-submit").click()

    # Then alice sees the request in the group info, and approves it
    alice.wait("carol's request shows", lambda: _group_info(alice)["requests"] == [carol_id])
    alice.shot("03-request")
    alice.element('#group-requests button[data-decision="approve"]').click()
    crag = carol.wait("the group shows in carol's list", lambda: carol.chat_by_name("Crag"))
    carol.open_chat(crag["id"])
    carol.wait("carol sees she was approved", lambda: f"* {alice_id} approved you" in carol.texts())
    carol.element("#group-info-button").click()
    info = carol.wait(
        "carol sees the group info", lambda: (i := _group_info(carol))["open"] and i["icon"] and i
    )
    assert (info["description"], info["approval"], info["onlyAdmins"]) == ("Sundays at the crag", True, True)
    assert carol.js("return document.querySelector('#group-info-save').hidden") is True  # not an admin
    carol.shot("04-member-view")
    assert alice.errors() == [] and carol.errors() == []


# ---------------------------------------------------------------- disappearing messages
@pytest.fixture
def short_timer_node(tmp_path: Path) -> Any:
    """A node that allows a 2-second timer (test only) and sweeps for expired messages often."""
    settings = node_settings(
        tmp_path, **{"messages.disappearing_timers": [2, 86400], "messages.expiry_sweep": 0.2}
    )
    running = RunningNode(settings).start()
    try:
        yield running
    finally:
        running.close()


def _pick_timer(page: Page, label: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(page.element("#conv-timer")).select_by_visible_text(label)


def _timer_shown(page: Page) -> str:
    return str(
        page.js("const s = document.getElementById('conv-timer'); return s.options[s.selectedIndex]?.text")
    )


def test_a_timer_from_the_chat_header_is_announced_and_its_messages_vanish(
    short_timer_node: RunningNode, browser: Callable[[str], Page]
) -> None:
    node = short_timer_node
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    alice, bob = browser("alice"), browser("bob")
    alice.login(url, alice_id, alice_token)
    alice.new_chat(bob_id)
    alice.send_text("this one stays")
    bob.login(url, bob_id, bob_token)
    bob.wait("alice's chat shows", lambda: bob.chat(alice_id))
    bob.open_chat(alice_id)
    bob.wait("bob sees the first message", lambda: bob.message("this one stays"))

    # When alice picks a timer in the chat header
    assert _timer_shown(alice) == "⏱ Off"
    _pick_timer(alice, "⏱ 2 seconds")

    # Then both chats announce it and both headers show it
    announcement = "turned on disappearing messages: new messages disappear after 2 seconds"
    for page in (alice, bob):
        page.wait("the announcement shows", lambda p=page: any(announcement in t for t in p.texts()))  # type: ignore[misc]
        page.wait("the header shows the timer", lambda p=page: _timer_shown(p) == "⏱ 2 seconds")  # type: ignore[misc]
    alice.shot("00-timer-on")

    # When alice sends a message under it: both see it, marked, and then it vanishes from both
    alice.send_text("burn after reading")
    bob.wait("bob sees the disappearing message", lambda: bob.message("burn after reading"))
    assert bob.js(
        "return arguments[0]?.querySelector('.meta .disappears') !== null",
        bob.js(_BUBBLE_JS, "burn after reading"),
    )
    bob.shot("01-disappearing")
    for page in (alice, bob):
        page.wait("the message vanishes", lambda p=page: p.message("burn after reading") is None, timeout=20)  # type: ignore[misc]
        assert page.message("this one stays") is not None
    assert "burn after reading" not in str(bob.chat(alice_id))  # nor in the chat list's preview
    bob.shot("02-vanished")

    # And after a reload bob's page neither shows it nor brings it back; the timer is still on
    bob.driver.refresh()
    bob.wait_online()
    bob.open_chat(alice_id)
    bob.wait("bob's history is back", lambda: bob.message("this one stays"))
    assert "burn after reading" not in bob.texts()
    assert _timer_shown(bob) == "⏱ 2 seconds"

    # When bob turns it off from his header, both chats say so
    _pick_timer(bob, "⏱ Off")
    for page in (alice, bob):
        page.wait("the timer is off", lambda p=page: _timer_shown(p) == "⏱ Off")  # type: ignore[misc]
        assert any("turned off disappearing messages" in t for t in page.texts())
    assert alice.errors() == [] and bob.errors() == []


# ---------------------------------------------------------------------------------- privacy
def _invitation_cards(page: Page) -> list[dict[str, Any]]:
    cards: list[dict[str, Any]] = page.js(
        "return [...document.querySelectorAll('#invitations .invitation')].map((c) => ({"
        " group: c.dataset.group, text: c.querySelector('.invitation-text').textContent }))"
    )
    return cards


def _answer(page: Page, group: str, answer: str) -> None:
    page.element(f'#invitations [data-group="{group}"] button[data-answer="{answer}"]').click()


def test_privacy_settings_page_and_an_invitation_card_accepted_then_one_declined(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    bob = browser("bob")
    bob.login(url, bob_id, bob_token)

    # When bob opens his privacy settings, he sees the defaults
    bob.element("#privacy-button").click()
    bob.wait(
        "the privacy page loads",
        lambda: bob._shown("#privacy-groups") and bob.element("#privacy-status").text == "",
    )
    assert bob.element("#privacy-groups").get_attribute("value") == "everyone"
    assert bob.element("#privacy-read-receipts").is_selected()

    # and lets nobody add him to groups, and turns read receipts off: the server says saved
    bob.js("document.getElementById('privacy-groups').value = 'nobody'")
    bob.element("#privacy-read-receipts").click()
    bob.element("#privacy-save").click()
    bob.wait("the settings are saved", lambda: bob.element("#privacy-status").text == "Saved")
    bob.shot("privacy-settings")
    bob.element("#privacy-dialog .cancel").click()
    with connect(node, bob_id) as phone:  # every device of his has them
        settings = phone.privacy()
    assert (settings.groups, settings.read_receipts) == ("nobody", False)

    # When alice creates a group with him, Then he is not in it: a card invites him
    with connect(node, alice_id) as alice:
        trip = alice.create_group("Trip", [bob_id])
        assert list(trip.members) == [alice_id]
        cards = bob.wait("the invitation card shows", lambda: _invitation_cards(bob))
        assert cards[0]["group"] == trip.id and alice_id in cards[0]["text"] and "Trip" in cards[0]["text"]
        bob.shot("privacy-invitation")

        # When he accepts, the card goes and the group is in his chat list
        _answer(bob, trip.id, "accept")
        bob.wait("the group shows in his list", lambda: bob.chat_by_name("Trip"))
        bob.wait("the card is gone", lambda: _invitation_cards(bob) == [])

        # When alice invites him again to another group and he declines, nothing else happens
        other = alice.create_group("Other", [bob_id])
        bob.wait("the second card shows", lambda: [c["group"] for c in _invitation_cards(bob)] == [other.id])
        _answer(bob, other.id, "decline")
        bob.wait("the second card is gone", lambda: _invitation_cards(bob) == [])
        assert bob.chat_by_name("Other") is None
        (info,) = [g for g in alice.groups() if g.id == other.id]
        assert list(info.members) == [alice_id]
    assert bob.errors() == []
    bob.close()


# ---------------------------------------------------------------- blocking and reports
def _shown_js(page: Page, element_id: str) -> bool:
    return bool(page.js(f"const e = document.getElementById('{element_id}'); return !!e && !e.hidden"))


def test_block_unblock_and_report_from_the_chat_header(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    url = f"{node.media_url}/"
    alice, bob = browser("alice"), browser("bob")

    # Given bob wrote to alice and she has the chat open
    bob.login(url, bob_id, bob_token)
    bob.new_chat(alice_id)
    bob.send_text("hi alice")
    alice.login(url, alice_id, alice_token)
    alice.wait("bob's chat shows", lambda: alice.chat(bob_id))
    alice.open_chat(bob_id)
    alice.wait("alice sees the message", lambda: alice.message("hi alice"))
    assert alice.element("#block-toggle").text == "Block" and not _shown_js(alice, "blocked-notice")

    # When she clicks Block in the chat header
    alice.element("#block-toggle").click()

    # Then the header says Unblock and the notice shows
    alice.wait("the blocked notice", lambda: _shown_js(alice, "blocked-notice"))
    assert alice.element("#block-toggle").text == "Unblock"
    alice.shot("blocked")

    # When bob writes again, his page shows it sent, and carol's later message is what alice gets
    bob.send_text("are you there?")
    bob.wait_ticks("are you there?", "sent")
    with connect(node, carol_id) as carol:
        carol.send(alice_id, "barrier").wait("sent", timeout=10)
    alice.wait("carol's chat shows", lambda: alice.chat(carol_id))
    assert alice.message("are you there?") is None
    assert "are you there?" not in alice.texts()

    # And after a reload the page still knows she blocks bob (the blocks list after the sync)
    alice.driver.refresh()
    alice.wait_online()
    alice.open_chat(bob_id)
    alice.wait("the notice after a reload", lambda: _shown_js(alice, "blocked-notice"))

    # When she reports him (her report carries his message), then unblocks him from the notice
    alice.element("#report-contact").click()
    alice.element("#report-reason").send_keys("spam")
    alice.shot("report-dialog")
    alice.element("#report-send").click()
    store = node.node.store
    assert store is not None
    reports = alice.wait("the report is stored", lambda: store.reports_page(after=None, limit=5) or None)
    (report,) = reports
    assert (report.reporter, report.user, report.reason) == (alice_id, bob_id, "spam")
    assert [m["text"] for m in report.messages] == ["hi alice"]
    alice.element("#blocked-unblock").click()
    alice.wait("the notice is gone", lambda: not _shown_js(alice, "blocked-notice"))
    assert alice.element("#block-toggle").text == "Block"

    # Then bob's next message reaches her
    bob.send_text("back again")
    alice.wait("bob's new message", lambda: alice.message("back again"))
    alice.shot("unblocked")
    assert alice.errors() == [] and bob.errors() == []
    alice.close()
    bob.close()


def test_two_pages_of_one_user_agree_on_unread_and_a_new_page_loads_the_chat_list(
    node: RunningNode, browser: Callable[[str], Page]
) -> None:
    alice_id, _ = node.add_user("alice")
    carol_id, _ = node.add_user("carol")
    bob_id, bob_token = node.add_user("bob")
    url = f"{node.media_url}/"
    # Given bob is logged in on two pages (each its own browser profile) and gets two messages
    phone, laptop = browser("bob-phone"), browser("bob-laptop")
    phone.login(url, bob_id, bob_token)
    laptop.login(url, bob_id, bob_token)
    with connect(node, alice_id) as alice, connect(node, carol_id) as carol:
        alice.send(bob_id, "one").wait("sent", timeout=10)
        alice.send(bob_id, "two").wait("sent", timeout=10)
        carol.send(bob_id, "from carol").wait("sent", timeout=10)
    for page in (phone, laptop):
        page.wait("two unread from alice", lambda p=page: (p.chat(alice_id) or {}).get("unread") == 2)  # type: ignore[misc]
    laptop.shot("two-pages-1-unread")

    # When he reads alice's chat on one page
    phone.open_chat(alice_id)
    phone.wait("the phone shows the messages", lambda: phone.message("two"))

    # Then the badge clears on the other page too, live; carol's chat stays unread on both
    laptop.wait("the laptop's badge clears", lambda: (laptop.chat(alice_id) or {}).get("unread") == 0)
    assert (laptop.chat(carol_id) or {}).get("unread") == 1
    assert (phone.chat(carol_id) or {}).get("unread") == 1
    laptop.shot("two-pages-2-read-elsewhere")

    # And a new page of bob's (nothing kept) lists his chats, newest first, with what is unread
    fresh = browser("bob-tablet")
    fresh.login(url, bob_id, bob_token)

    def both() -> tuple[dict[str, Any], dict[str, Any]] | None:
        with_alice, with_carol = fresh.chat(alice_id), fresh.chat(carol_id)
        return (with_alice, with_carol) if with_alice and with_carol else None

    with_alice, with_carol = fresh.wait("the chat list shows both chats", both)
    assert with_alice["unread"] == 0 and with_carol["unread"] == 1
    assert with_carol["preview"] == "from carol"
    order = fresh.js("return [...document.querySelectorAll('.chat-item')].map((li) => li.dataset.conv)")
    assert order[:2] == [carol_id, alice_id]
    fresh.shot("two-pages-3-new-page")
    for page in (phone, laptop, fresh):
        assert page.errors() == []
