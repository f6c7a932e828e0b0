"""A client of another stack (Debian's mosquitto-clients) with a user's credentials."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.harness import RunningNode, need
from tests.plain import PlainClient


def _sub(node: RunningNode, user: str, token: str, topic: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(node.port),
            "-u",
            user,
            "-P",
            token,
            "-i",
            f"{user}/mosquitto",
            "-t",
            topic,
            "-q",
            "1",
            "-W",
            "15",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_mosquitto_sub_reads_its_own_inbox_and_mosquitto_pub_sends(node: RunningNode) -> None:
    need(shutil.which("mosquitto_sub") is not None, "mosquitto-clients is not installed")
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token)
    alice.inbox()

    # Given bob reading his inbox with mosquitto_sub (-C 1: exit after one message)
    reader = _sub(node, bob_id, bob_token, f"chat/{bob_id}/in", "-C", "1")
    from tests.harness import wait_until

    assert wait_until(lambda: node.node.locator is not None and bool(node.node.locator.nodes_of(bob_id)))

    # When alice sends him a message
    alice.send(bob_id, "hello mosquitto")
    out, err = reader.communicate(timeout=20)

    # Then mosquitto_sub printed it
    assert reader.returncode == 0, err
    assert json.loads(out)["message"]["text"] == "hello mosquitto"

    # And bob can answer with mosquitto_pub
    command = json.dumps(
        {"v": 1, "type": "send", "id": "from-cli", "to": alice_id, "text": "hi from the shell"}
    )
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(node.port),
            "-u",
            bob_id,
            "-P",
            bob_token,
            "-i",
            f"{bob_id}/pub",
            "-t",
            f"chat/{bob_id}/out",
            "-q",
            "1",
            "-m",
            command,
        ],
        check=True,
        timeout=20,
    )
    assert alice.expect_type("message")["message"]["text"] == "hi from the shell"
    alice.close()


def test_mosquitto_sub_is_refused_another_users_inbox(node: RunningNode) -> None:
    need(shutil.which("mosquitto_sub") is not None, "mosquitto-clients is not installed")
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")

    reader = _sub(node, bob_id, bob_token, f"chat/{alice_id}/in", "-C", "1")
    out, err = reader.communicate(timeout=20)

    # mosquitto_sub 2.0 reports the refused SUBACK and exits without output
    assert "denied" in (out + err).lower(), (reader.returncode, out, err)
    assert out == ""


def test_mosquitto_sub_with_a_wrong_token_is_refused(node: RunningNode) -> None:
    need(shutil.which("mosquitto_sub") is not None, "mosquitto-clients is not installed")
    bob_id, _ = node.add_user("bob")

    reader = _sub(node, bob_id, "mqc_not-the-token", f"chat/{bob_id}/in", "-C", "1")
    out, err = reader.communicate(timeout=20)

    assert reader.returncode != 0
    assert "bad user name or password" in (out + err).lower()
