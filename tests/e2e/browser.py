"""A page of the web client in headless Chromium, driven by Selenium, and what a user sees on it.

Every page is its own browser process with its own profile, as two people on two computers.
Debian's ``chromium`` and ``chromium-driver`` are used as installed: Selenium Manager (which would
download a driver) is never asked, and the flags keep Chromium off the (closed) network.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
"""Screenshots and browser console logs of the e2e tests (git-ignored; CI keeps them)."""

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    # two pages side by side must both count as visible and keep their timers running
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--window-size=1280,800",
    # a microphone that plays a beep, allowed without asking: voice notes can be recorded
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--lang=en-GB",
)

_MESSAGE_JS = """
const [text] = arguments;
for (const m of document.querySelectorAll('#message-list .msg')) {
  const body = m.querySelector('.text');
  if (!body || body.textContent !== text) continue;
  const tick = m.querySelector('.tick');
  const img = m.querySelector('.media img');
  return {
    mine: m.classList.contains('out'),
    status: m.dataset.status,
    tick: tick ? tick.textContent : null,
    tick_color: tick ? getComputedStyle(tick).color : null,
    sender: m.querySelector('.sender') ? m.querySelector('.sender').textContent : null,
    image: img ? {complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
                  blob: img.src.startsWith('blob:')} : null,
  };
}
return null;
"""
_TEXTS_JS = """
return [...document.querySelectorAll('#message-list .msg, #message-list .system')].map((m) =>
  m.classList.contains('system') ? '* ' + m.textContent : (m.querySelector('.text') || {}).textContent);
"""
_CHAT_JS = """
const li = document.querySelector(`.chat-item[data-conv="${arguments[0]}"]`);
if (!li) return null;
const badge = li.querySelector('.badge');
return {
  name: li.querySelector('.chat-name').textContent,
  preview: li.querySelector('.chat-preview').textContent,
  unread: badge ? Number(badge.textContent) : 0,
  online: li.querySelector('.avatar').classList.contains('online'),
};
"""
_CHAT_BY_NAME_JS = """
for (const li of document.querySelectorAll('.chat-item')) {
  if (li.querySelector('.chat-name').textContent !== arguments[0]) continue;
  const badge = li.querySelector('.badge');
  return {id: li.dataset.conv, unread: badge ? Number(badge.textContent) : 0};
}
return null;
"""


class Page:
    """One person's browser showing the web client."""

    def __init__(self, name: str, workdir: Path, *, prefix: str) -> None:
        self.name = name
        self.prefix = prefix
        options = Options()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        profile = workdir / f"profile-{name}"
        profile.mkdir(parents=True, exist_ok=True)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(
            executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver",
            log_output=str(workdir / f"chromedriver-{name}.log"),
        )
        self.driver = webdriver.Chrome(options=options, service=service)
        self.driver.set_page_load_timeout(30)
        self.console: list[dict[str, Any]] = []
        self.closed = False

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        """Close the browser (as a user closing the window); keeps its console log."""
        if self.closed:
            return
        self.closed = True
        try:
            self._collect_console()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            lines = [json.dumps(entry) for entry in self.console]
            (ARTIFACTS / f"{self.prefix}-{self.name}-console.log").write_text("\n".join(lines) + "\n")
        finally:
            self.driver.quit()

    def _collect_console(self) -> None:
        with contextlib.suppress(WebDriverException):  # the browser is gone already
            self.console.extend(self.driver.get_log("browser"))  # type: ignore[no-untyped-call]

    def errors(self) -> list[str]:
        """Uncaught errors and failed loads the page reported on its console."""
        self._collect_console()
        return [e["message"] for e in self.console if e.get("level") == "SEVERE"]

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.prefix}-{name}-{self.name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float = 15.0) -> T:
        """Poll ``probe`` until it returns something truthy; fail with ``what`` and a screenshot."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                last = probe()
                if last:
                    return last
            except WebDriverException as exc:  # a node replaced while reading it: read again
                last = exc
            if time.monotonic() > deadline:
                shot = self.shot(f"timeout-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:40]}")
                raise AssertionError(f"{self.name}'s page: {what} (last seen: {last!r}; screenshot {shot})")
            time.sleep(0.05)

    def element(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    # ------------------------------------------------------------------ what a user does
    def login(self, url: str, user: str, token: str, *, wait: bool = True) -> None:
        self.driver.get(url)
        self.wait("the login form shows", lambda: self._shown("#login-user"))
        self.element("#login-user").send_keys(user)
        self.element("#login-secret").send_keys(token)
        self.element("#login-button").click()
        if wait:
            self.wait_online()

    def connection(self) -> str | None:
        """The connection state the page shows: connecting, syncing, online, offline."""
        state: str | None = self.js("return document.body.dataset.connection || null")
        return state

    def wait_online(self) -> None:
        self.wait(
            "logged in and up to date",
            lambda: (
                self.js("return document.body.dataset.view === 'chat' && document.body.dataset.connection")
                == "online"
            ),
        )

    def new_chat(self, user: str) -> None:
        self.element("#new-chat").click()
        field = self.wait("the new chat dialog opens", lambda: self._shown("#new-chat-user"))
        field.send_keys(user + Keys.ENTER)
        self.wait(f"the chat with {user} is open", lambda: self.title() == user)

    def new_group(self, name: str, members: list[str]) -> None:
        self.element("#new-group").click()
        field = self.wait("the new group dialog opens", lambda: self._shown("#new-group-name"))
        field.send_keys(name)
        self.element("#new-group-members").send_keys(", ".join(members) + Keys.ENTER)
        self.wait(f"the group {name} is open", lambda: self.title() == name)

    def open_chat(self, conversation: str) -> None:
        self.element(f'.chat-item[data-conv="{conversation}"]').click()
        self.wait(
            f"the chat {conversation} is open",
            lambda: (
                self.js("return document.querySelector('.chat-item.active')?.dataset.conv") == conversation
            ),
        )

    def type(self, text: str) -> None:
        self.element("#composer-text").send_keys(text)

    def send_text(self, text: str, *, shown: str | None = None) -> None:
        """Type ``text`` and press Enter; ``shown`` is the whole message when it was begun before."""
        self.element("#composer-text").send_keys(text + Keys.ENTER)
        whole = text if shown is None else shown
        self.wait(f"{whole!r} shows as sent by me", lambda: (self.message(whole) or {}).get("mine"))

    def send_file(self, path: Path, caption: str) -> None:
        self.element("#attach-input").send_keys(str(path))
        self.wait("the photo preview opens", lambda: self._shown("#media-caption"))
        self.wait(
            "the preview image loads",
            lambda: self.js("return document.querySelector('#media-preview img')?.naturalWidth"),
        )
        self.element("#media-caption").send_keys(caption)
        self.element("#media-send").click()

    def _shown(self, css: str) -> WebElement | None:
        element = self.element(css)
        return element if element.is_displayed() else None

    # ------------------------------------------------------------------ what a user sees
    def title(self) -> str:
        return str(self.element("#conv-title").text)

    def status_line(self) -> str:
        """The line under the conversation's name: presence, last seen, typing, members."""
        return str(self.js("return document.getElementById('conv-status').textContent"))

    def message(self, text: str) -> dict[str, Any] | None:
        """The open conversation's message with this text: its ticks, sender, image..."""
        found: dict[str, Any] | None = self.js(_MESSAGE_JS, text)
        return found

    def texts(self) -> list[str]:
        """The texts of the open conversation, top to bottom (group events as '* ...')."""
        return list(self.js(_TEXTS_JS))

    def chat(self, conversation: str) -> dict[str, Any] | None:
        """The chat list's entry of a conversation: name, preview, unread count, online dot."""
        found: dict[str, Any] | None = self.js(_CHAT_JS, conversation)
        return found

    def chat_by_name(self, name: str) -> dict[str, Any] | None:
        """The chat list's entry with this name: its conversation id and unread count."""
        found: dict[str, Any] | None = self.js(_CHAT_BY_NAME_JS, name)
        return found

    def wait_ticks(self, text: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        return self.wait(
            f"{text!r} shows {status}",
            lambda: (m := self.message(text)) and m["status"] == status and m,
            timeout,
        )
