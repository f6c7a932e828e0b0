"""The `mqchat` command as an operator uses it: run, users, clean stop, clear errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.targets import free_port
from tests.plain import PlainClient

MQCHAT = [sys.executable, "-m", "broker.cli"]


def _cli(data: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MQCHAT, "--data-dir", str(data), *args], capture_output=True, text=True, timeout=60, input=stdin
    )


def _add_user(data: Path, name: str) -> str:
    result = _cli(data, "users", "add", name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


class Server:
    def __init__(self, data: Path, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [*MQCHAT, "--data-dir", str(data), "run", "--port", str(port), "--no-ws", "--http-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.banner = [self.process.stdout.readline() for _ in range(3)]

    def interrupt(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=60)
        return self.process.returncode, out


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path, free_port())
    yield running
    if running.process.poll() is None:
        running.process.kill()
    running.process.communicate(timeout=30)


def test_run_prints_where_it_listens_and_stops_on_ctrl_c(server: Server) -> None:
    assert "is running (event loop: uvloop)" in server.banner[0]  # the default, installed with mqchat
    assert f"mqtt://127.0.0.1:{server.port}" in server.banner[1]
    assert server.banner[2].split()[0] == "media"
    assert server.banner[2].split()[1].startswith("http://127.0.0.1:")
    code, out = server.interrupt()
    assert code == 0
    assert "stopped" in out


def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(tmp_path, "run", "--port", str(port), "--no-ws")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"mqchat: cannot listen on 127.0.0.1:{port}: Address already in use (another port: --port {port + 1})"
    )


def test_users_add_list_token_revoke_remove(tmp_path: Path) -> None:
    token = _add_user(tmp_path, "alice")
    assert token.startswith("mqc_")
    assert _cli(tmp_path, "users", "add", "alice").stderr.strip() == "mqchat: user 'alice' already exists"
    assert _cli(tmp_path, "users", "add", "no/slash").returncode == 2

    listed = _cli(tmp_path, "users", "list").stdout
    assert listed.startswith("alice\tcredentials=1")
    assert _cli(tmp_path, "users", "token", "alice").stdout.startswith("mqc_")
    assert "credentials=2" in _cli(tmp_path, "users", "list").stdout
    assert "removed 2" in _cli(tmp_path, "users", "revoke", "alice").stdout
    assert _cli(tmp_path, "users", "remove", "alice").returncode == 0
    assert _cli(tmp_path, "users", "list").stdout == ""


def test_users_phone(tmp_path: Path) -> None:
    _add_user(tmp_path, "bob")
    assert _cli(tmp_path, "users", "phone", "bob", "+15550001111").returncode == 0
    assert _cli(tmp_path, "users", "phone", "bob").stdout.strip() == "+15550001111"
    assert _cli(tmp_path, "users", "phone", "bob", "555-1234").returncode == 2
    assert _cli(tmp_path, "users", "phone", "nobody", "+15550001111").returncode == 2
    assert _cli(tmp_path, "users", "phone", "bob", "--clear").returncode == 0
    assert _cli(tmp_path, "users", "phone", "bob").stdout.strip() == "-"


def test_users_add_with_a_password(tmp_path: Path) -> None:
    result = _cli(tmp_path, "users", "add", "carol", "--password", stdin="correct horse battery\n")
    assert result.returncode == 0
    short = _cli(tmp_path, "users", "add", "dave", "--password", stdin="short\n")
    assert short.returncode == 2 and "8 characters" in short.stderr


def test_a_bad_settings_file_names_the_field(tmp_path: Path) -> None:
    settings = tmp_path / "bad.toml"
    settings.write_text("[broker]\nmqtt_port = 70000\n")
    result = subprocess.run([*MQCHAT, "--config", str(settings), "settings"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "broker.mqtt_port" in result.stderr


def test_ctrl_c_loses_no_acknowledged_message(tmp_path: Path) -> None:
    # Given a running node and alice, who fires 300 messages at bob without waiting for "sent"
    alice_token, bob_token = _add_user(tmp_path, "alice"), _add_user(tmp_path, "bob")
    server = Server(tmp_path, free_port())
    alice = PlainClient(server.port, "alice", alice_token)
    infos = [
        alice.client.publish(
            "chat/alice/out",
            json.dumps({"v": 1, "type": "send", "id": f"m{i}", "to": "bob", "text": str(i)}),
            1,
        )
        for i in range(300)
    ]
    for info in infos:
        info.wait_for_publish(30)  # every one acknowledged by the broker (PUBACK)

    # When the node is interrupted right away
    code, _ = server.interrupt()
    alice.client.loop_stop()
    assert code == 0

    # Then after a restart bob finds all 300, in order, once
    again = Server(tmp_path, free_port())
    try:
        bob = PlainClient(again.port, "bob", bob_token)
        bob.inbox()
        bob.publish({"v": 1, "type": "sync", "id": "all", "after": 0, "limit": 1000})
        page = bob.expect_type("sync_page", ref="all")
        assert [e["message"]["text"] for e in page["entries"]] == [str(i) for i in range(300)]
        assert not page["more"]
        bob.close()
    finally:
        again.interrupt()


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_sigterm_stops_cleanly_too(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    out, _ = server.process.communicate(timeout=60)
    assert server.process.returncode == 0
    assert "stopped" in out
