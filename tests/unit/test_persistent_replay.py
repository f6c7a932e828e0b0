"""A persistent session's replay meeting live deliveries, on a real SQLite store: each inbox event
goes out once, in cursor order, whether the replay or the live path has it first, and a live event
that comes ahead of the ones before it waits for them (read from the store)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from broker.persistent import PersistentSessions, sequenced_cursor
from client_sdk.contract import Topics
from config.settings import SessionSettings
from tests.harness import unique
from workers.events import encode
from workers.stores import Store, open_store


class Device:
    """The outlet a connection gives its replay: what was written, and PUBACKs when told."""

    def __init__(self) -> None:
        self.written: list[tuple[dict[str, Any], bool]] = []
        self.pending: list[tuple[Callable[[], None], Callable[[], None]]] = []

    def __call__(
        self, data: bytes, *, dup: bool, acked: Callable[[], None], done: Callable[[], None]
    ) -> bool:
        self.written.append((json.loads(data), dup))
        self.pending.append((acked, done))
        return True

    def ack_all(self) -> None:
        pending, self.pending = self.pending, []
        for acked, done in pending:
            acked()
            done()

    def cursors(self) -> list[int]:
        return [event["cursor"] for event, _dup in self.written if "cursor" in event]


def _store(tmp_path: Path) -> tuple[Store, str, str]:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    alice, bob = unique("alice"), unique("bob")
    for user in (alice, bob):
        store.create_user(user, now=1.0)
    return store, alice, bob


def _live(store: Store, sender: str, to: str, n: int, start: int = 0) -> list[bytes]:
    """Store ``n`` messages to ``to``; their inbox events as the live path publishes them."""
    out = []
    for i in range(start, start + n):
        result = store.accept_message(sender=sender, command_id=f"c{i}", recipient=to, text=f"m{i}", now=2.0)
        out += [encode(e.payload) for e in result.entries if e.user == to]
    return out


async def _resume(
    keeper: PersistentSessions, user: str, device: Device, *, expiry: float | None = None
) -> Any:
    state = SimpleNamespace(
        username=user, client_id=f"{user}/meter", session_expiry=expiry, clean_start=False, resumable=None
    )
    present = await keeper.resume(state)  # type: ignore[arg-type]
    state.resumable.start(device)
    return present, state.resumable


def test_live_events_during_and_after_a_replay_go_out_once_in_order(tmp_path: Path) -> None:
    store, alice, bob = _store(tmp_path)

    async def scenario() -> tuple[list[int], list[int]]:
        keeper = PersistentSessions(store, topics=Topics("chat", "presence"), settings=SessionSettings())
        first = Device()
        await _resume(keeper, bob, first)
        first_replay = keeper._live[f"{bob}/meter"]
        first_replay.ended()
        missed = _live(store, alice, bob, 250)  # more than a page of the replay

        # When the device comes back and, while its replay reads the store, live events arrive:
        # some the replay also reads, and newer ones
        device = Device()
        present, replay = await _resume(keeper, bob, device)
        assert present
        for data in missed[240:]:
            replay.offer(data)
        newer = _live(store, alice, bob, 5, start=250)
        for data in newer[2:]:  # 253-255 live before 251-252 (another node's batch was faster)
            replay.offer(data)
        while len(device.written) < 255:
            device.ack_all()
            await asyncio.sleep(0.01)
        for data in newer:  # and everything once more (two of bob's nodes routed it)
            replay.offer(data)
        more = _live(store, alice, bob, 1, start=255)
        replay.offer(more[0])
        device.ack_all()
        await asyncio.sleep(0.05)
        await keeper.close()
        return device.cursors(), [int(d) for _e, d in device.written]

    cursors, dups = asyncio.run(scenario())
    store.close()
    assert cursors == list(range(1, 257))
    assert not any(dups)


def test_a_live_event_ahead_of_a_gap_waits_for_the_events_before_it(tmp_path: Path) -> None:
    store, alice, bob = _store(tmp_path)

    async def scenario() -> list[int]:
        keeper = PersistentSessions(store, topics=Topics("chat", "presence"), settings=SessionSettings())
        device = Device()
        await _resume(keeper, bob, device)
        await asyncio.sleep(0.05)  # the (empty) replay is over: live from here
        # Given three events stored, of which only the third reached this node live
        events = _live(store, alice, bob, 3)
        keeper._live[f"{bob}/meter"].offer(events[2])
        await asyncio.sleep(0.2)
        await keeper.close()
        return device.cursors()

    assert asyncio.run(scenario()) == [1, 2, 3]
    store.close()


def test_what_was_sent_but_not_acknowledged_is_sent_again_with_dup(tmp_path: Path) -> None:
    store, alice, bob = _store(tmp_path)

    async def scenario() -> list[tuple[int, bool]]:
        keeper = PersistentSessions(store, topics=Topics("chat", "presence"), settings=SessionSettings())
        device = Device()
        _p, replay = await _resume(keeper, bob, device)
        await asyncio.sleep(0.05)
        for data in _live(store, alice, bob, 3):
            replay.offer(data)
        device.pending[0][0]()  # only the first is acknowledged
        replay.ended()
        again = Device()
        present, _replay = await _resume(keeper, bob, again)
        assert present
        await asyncio.sleep(0.1)
        await keeper.close()
        return [(e["cursor"], dup) for e, dup in again.written]

    assert asyncio.run(scenario()) == [(2, True), (3, True)]
    store.close()


def test_only_inbox_events_with_a_cursor_are_sequenced() -> None:
    assert sequenced_cursor(b'{"v":1,"type":"message","cursor":7,"message":{}}') == 7
    assert sequenced_cursor(b'{"v":1,"type":"sync_page","cursor":200,"entries":[]}') is None
    assert sequenced_cursor(b'{"v":1,"type":"typing","from":"a"}') is None
    assert sequenced_cursor(b'{"v":1,"type":"privacy","settings":{}}') is None
    assert sequenced_cursor(b"not json") is None
    assert sequenced_cursor(b'{"type":"message","cursor":true}') is None


def test_an_event_routed_elsewhere_during_the_connect_is_read_from_the_store(tmp_path: Path) -> None:
    store, alice, bob = _store(tmp_path)

    async def scenario() -> list[int]:
        keeper = PersistentSessions(store, topics=Topics("chat", "presence"), settings=SessionSettings())
        device = Device()
        await _resume(keeper, bob, device)
        await asyncio.sleep(0.05)  # the replay found nothing
        # Given an event stored while the locator did not list this node for bob yet: it never
        # comes live here, and no later event shows the gap
        _live(store, alice, bob, 1)
        await asyncio.sleep(1.3)  # the connect's second look at the store
        await keeper.close()
        return device.cursors()

    assert asyncio.run(scenario()) == [1]
    store.close()


def test_a_device_that_stops_acknowledging_gets_no_more_than_the_window(tmp_path: Path) -> None:
    store, alice, bob = _store(tmp_path)

    async def scenario() -> tuple[int, list[int]]:
        keeper = PersistentSessions(store, topics=Topics("chat", "presence"), settings=SessionSettings())
        device = Device()
        _p, replay = await _resume(keeper, bob, device)
        await asyncio.sleep(0.05)
        # When 1,500 events come live to a device that acknowledges none of them
        for data in _live(store, alice, bob, 1500):
            replay.offer(data)
        await asyncio.sleep(0.2)
        stalled = len(device.written)
        # Then it has at most the window unacknowledged; once it acknowledges, it gets the rest,
        # those held and those read back from the store, in order
        while len(device.written) < 1500:
            device.ack_all()
            await asyncio.sleep(0.01)
        await keeper.close()
        return stalled, device.cursors()

    stalled, cursors = asyncio.run(scenario())
    store.close()
    assert stalled == 100
    assert cursors == list(range(1, 1501))
