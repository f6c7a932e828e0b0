"""The asyncio SDK (client_sdk.aio) against the real node: the scenarios of the blocking SDK's
integration tests, awaited.

Each test drives one ``asyncio.run`` from a plain test function: the node runs on its own loop
thread (tests/harness.py), so no pytest plugin is needed, and every task the client starts must
be gone when ``asyncio.run`` returns (``filterwarnings = error`` catches what leaks).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import client_sdk
from client_sdk._settings import MqttVersion
from client_sdk.aio import (
    AuthenticationError,
    Client,
    CommandRejected,
    ConnectError,
    GroupEvent,
    Message,
    NotConnected,
    PresenceForbidden,
    Receipt,
    Status,
    Typing,
)
from tests import harness
from tests.harness import RunningNode, node_settings
from tests.media_files import png


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(_checked(scenario))


async def _checked(scenario: Callable[[], Awaitable[None]]) -> None:
    await scenario()
    # Then nothing the clients started is left running
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == []


@asynccontextmanager
async def connect(node: RunningNode, user: str, **kwargs: Any) -> AsyncIterator[Client]:
    """A connected asyncio client of ``user`` that has caught up with its inbox."""
    async with Client("127.0.0.1", node.port, user=user, token=node.tokens[user], **kwargs) as client:
        await client.wait_synced(timeout=10)
        yield client


async def next_message(client: Client, timeout: float = 10) -> Message:
    async for message in client.messages(timeout=timeout):
        return message
    raise AssertionError("no message arrived")


async def eventually(predicate: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def texts(client: Client, timeout: float = 2) -> list[str]:
    return [m.text async for m in client.messages(timeout=timeout)]


def test_alice_and_bob_chat_both_ways_with_sent_delivered_read(
    node: RunningNode, mqtt_version: MqttVersion
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with (
            connect(node, alice_id, mqtt_version=mqtt_version) as alice,
            connect(node, bob_id, mqtt_version=mqtt_version) as bob,
        ):
            # alice -> bob: sent, then delivered (bob's SDK acknowledges by itself), then read
            out = await alice.send(bob_id, "hello bob")
            await out.wait("sent", timeout=10)
            received = await next_message(bob)
            assert (received.sender, received.recipient, received.text) == (alice_id, bob_id, "hello bob")
            assert received.id == out.message_id and received.seq == out.seq == 1
            await out.wait("delivered", timeout=10)
            await bob.mark_read(received)
            await out.wait("read", timeout=10)
            assert out.status is Status.READ and out.receipts == {bob_id: Status.READ}

            # bob -> alice, the same way back
            reply = await bob.send(alice_id, "hi alice")
            got = await next_message(alice)
            assert got.text == "hi alice" and got.seq == 2 and got.conversation == received.conversation
            await reply.wait("delivered", timeout=10)
            await alice.mark_read(got.id)
            await reply.wait(Status.READ, timeout=10)

            # and typing reaches the other side
            await alice.typing(bob_id)
            typing = [e async for e in bob.events(timeout=2) if isinstance(e, Typing)]
            assert [(t.sender, t.state) for t in typing] == [(alice_id, "composing")]

    run(scenario)


def test_offline_bob_gets_missed_messages_in_order_once_and_alice_gets_receipts_later(
    node: RunningNode, tmp_path: Path, mqtt_version: MqttVersion
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    state = tmp_path / "bob-state.json"

    async def scenario() -> None:
        # Given bob is offline while alice sends three messages, then goes offline herself
        async with connect(node, alice_id, mqtt_version=mqtt_version) as alice:
            outs = [await alice.send(bob_id, f"message {i}") for i in range(3)]
            for out in outs:
                await out.wait("sent", timeout=10)
            alice_cursor = alice.cursor

        # When bob comes back, he gets the three in order, once
        async with connect(node, bob_id, mqtt_version=mqtt_version, state_file=state) as bob:
            assert await texts(bob) == ["message 0", "message 1", "message 2"]
        # and a second login from the state file does not replay them
        async with connect(node, bob_id, mqtt_version=mqtt_version, state_file=state) as bob_again:
            assert bob_again.cursor == bob.cursor
            assert await texts(bob_again, timeout=1) == []

        # Then alice, back online later, gets the delivered receipts she missed
        async with connect(node, alice_id, mqtt_version=mqtt_version, cursor=alice_cursor) as alice:
            receipts = [e async for e in alice.events(timeout=2) if isinstance(e, Receipt)]
            assert sorted((r.seq, r.status) for r in receipts) == [(i, Status.DELIVERED) for i in (1, 2, 3)]
            assert all(r.by == bob_id for r in receipts)

    run(scenario)


def test_both_devices_of_a_user_get_the_message_with_a_blocking_client_beside(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        # bob's laptop runs the blocking client (its waits go to a thread: the loop keeps running)
        with harness.connect(node, bob_id, device="laptop") as laptop:
            async with connect(node, alice_id) as alice, connect(node, bob_id, device="phone") as phone:
                out = await alice.send(bob_id, "to every device")
                await out.wait("delivered", timeout=10)
                assert (await next_message(phone)).text == "to every device"
                on_laptop = await asyncio.to_thread(lambda: next(laptop.messages(timeout=10)))
                assert on_laptop.text == "to every device" and on_laptop.id == out.message_id

                # the blocking client answers the aio one as any other
                answer = await asyncio.to_thread(lambda: laptop.send(alice_id, "from the laptop"))
                assert (await next_message(alice)).text == "from the laptop"
                await asyncio.to_thread(lambda: answer.wait("delivered", timeout=10))

    run(scenario)


def test_a_group_with_an_offline_member_and_its_management(
    node: RunningNode, mqtt_version: MqttVersion
) -> None:
    alice_id, bob_id, carol_id, dave_id = (node.add_user(n)[0] for n in ("alice", "bob", "carol", "dave"))

    async def scenario() -> None:
        # Given alice and bob online, carol offline
        async with (
            connect(node, alice_id, mqtt_version=mqtt_version) as alice,
            connect(node, bob_id, mqtt_version=mqtt_version) as bob,
        ):
            group = await alice.create_group("club", [bob_id, carol_id])
            assert group.members == (alice_id, bob_id, carol_id) and group.admins == (alice_id,)

            # When both send, Then each sees the other's messages, and the aggregate receipt waits for carol
            for sender, text in ((alice, "a1"), (bob, "b1"), (alice, "a2")):
                await (await sender.send(group.id, text)).wait("sent", timeout=10)
            assert await texts(bob) == ["a1", "a2"]
            assert await texts(alice) == ["b1"]
            first = await alice.send(group.id, "everyone?")
            await first.wait("sent", timeout=10)
            await eventually(lambda: first.receipts.get(bob_id) is Status.DELIVERED)
            assert first.status is Status.SENT  # carol has not got it yet

            # the management calls answer with the group after the change
            await alice.promote(group, [bob_id])
            renamed = await bob.rename_group(group, "society")
            assert renamed.name == "society" and set(renamed.admins) == {alice_id, bob_id}
            assert [g.id for g in await bob.groups()] == [group.id]
            assert bob.group(group.id) == renamed
            added = await alice.add_members(group.id, [dave_id])
            assert dave_id in added.members
            removed = await alice.remove_members(group.id, [dave_id])
            assert dave_id not in removed.members
            with pytest.raises(CommandRejected) as excinfo:
                await alice.remove_members(group.id, [dave_id])
            assert excinfo.value.code == "bad_request"

        # When carol comes back, she gets every message in order, once, and her receipt completes "delivered"
        async with connect(node, carol_id, mqtt_version=mqtt_version) as carol:
            got = [m async for m in carol.messages(timeout=2)]
            assert [m.text for m in got] == ["a1", "b1", "a2", "everyone?"]
            assert [m.seq for m in got] == [1, 2, 3, 4]
            left = await carol.leave_group(group.id)
            assert carol_id not in left.members
            refused = await carol.send(group.id, "let me back")
            with pytest.raises(CommandRejected) as excinfo:
                await refused.wait("sent", timeout=10)
            assert excinfo.value.code == "not_member"

        async with connect(node, alice_id, mqtt_version=mqtt_version, cursor=0) as alice:
            events = [e async for e in alice.events(timeout=2)]
            aggregate = [e for e in events if isinstance(e, Receipt) and e.all and e.seq == 4]
            assert [r.status for r in aggregate] == [Status.DELIVERED]
            assert any(isinstance(e, GroupEvent) and e.action == "left" for e in events)

    run(scenario)


def test_presence_of_a_contact_and_not_of_a_stranger(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    stranger_id, _ = node.add_user("stranger")

    async def scenario() -> None:
        async with connect(node, alice_id) as alice:
            await (await alice.send(bob_id, "hi")).wait("sent", timeout=10)  # contacts see each other
            await alice.watch_presence(bob_id)
            async with connect(node, bob_id):
                online = await alice.wait_presence(bob_id, "online", timeout=10)
                assert online.online
            offline = await alice.wait_presence(bob_id, "offline", timeout=10)
            assert not offline.online and offline.last_seen >= online.last_seen
            presence = alice.presence(bob_id)
            assert presence is not None and presence.status == "offline"

            with pytest.raises(PresenceForbidden):
                await alice.watch_presence(stranger_id)

    run(scenario)


def test_an_image_round_trips_processed_and_downloads_as_the_blocking_client_does(
    node: RunningNode, tmp_path: Path
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with (
            connect(node, alice_id, media_url=node.media_url) as alice,
            connect(node, bob_id, media_url=node.media_url) as bob,
        ):
            out = await alice.send_media(bob_id, io.BytesIO(png(640, 400)), caption="the view")
            await out.wait("sent", timeout=15)
            message = await next_message(bob, timeout=15)
            assert (message.text, message.id) == ("the view", out.message_id)
            media = message.media
            assert media is not None and media.thumbnail is not None
            assert (media.type, media.width, media.height) == ("image/png", 640, 400)

            data = await bob.download(message)
            image = Image.open(io.BytesIO(data))
            assert image.size == (640, 400) and len(data) == media.size
            assert image.convert("RGBA").getpixel((50, 16)) == (50, 16, 100, 200)
            thumbnail = Image.open(io.BytesIO(await bob.download(message, thumbnail=True)))
            assert thumbnail.format == "JPEG" and thumbnail.size == (320, 200)
            target = tmp_path / "received.png"
            assert await bob.download_to(target, message) == len(data) and target.read_bytes() == data

            # the same bytes as the blocking client gets, and the same receipts as a text
            with client_sdk.Client(
                "127.0.0.1", node.port, user=alice_id, token=node.tokens[alice_id], media_url=node.media_url
            ) as blocking:
                assert await asyncio.to_thread(blocking.download, media) == data
            await out.wait("delivered", timeout=10)
            await bob.mark_read(message)
            await out.wait("read", timeout=10)

            # a refused upload raises the blocking client's error
            with pytest.raises(CommandRejected) as excinfo:
                await alice.send_media(bob_id, io.BytesIO(b"not an image at all"))
            assert excinfo.value.code == "unsupported_media"

    run(scenario)


def test_messages_sent_while_the_node_is_down_are_resent_and_stored_once(
    tmp_path: Path, mqtt_version: MqttVersion
) -> None:
    # a node on a fixed port, so the client can reconnect to it after a restart
    first = RunningNode(node_settings(tmp_path)).start()
    port = first.port
    alice_id, _ = first.add_user("alice")
    bob_id, _ = first.add_user("bob")
    tokens = dict(first.tokens)
    first.close()
    node = RunningNode(node_settings(tmp_path, **{"broker.mqtt_port": port})).start()
    node.tokens = tokens

    async def scenario() -> None:
        async with (
            connect(node, alice_id, mqtt_version=mqtt_version) as alice,
            connect(node, bob_id, mqtt_version=mqtt_version) as bob,
        ):
            # When the node goes away, alice keeps sending
            await asyncio.to_thread(node.stop)
            await eventually(lambda: not alice.connected)
            pending = [await alice.send(bob_id, f"while down {i}") for i in range(3)]
            assert all(p.status is None for p in pending)
            with pytest.raises(NotConnected):
                await alice.typing(bob_id)

            # Then when it is back, her SDK resends them and each is stored once
            await asyncio.to_thread(node.start)
            for p in pending:
                await p.wait("sent", timeout=20)
            assert await texts(bob, timeout=3) == [f"while down {i}" for i in range(3)]
            for p in pending:
                await p.wait("delivered", timeout=10)

    try:
        run(scenario)
    finally:
        node.close()


def test_over_mqtt_5_a_refused_command_is_refused_in_its_puback_too(
    tmp_path: Path, mqtt_version: MqttVersion, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a node that lets a user send a burst of 3 commands, then 2 a second
    node = RunningNode(
        node_settings(tmp_path, **{"limits.commands_burst": 3, "limits.commands_per_second": 2.0})
    ).start()
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    caplog.set_level(logging.WARNING, logger="client_sdk")

    async def scenario() -> None:
        async with connect(node, alice_id, mqtt_version=mqtt_version) as alice, connect(node, bob_id) as bob:
            # When alice sends more at once than that, Then her SDK waits out `rate_limited`
            # and resends: every message goes, once, in order
            outs = [await alice.send(bob_id, f"flood {i}") for i in range(6)]
            for out in outs:
                await out.wait("sent", timeout=30)
            assert await texts(bob) == [f"flood {i}" for i in range(6)]

    try:
        run(scenario)
    finally:
        node.close()
    # and over MQTT 5 the server's PUBACKs said so as well (quota exceeded): the SDK logged them
    pubacks = [r.getMessage() for r in caplog.records if "(PUBACK)" in r.getMessage()]
    if mqtt_version == "5":
        assert pubacks and all(line.endswith("Quota exceeded") for line in pubacks)
    else:
        assert pubacks == []


def test_bad_input_raises_what_the_blocking_client_raises(node: RunningNode) -> None:
    alice_id, token = node.add_user("alice")

    async def scenario() -> None:
        with pytest.raises(ValueError, match="is not a user id") as blocking_error:
            client_sdk.Client("127.0.0.1", node.port, user="not a user!", token=token)
        with pytest.raises(ValueError, match="is not a user id") as aio_error:
            Client("127.0.0.1", node.port, user="not a user!", token=token)
        assert str(aio_error.value) == str(blocking_error.value)

        with pytest.raises(AuthenticationError):
            await Client("127.0.0.1", node.port, user=alice_id, token="wrong").connect()
        unused = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        closed_port = unused.sockets[0].getsockname()[1]
        unused.close()
        await unused.wait_closed()
        with pytest.raises(ConnectError):
            await Client("127.0.0.1", closed_port, user=alice_id, token=token).connect()

        chat = Client("127.0.0.1", node.port, user=alice_id, token=token)
        with pytest.raises(NotConnected):
            await chat.send("bob", "too early")
        async with chat:
            await chat.wait_synced(timeout=10)
            with pytest.raises(ValueError, match="neither a user id nor a group id"):
                await chat.send("not a user!", "hello")
            unknown = await chat.send("nobody-here", "hello")
            with pytest.raises(CommandRejected) as excinfo:
                await unknown.wait("sent", timeout=10)
            assert excinfo.value.code == "unknown_user"
            with pytest.raises(CommandRejected) as excinfo:
                await chat.rename_group("g:nosuchgroup", "x")
            assert excinfo.value.code in {"unknown_group", "not_member"}
            await chat.register_push("token-1", "android")
            await chat.unregister_push("token-1")
            with pytest.raises(RuntimeError):
                await chat.connect()
        with pytest.raises(RuntimeError):
            await chat.connect()  # a client is opened once
        assert await texts(chat, timeout=1) == []  # a closed client's iterators end

    run(scenario)


def test_a_user_lists_its_own_devices(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")

    async def scenario() -> None:
        # Given alice on a laptop (asyncio) and a phone (blocking client)
        with harness.connect(node, alice_id, device="phone") as phone:
            phone.register_push("fcm-token-of-the-phone", "android")
            async with connect(node, alice_id, device="laptop") as laptop:
                # When the laptop asks for alice's devices (connects and platforms are recorded
                # in the background: ask again until they are)
                devices: dict[str, Any] = {}
                async with asyncio.timeout(10):
                    while set(devices) != {"laptop", "phone"} or devices["phone"].platform is None:
                        devices = {d.device: d for d in await laptop.devices()}
                        await asyncio.sleep(0.05)

                # Then both are listed, online, with the phone's platform
                assert set(devices) == {"laptop", "phone"}
                assert devices["laptop"].online and devices["phone"].online
                assert devices["phone"].platform == "android"
                assert devices["laptop"].first_seen <= devices["laptop"].last_seen

    run(scenario)
