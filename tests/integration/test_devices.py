"""A user's devices, and signing one out, against a real node: the SDK, plain MQTT, JWTs, the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client_sdk import AuthenticationError, Client, Message
from tests.harness import RunningNode, connect, node_settings, unique, wait_until
from tests.jwt_tokens import AuthServer
from tests.plain import PlainClient
from workers.credentials import hash_token, new_token
from workers.errors import UnknownDevice

MQCHAT = [sys.executable, "-m", "broker.cli"]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RunningNode]:
    running = RunningNode(node_settings(tmp_path, **{"presence.sign_out_sweep": 0.2})).start()
    try:
        yield running
    finally:
        running.close()


def device_token(node: RunningNode, user: str, device: str) -> str:
    store = node.node.store
    assert store is not None
    token = new_token()
    store.add_credential(user, kind="token", secret_hash=hash_token(token), now=time.time(), device=device)
    return token


def device_client(node: RunningNode, user: str, device: str, token: str) -> Client:
    client = Client("127.0.0.1", node.port, user=user, token=token, device=device)
    client.connect()
    client.wait_synced(timeout=10)
    return client


def test_devices_lists_both_devices_online_with_the_push_platform(node: RunningNode) -> None:
    # Given alice on her phone and her laptop, the phone registered for push
    alice, _ = node.add_user("alice")
    with connect(node, alice, device="phone") as phone, connect(node, alice, device="laptop") as laptop:
        phone.register_push("fcm-" + unique("t"), "android")

        # When the laptop lists its devices
        def listed() -> dict[str, object]:
            return {d.device: d for d in laptop.devices()}

        # Then both are there, online, the phone with its platform
        assert wait_until(
            lambda: listed().keys() == {"phone", "laptop"} and listed()["phone"].platform == "android"
        )
        devices = listed()
        assert all(d.online for d in devices.values())  # type: ignore[attr-defined]
        assert devices["laptop"].platform is None  # type: ignore[attr-defined]

    # And once the phone is gone, a new client sees it offline with its last seen
    with connect(node, alice, device="tablet") as tablet:
        assert wait_until(lambda: not {d.device: d for d in tablet.devices()}["phone"].online)


def test_a_plain_mqtt_client_lists_its_devices(node: RunningNode) -> None:
    alice, token = node.add_user("alice")
    plain = PlainClient(node.port, alice, token, device="sensor")
    try:
        plain.subscribe(f"chat/{alice}/in")
        # connects are recorded in batches with last seen: an answer may come before this one's
        answer: dict[str, Any] = {"devices": []}
        deadline = time.monotonic() + 10
        for attempt in range(100):
            plain.publish({"v": 1, "type": "devices", "id": f"d-1-{attempt}"})
            answer = plain.expect_type("devices", ref=f"d-1-{attempt}")
            if answer["devices"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [d["device"] for d in answer["devices"]] == ["sensor"]
        assert answer["devices"][0]["online"] is True and answer["devices"][0]["platform"] is None
        # and a malformed one gets an error event, the connection carries on
        plain.publish({"v": 1, "type": "devices", "id": "d-2", "user": "bob"})
        plain.expect_type("error", ref="d-2", code="bad_request")
    finally:
        plain.close()


def test_a_device_token_logs_in_only_as_its_device(node: RunningNode) -> None:
    alice, _ = node.add_user("alice")
    token = device_token(node, alice, "phone")

    PlainClient(node.port, alice, token, device="phone").close()
    with pytest.raises(ConnectionRefusedError):
        PlainClient(node.port, alice, token, device="laptop").close()


def test_signing_out_one_device_cuts_it_off_and_the_other_keeps_chatting(node: RunningNode) -> None:
    # Given alice's phone and laptop, each with its own device token, and bob
    alice, _ = node.add_user("alice")
    bob, _ = node.add_user("bob")
    phone_token, laptop_token = device_token(node, alice, "phone"), device_token(node, alice, "laptop")
    phone = device_client(node, alice, "phone", phone_token)
    laptop = device_client(node, alice, "laptop", laptop_token)
    try:
        with connect(node, bob) as bob_client:
            # When the phone is signed out on the node
            assert node.call(node.node.sign_out(alice, "phone")) == 1

            # Then the phone is disconnected, and told why instead of reconnecting forever
            with pytest.raises(AuthenticationError):
                list(phone.events(timeout=10))
            # and its token no longer logs it in
            with pytest.raises(ConnectionRefusedError):
                PlainClient(node.port, alice, phone_token, device="phone").close()
            # while the laptop stays connected and keeps chatting
            laptop.send(bob, "still here").wait("delivered", timeout=10)
            assert any(
                isinstance(m, Message) and m.text == "still here" for m in bob_client.messages(timeout=5)
            )
            assert [d.device for d in laptop.devices()] == ["laptop"]
    finally:
        phone.close()
        laptop.close()


def test_signing_out_an_unknown_device_is_refused(node: RunningNode) -> None:
    alice, _ = node.add_user("alice")
    with pytest.raises(UnknownDevice):
        node.call(node.node.sign_out(alice, "nothere"))


def test_a_jwt_issued_before_the_sign_out_is_refused_for_that_device(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    auth = AuthServer(tmp_path_factory.mktemp("auth"))
    running = RunningNode(node_settings(tmp_path, **auth.settings(jwt_create_users=True))).start()
    try:
        alice = unique("alice")
        old = auth.token(alice)
        PlainClient(running.port, alice, old, device="phone").close()
        time.sleep(1.1)  # iat is in whole seconds

        running.call(running.node.sign_out(alice, "phone"))

        with pytest.raises(ConnectionRefusedError):  # issued before: refused for the phone
            PlainClient(running.port, alice, old, device="phone").close()
        PlainClient(running.port, alice, old, device="laptop").close()  # other devices: fine
        fresh = auth.token(alice, iat=int(time.time()) + 1)
        PlainClient(running.port, alice, fresh, device="phone").close()  # issued after: accepted
    finally:
        running.close()


# ---------------------------------------------------------------------- the CLI, against a running node
def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MQCHAT, "--data-dir", str(data), *args], capture_output=True, text=True, timeout=60
    )


def test_the_cli_lists_devices_and_signs_one_out_of_a_running_node(tmp_path: Path) -> None:
    from benchmarks.targets import free_port

    port = free_port()
    assert _cli(tmp_path, "users", "add", "alice").returncode == 0
    phone_token = _cli(tmp_path, "users", "token", "alice", "--device", "phone").stdout.strip()
    laptop_token = _cli(tmp_path, "users", "token", "alice", "--device", "laptop").stdout.strip()
    server = subprocess.Popen(
        [*MQCHAT, "--data-dir", str(tmp_path), "run", "--port", str(port), "--no-ws", "--http-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        for _ in range(3):
            server.stdout.readline()
        phone = PlainClient(port, "alice", phone_token, device="phone")
        laptop = PlainClient(port, "alice", laptop_token, device="laptop")
        lost = []
        phone.client.on_disconnect = lambda *args: lost.append(True)
        try:
            listed = ""
            for _ in range(50):
                listed = _cli(tmp_path, "users", "devices", "alice").stdout
                if "phone\tonline=yes" in listed and "laptop\tonline=yes" in listed:
                    break
                time.sleep(0.1)
            assert "phone\tonline=yes" in listed and "laptop\tonline=yes" in listed

            # When the operator signs the phone out
            result = _cli(tmp_path, "users", "signout", "alice", "phone")
            assert result.returncode == 0, result.stderr
            assert "1 device token(s) revoked" in result.stdout

            # Then the running node cuts the phone off within its sweep, and the laptop stays
            assert wait_until(lambda: bool(lost), timeout=10)
            laptop.subscribe("chat/alice/in")
            laptop.publish({"v": 1, "type": "devices", "id": "d-1"})
            assert [d["device"] for d in laptop.expect_type("devices", ref="d-1")["devices"]] == ["laptop"]
            with pytest.raises(ConnectionRefusedError):
                PlainClient(port, "alice", phone_token, device="phone").close()
        finally:
            phone.client.loop_stop()
            laptop.close()

        # And an unknown device or user gets one clear line and exit code 2
        unknown = _cli(tmp_path, "users", "signout", "alice", "nothere")
        assert unknown.returncode == 2 and "has no device 'nothere'" in unknown.stderr
        nobody = _cli(tmp_path, "users", "devices", "nobody")
        assert nobody.returncode == 2 and "no user 'nobody'" in nobody.stderr
    finally:
        server.terminate()
        server.communicate(timeout=60)
