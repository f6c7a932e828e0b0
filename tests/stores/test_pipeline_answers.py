"""MQTT 5 request/response through the real pipeline (every backend): a command whose envelope
names a reply target gets its direct answer routed there, to the node that received it only; a
live answer leaves the inbox, a sequenced one (``sent``, a group change's event with ``ref``) stays
in it too; what other users get, and the answers to commands without a target, do not change.
Typing goes out with a message expiry."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

from tests.harness import unique
from tests.stores.conftest import users
from workers.answers import TYPING, PublishOptions
from workers.jobs import declare_node_actors, node_queue, send_to_node
from workers.locator import MemoryLocator
from workers.pipeline import Pipeline
from workers.routing import Delivery, NodeItem, Router
from workers.stores import Store

NODE = "n1"


class Routed:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def __call__(self, deliveries: list[Delivery]) -> None:
        self.deliveries += deliveries

    def to(self, user: str) -> list[tuple[str, str | None, str | None, PublishOptions | None]]:
        """``(type, ref, node, options)`` of each event routed to ``user``."""
        return [(e["type"], e.get("ref"), node, o) for u, e, node, _qos, o in self.deliveries if u == user]


def command(user: str, kind: str, target: PublishOptions | None = None, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"user": user, "cmd": {"v": 1, "type": kind, "id": unique("c"), **fields}}
    if target is not None:
        item["response"] = target
    return item


def run(store: Store, *batch: dict[str, Any]) -> Routed:
    routed = Routed()
    Pipeline(store=store, route=routed, clock=lambda: 100.0).process_batch(NODE, list(batch))
    return routed


def test_live_answers_go_to_the_reply_target_instead_of_the_inbox(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    phone: PublishOptions = {"topic": f"chat/{alice}/reply/phone", "correlation": "AQI="}
    listing = command(alice, "group_list", phone)
    wrong = command(alice, "receipt", phone, status="read", messages=["nope"])
    plain = command(alice, "group_list")  # no target: the inbox, as with 3.1.1

    routed = run(store, listing, wrong, plain)

    assert routed.to(alice) == [
        ("groups", listing["cmd"]["id"], NODE, phone),
        ("error", wrong["cmd"]["id"], NODE, phone),
        ("groups", plain["cmd"]["id"], NODE, None),
    ]
    assert routed.to(bob) == []


def test_a_sequenced_answer_stays_in_the_inbox_and_a_copy_goes_to_the_reply_target(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    phone: PublishOptions = {
        "topic": f"chat/{alice}/reply/phone",
        "correlation": "cQ==",
        "user_properties": [["t", "1"]],
    }
    hello = command(alice, "send", phone, to=bob, text="hi")
    again = command(bob, "send", None, to=alice, text="hi")  # bob has no target

    routed = run(store, hello, again)
    ref = hello["cmd"]["id"]

    mine = routed.to(alice)
    assert ("sent", ref, NODE, None) in mine  # the inbox, for every device of alice, in cursor order
    assert ("sent", ref, NODE, phone) in mine  # and the answer on the phone's response topic
    assert ("message", None, None, None) in mine  # bob's message to alice: an inbox event as ever
    assert all(o is None for kind, _, _, o in routed.to(bob))  # bob's message and his own sent
    copies = [e for u, e, _, _, o in routed.deliveries if u == alice and o == phone]
    assert len(copies) == 1 and isinstance(copies[0]["cursor"], int)  # the sequenced event itself


def test_a_group_change_answers_the_actor_on_the_target_and_the_members_as_ever(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    phone: PublishOptions = {"topic": f"chat/{alice}/reply"}
    create = command(alice, "group_create", phone, name="trip", members=[bob])

    routed = run(store, create)

    answered = [(kind, o) for kind, ref, _, o in routed.to(alice) if ref == create["cmd"]["id"]]
    assert answered == [("group", None), ("group", phone)]
    assert [o for _, _, _, o in routed.to(bob)] == [None]


def test_the_same_command_id_of_another_user_is_not_an_answer_to_them(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    phone: PublishOptions = {"topic": f"chat/{alice}/reply"}
    mine = command(alice, "group_list", phone)
    theirs = command(bob, "group_list")
    theirs["cmd"]["id"] = mine["cmd"]["id"]

    routed = run(store, mine, theirs)

    assert routed.to(alice) == [("groups", mine["cmd"]["id"], NODE, phone)]
    assert routed.to(bob) == [("groups", mine["cmd"]["id"], NODE, None)]


def test_typing_goes_out_with_a_message_expiry(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")

    routed = run(store, command(alice, "typing", to=bob, state="composing"))

    assert routed.to(bob) == [("typing", None, None, TYPING)]
    assert TYPING["expiry"] > 0


def test_across_the_job_queue_the_answer_goes_back_to_the_node_that_received_the_command_only(
    store: Store,
) -> None:
    alice, bob = users(store, "alice", "bob")
    queue = StubBroker()
    got: dict[str, list[NodeItem]] = {"n1": [], "n2": []}
    # n1's delivery actor runs here, as in node n1; n2's queue is read back as it arrives there
    declare_node_actors(queue, "n1", deliver=lambda node, items: got[node].extend(items), presence=print)
    queue.declare_queue(node_queue("n2"))
    locator = MemoryLocator()
    for name in got:  # alice has a device on each node; the command came in on n1
        locator.set_online(alice, name, now=1.0)
    target: PublishOptions = {
        "topic": f"chat/{alice}/reply/phone",
        "correlation": "AA==",
        "user_properties": [["k", "v"]],
    }
    hello, listing = command(alice, "send", target, to=bob, text="hi"), command(alice, "group_list", target)
    batch = json.loads(json.dumps([hello, listing]))  # as the commands queue carries it
    worker = dramatiq.Worker(queue, queues={node_queue("n1")}, worker_timeout=100)
    worker.start()
    try:
        Pipeline(store=store, route=Router(locator, partial(send_to_node, queue)).route).process_batch(
            "n1", batch
        )
        queue.join(node_queue("n1"))
        pending = queue.queues[node_queue("n2")]
        while not pending.empty():
            got["n2"] += [tuple(item) for item in dramatiq.Message.decode(pending.get_nowait()).args[1]]  # type: ignore[misc]
    finally:
        worker.stop()
        queue.close()

    def seen(node: str) -> list[tuple[str, str | None, PublishOptions | None]]:
        return [
            (json.loads(payload)["type"], json.loads(payload).get("ref"), o) for _, payload, _, o in got[node]
        ]

    assert seen("n1") == [
        ("sent", hello["cmd"]["id"], None),
        ("sent", hello["cmd"]["id"], target),
        ("groups", listing["cmd"]["id"], target),
    ]
    assert seen("n2") == [("sent", hello["cmd"]["id"], None)]  # the other device: the inbox event only
