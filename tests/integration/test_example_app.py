"""The example app (examples/app_login): its users chat through mqchat with the JWTs it hands out,
and nobody runs `mqchat users add`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.targets import free_port
from client_sdk import AuthenticationError, Client, Message
from config.settings import load_settings
from tests.base_only import ROOT
from tests.harness import RunningNode, node_settings, wait_until

EXAMPLE = ROOT / "examples" / "app_login"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RunningNode]:
    """A node with the example's settings file (JWT login, users created on first login)."""
    example = load_settings(EXAMPLE / "mqchat.toml")
    settings = node_settings(tmp_path).with_overrides(auth=example.auth.model_dump())
    running = RunningNode(settings).start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def app(node: RunningNode) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "app.py"), "--port", str(port), "--mqtt-port", str(node.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            assert process.poll() is None, process.communicate()[0]
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.communicate(timeout=30)


def call(app: str, path: str, user: str, password: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"user": user, "password": password}).encode()
    request = urllib.request.Request(app + path, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def login(app: str, user: str, password: str) -> dict[str, Any]:
    assert call(app, "/signup", user, password)[0] == 201
    status, answer = call(app, "/login", user, password)
    assert status == 200, answer
    return answer


def test_the_apps_users_chat_through_mqchat_with_its_jwts(node: RunningNode, app: str) -> None:
    # Given two users of the app that mqchat has never heard of
    store = node.node.store
    assert store is not None
    assert not store.user_exists("ann") and not store.user_exists("ben")
    ann, ben = login(app, "ann", "ann's password"), login(app, "ben", "ben's password")
    assert ann["mqtt"] == {"host": "127.0.0.1", "port": node.port}

    # When they connect with the app's JWTs and ann writes to ben
    with (
        Client("127.0.0.1", node.port, user="ben", token=ben["token"], device="phone") as ben_phone,
        Client("127.0.0.1", node.port, user="ann", token=ann["token"], device="laptop") as ann_laptop,
    ):
        sent = ann_laptop.send("ben", "hi ben, from the app")

        # Then ben gets it, and ann sees it delivered
        message = next(m for m in ben_phone.messages(timeout=10) if isinstance(m, Message))
        assert (message.sender, message.text) == ("ann", "hi ben, from the app")
        sent.wait("delivered", timeout=10)
    assert store.user_exists("ann") and store.user_exists("ben")


def test_the_example_client_script_as_the_readme_runs_it(node: RunningNode, app: str) -> None:
    # bob listens with the script, then amy writes to him with it
    script = [sys.executable, str(EXAMPLE / "chat.py"), "--app", app]
    listening = subprocess.Popen(
        [*script, "bob", "bob's password", "--wait", "20"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        store = node.node.store
        assert store is not None
        assert wait_until(lambda: store.user_exists("bob"), timeout=20)
        sent = subprocess.run(
            [*script, "amy", "amy's password", "bob", "hello bob"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert sent.returncode == 0, sent.stderr
        assert "amy → bob: 'hello bob' (stored)" in sent.stdout
        assert listening.stdout is not None
        assert listening.stdout.readline().strip() == "amy → bob: 'hello bob'"
    finally:
        listening.terminate()
        listening.communicate(timeout=30)


def test_a_wrong_password_gets_no_token_and_a_forged_token_no_connection(node: RunningNode, app: str) -> None:
    login(app, "cid", "cid's password")
    status, answer = call(app, "/login", "cid", "not cid's password")
    assert status == 401
    assert "token" not in answer
    forged = login(app, "dee", "dee's password")["token"][:-4] + "AAAA"
    with (
        pytest.raises(AuthenticationError),
        Client("127.0.0.1", node.port, user="dee", token=forged, device="x", reconnect=False),
    ):
        pass
