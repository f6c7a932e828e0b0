"""A fresh machine runs the README's commands: only the base dependencies, no extras.

The suite's venv has every extra, so these tests take them away: either every module outside the
base dependencies is hidden from import (``tests.base_only``), or a wheel built from the checkout
is installed into a new, empty venv, as ``pip install mqchat`` would do.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.targets import free_port
from tests.base_only import ROOT
from tests.harness import need
from tests.media_files import audio, have_pyav, pdf
from tests.plain import PlainClient

BASE_ONLY = [sys.executable, "-m", "tests.base_only"]
CLEAN_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
"""For the wheel's venv: a checkout on the path (and its egg-info) would pass for the installed one."""


def _wait_listening(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"mqchat exited with {process.returncode}:\n{out}\n{err}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listened on {port} within {timeout} s")


class Running:
    """``mqchat run`` started by ``command`` on free ports, stopped with Ctrl-C."""

    def __init__(self, command: list[str], data: Path, *, env: dict[str, str] | None = None) -> None:
        self.mqtt, self.ws, self.http = free_port(), free_port(), free_port()
        self.command, self.data, self.env = command, data, env
        ports = ["--port", str(self.mqtt), "--ws-port", str(self.ws), "--http-port", str(self.http)]
        self.process = subprocess.Popen(
            [*command, "--data-dir", str(data), "run", *ports],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=data,
            env=env,
        )
        _wait_listening(self.mqtt, self.process)

    def add_user(self, name: str) -> str:
        result = subprocess.run(
            [*self.command, "--data-dir", str(self.data), "users", "add", name],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=self.data,
            env=self.env,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT, as Ctrl-C
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err
        return out


def _chat_through(node: Running) -> None:
    """Two plain MQTT clients chat: alice gets ``sent``, bob the message."""
    alice = PlainClient(node.mqtt, "alice", node.add_user("alice"))
    bob = PlainClient(node.mqtt, "bob", node.add_user("bob"))
    try:
        assert alice.inbox() == [1]
        assert bob.inbox() == [1]
        cid = alice.send("bob", "hello from a fresh install")
        alice.expect_type("sent", ref=cid)
        message = bob.expect_type("message")["message"]
        assert (message["from"], message["text"]) == ("alice", "hello from a fresh install")
    finally:
        alice.close()
        bob.close()


@pytest.fixture
def base_only(tmp_path: Path) -> Iterator[Running]:
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env_path]))
    try:
        node = Running(BASE_ONLY, tmp_path)
        yield node
        node.stop()
    finally:
        if env_path is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = env_path


def test_a_node_with_only_the_base_dependencies_chats(base_only: Running) -> None:
    # Given `mqchat run` and `mqchat users add` with no extra importable
    # When two plain MQTT clients chat through it
    # Then the sender gets `sent` and the recipient the message
    _chat_through(base_only)


def _upload(node: Running, user: str, token: str, body: bytes, **params: str) -> int:
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f"http://127.0.0.1:{node.http}/media?{query}", data=body, method="POST")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_voice_notes_and_documents_work_with_only_the_base_dependencies(
    base_only: Running, tmp_path: Path
) -> None:
    # Given a node without PyAV or pypdfium2 (the test itself may make real audio)
    alice_token, bob_token = base_only.add_user("alice"), base_only.add_user("bob")
    bob = PlainClient(base_only.mqtt, "bob", bob_token)
    try:
        assert bob.inbox() == [1]
        note = audio(tmp_path / "note.ogg") if have_pyav() else OGG_OPUS_PAGE
        # When alice sends a voice note and a PDF
        assert _upload(base_only, "alice", alice_token, note, to="bob", id="v-1", kind="voice") == 202
        message = bob.expect_type("message", timeout=20)["message"]
        # Then the voice note is stored as sent, without a duration or waveform
        assert message["media"] == {
            "kind": "voice",
            "key": message["media"]["key"],
            "type": "audio/ogg",
            "size": len(note),
            "duration": None,
            "waveform": None,
        }
        document = pdf()
        status = _upload(
            base_only, "alice", alice_token, document, to="bob", id="d-1", kind="document", name="a.pdf"
        )
        assert status == 202
        media = bob.expect_type("message", timeout=20)["message"]["media"]
        # and the PDF is a document without a thumbnail
        assert (media["kind"], media["type"], media["name"], media["thumbnail"]) == (
            "document",
            "application/pdf",
            "a.pdf",
            None,
        )
    finally:
        bob.close()


OGG_OPUS_PAGE = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13" + b"OpusHead\x01\x01" + b"\x00" * 9
"""One whole Ogg page with an Opus header: what the base install checks without decoding."""


@pytest.mark.parametrize(
    ("section", "setting", "url", "extra"),
    [
        ("locator", "url", "redis://127.0.0.1:6379/0", "redis"),
        ("workers", "queue_url", "amqp://guest:secret@127.0.0.1:5672/", "rabbitmq"),
        ("store", "url", "postgresql://postgres@127.0.0.1/mqchat", "postgres"),
        ("store", "url", "mongodb://127.0.0.1:27017/mqchat", "mongo"),
        ("media", "storage_url", "s3://media?endpoint_url=http://127.0.0.1:8333", "s3"),
    ],
)
def test_a_setting_that_needs_a_missing_extra_is_one_line(
    tmp_path: Path, section: str, setting: str, url: str, extra: str
) -> None:
    settings = tmp_path / "mqchat.toml"
    settings.write_text(f'[{section}]\n{setting} = "{url}"\n')

    result = subprocess.run(
        [*BASE_ONLY, "--config", str(settings), "--data-dir", str(tmp_path), "run", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    line = result.stderr.strip()
    assert line.startswith(f"mqchat: {section}.{setting} is ")
    assert f"pip install 'mqchat[{extra}]'" in line
    assert "secret" not in line  # a password in the URL is not printed


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with mqchat installed from a wheel of this checkout, and nothing else."""
    where = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(where), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    need(built.returncode == 0, f"could not build a wheel (is PyPI reachable?): {built.stderr[-500:]}")
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' scratch folder in the checkout
    (wheel,) = where.glob("mqchat-*.whl")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
        env=CLEAN_ENV,
    )
    need(installed.returncode == 0, f"could not install the wheel's dependencies: {installed.stderr[-500:]}")
    return venv


def test_the_installed_wheel_runs_serves_the_web_client_and_chats(wheel_venv: Path, tmp_path: Path) -> None:
    mqchat = str(wheel_venv / "bin" / "mqchat")
    helped = subprocess.run(
        [mqchat, "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=CLEAN_ENV
    )
    assert helped.returncode == 0, helped.stderr
    assert "usage: mqchat" in helped.stdout

    node = Running([mqchat], tmp_path, env=CLEAN_ENV)
    try:
        # MQTT listens first; on a busy machine the node may still be starting its HTTP server
        _wait_listening(node.http, node.process)
        base = f"http://127.0.0.1:{node.http}"
        with urllib.request.urlopen(f"{base}/", timeout=10) as page:
            html = page.read().decode()
        assert '<script type="module" src="/web/app.js"></script>' in html
        for script in ("/web/app.js", "/web/vendor/mqtt.min.js", "/web/js/connection.js", "/web/style.css"):
            with urllib.request.urlopen(base + script, timeout=10) as response:
                assert response.status == 200
                assert len(response.read()) > 100
        _chat_through(node)
    finally:
        node.stop()
