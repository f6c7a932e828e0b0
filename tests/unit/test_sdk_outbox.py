"""Outgoing messages: statuses only move forward, waits wake up, unanswered sends stay in order."""

from __future__ import annotations

import threading
import time

import pytest

from client_sdk import CommandRejected, Message, NotConnected, OutgoingMessage, Receipt, Status, Timeout
from client_sdk._outbox import Outbox


def stored(message_id: str = "m-1", *, seq: int = 1) -> Message:
    return Message(
        id=message_id,
        conversation="dm:alice:bob",
        seq=seq,
        sender="alice",
        recipient="bob",
        text="hello",
        ts=1764100000.0,
        cursor=4,
    )


def receipt(message_id: str, status: Status, *, by: str = "bob", all: bool = True) -> Receipt:
    return Receipt(
        message_id=message_id,
        conversation="dm:alice:bob",
        seq=1,
        status=status,
        by=by,
        ts=1764100001.0,
        cursor=5,
        all=all,
    )


def rejection(ref: str) -> CommandRejected:
    return CommandRejected(code="unknown_user", ref=ref, message="no user 'bobb'")


def outbox_with(*ids: str) -> Outbox:
    outbox = Outbox()
    for command_id in ids:
        outbox.add(OutgoingMessage(id=command_id, to="bob", text=f"text of {command_id}"))
    return outbox


def test_unanswered_messages_are_kept_in_the_order_they_were_sent() -> None:
    # Given three messages queued
    outbox = outbox_with("c-1", "c-2", "c-3")

    # When the middle one is answered
    outbox.resolve("c-2", stored())

    # Then the others are still pending, oldest first
    assert [m.id for m in outbox.pending()] == ["c-1", "c-3"]
    assert "c-2" not in outbox
    assert len(outbox) == 2


def test_a_command_id_cannot_be_pending_twice() -> None:
    # Given a pending message c-1
    outbox = outbox_with("c-1")

    # When another message reuses its id, Then it is refused
    with pytest.raises(ValueError, match="already pending"):
        outbox.add(OutgoingMessage(id="c-1", to="carol", text="again"))


def test_sent_fills_in_the_stored_message() -> None:
    # Given a pending message
    outbox = outbox_with("c-1")

    # When the server answers sent
    outgoing = outbox.resolve("c-1", stored("m-9", seq=3))

    # Then the caller's handle shows the stored message
    assert outgoing is not None
    assert outgoing.status is Status.SENT
    assert (outgoing.message_id, outgoing.seq, outgoing.conversation) == ("m-9", 3, "dm:alice:bob")


def test_an_answer_for_an_unknown_command_changes_nothing() -> None:
    # Given an outbox with c-1
    outbox = outbox_with("c-1")

    # When answers arrive for commands it does not hold (another device's, or duplicates)
    results = [outbox.resolve("c-other", stored()), outbox.reject("c-other", rejection("c-other"))]

    # Then nothing is matched and c-1 is still pending
    assert results == [None, None]
    assert [m.id for m in outbox.pending()] == ["c-1"]


def test_receipts_move_the_status_forward_only() -> None:
    # Given a sent message
    outbox = outbox_with("c-1")
    outgoing = outbox.resolve("c-1", stored("m-1"))
    assert outgoing is not None

    # When it is read, and a late delivered receipt arrives afterwards
    outbox.on_receipt(receipt("m-1", Status.READ))
    outbox.on_receipt(receipt("m-1", Status.DELIVERED))

    # Then it stays read, for the message and for its recipient
    assert outgoing.status is Status.READ
    assert outgoing.receipts == {"bob": Status.READ}


def test_receipts_for_messages_not_sent_here_are_ignored() -> None:
    # Given an empty outbox
    outbox = Outbox()

    # When a receipt for an unknown message arrives, Then nothing is matched
    assert outbox.on_receipt(receipt("m-unknown", Status.DELIVERED)) is None


def test_only_the_newest_answered_messages_are_followed_for_receipts() -> None:
    # Given an outbox following at most 2 answered messages, and 3 answered
    outbox = Outbox(max_tracked=2)
    handles = []
    for n in (1, 2, 3):
        outbox.add(OutgoingMessage(id=f"c-{n}", to="bob", text="x"))
        handles.append(outbox.resolve(f"c-{n}", stored(f"m-{n}")))

    # When all three are delivered
    matched = [outbox.on_receipt(receipt(f"m-{n}", Status.DELIVERED)) for n in (1, 2, 3)]

    # Then the oldest was forgotten, the two newest moved forward
    assert matched == [None, handles[1], handles[2]]


def test_wait_returns_at_once_when_the_status_is_already_reached() -> None:
    # Given a message already delivered
    outbox = outbox_with("c-1")
    outgoing = outbox.resolve("c-1", stored("m-1"))
    assert outgoing is not None
    outbox.on_receipt(receipt("m-1", Status.DELIVERED))

    # When waiting for sent or delivered (by enum or label), Then it returns the handle without waiting
    started = time.monotonic()
    assert outgoing.wait("sent", timeout=0) is outgoing
    assert outgoing.wait(Status.DELIVERED, timeout=0) is outgoing
    assert time.monotonic() - started < 0.5


def test_wait_wakes_up_when_another_thread_moves_the_status() -> None:
    # Given a pending message and a thread that will answer it shortly
    outbox = outbox_with("c-1")
    outgoing = outbox.pending()[0]
    answer = threading.Timer(0.05, outbox.resolve, args=("c-1", stored()))
    answer.start()

    # When the caller waits for sent
    try:
        result = outgoing.wait("sent", timeout=5)
    finally:
        answer.join()

    # Then it wakes up with the message sent
    assert result.status is Status.SENT


def test_wait_times_out() -> None:
    # Given a message the server never answers
    outgoing = OutgoingMessage(id="c-1", to="bob", text="hi")

    # When waiting briefly, Then Timeout (also a builtin TimeoutError) is raised
    with pytest.raises(Timeout, match="c-1"):
        outgoing.wait("sent", timeout=0.01)
    with pytest.raises(TimeoutError):
        outgoing.wait("sent", timeout=0.01)


def test_a_rejected_message_fails_its_waits_and_leaves_the_outbox() -> None:
    # Given a pending message the server refuses
    outbox = outbox_with("c-1")
    outgoing = outbox.pending()[0]
    outbox.reject("c-1", rejection("c-1"))

    # When the caller waits, Then CommandRejected tells what and which command
    with pytest.raises(CommandRejected) as raised:
        outgoing.wait("sent", timeout=1)
    assert (raised.value.code, raised.value.ref, raised.value.message) == (
        "unknown_user",
        "c-1",
        "no user 'bobb'",
    )
    assert outgoing.error is not None
    assert outgoing.status is None
    assert len(outbox) == 0


def test_closing_the_outbox_wakes_every_waiter() -> None:
    # Given one message pending and one sent, each awaited by a thread
    outbox = outbox_with("c-1", "c-2")
    handles = outbox.pending()
    outbox.resolve("c-2", stored("m-2"))
    errors: list[BaseException] = []

    def waiter(outgoing: OutgoingMessage) -> None:
        try:
            outgoing.wait("read", timeout=5)
        except NotConnected as exc:
            errors.append(exc)

    threads = [threading.Thread(target=waiter, args=(m,)) for m in handles]
    for thread in threads:
        thread.start()

    # When the client closes its outbox
    time.sleep(0.05)
    outbox.close()
    for thread in threads:
        thread.join(5)

    # Then both waits end with NotConnected
    assert len(errors) == 2


@pytest.mark.parametrize("status", ["seen", "SENT ", ""])
def test_waiting_for_an_unknown_status_is_a_value_error(status: str) -> None:
    # Given a message
    outgoing = OutgoingMessage(id="c-1", to="bob", text="hi")

    # When waiting for a status that does not exist, Then ValueError
    with pytest.raises(ValueError, match="unknown status"):
        outgoing.wait(status, timeout=0)


# -- group messages: the status is everyone's, receipts are per member ---------------------------------


def group_message_sent(outbox: Outbox) -> OutgoingMessage:
    outbox.add(OutgoingMessage(id="c-1", to="g:climbing", text="hello everyone"))
    outgoing = outbox.resolve("c-1", stored("m-1"))
    assert outgoing is not None
    return outgoing


def test_a_group_message_moves_only_on_receipts_for_all_members() -> None:
    # Given a message sent to a group of alice, bob and carol
    outbox = Outbox()
    outgoing = group_message_sent(outbox)

    # When bob's delivered receipt arrives (carol has not got it yet)
    outbox.on_receipt(receipt("m-1", Status.DELIVERED, by="bob", all=False))

    # Then bob shows as delivered, but the message itself is still only sent
    assert outgoing.receipts == {"bob": Status.DELIVERED}
    assert outgoing.status is Status.SENT

    # When carol's delivered receipt completes it for everyone
    outbox.on_receipt(receipt("m-1", Status.DELIVERED, by="carol", all=True))

    # Then the message is delivered (two ticks) and both members show delivered
    assert outgoing.status is Status.DELIVERED
    assert outgoing.receipts == {"bob": Status.DELIVERED, "carol": Status.DELIVERED}


def test_reads_of_a_group_message_fill_in_per_member_before_the_status_moves() -> None:
    # Given a group message delivered to everyone
    outbox = Outbox()
    outgoing = group_message_sent(outbox)
    outbox.on_receipt(receipt("m-1", Status.DELIVERED, by="bob", all=False))
    outbox.on_receipt(receipt("m-1", Status.DELIVERED, by="carol", all=True))

    # When carol reads it, and a late delivered of carol's arrives after that
    outbox.on_receipt(receipt("m-1", Status.READ, by="carol", all=False))
    outbox.on_receipt(receipt("m-1", Status.DELIVERED, by="carol", all=False))

    # Then carol shows read, the message is still delivered, and waiting for read times out
    assert outgoing.receipts == {"bob": Status.DELIVERED, "carol": Status.READ}
    assert outgoing.status is Status.DELIVERED
    with pytest.raises(Timeout):
        outgoing.wait("read", timeout=0.01)

    # When bob reads it too
    outbox.on_receipt(receipt("m-1", Status.READ, by="bob", all=True))

    # Then the message is read
    assert outgoing.wait("read", timeout=0).status is Status.READ
    assert outgoing.receipts == {"bob": Status.READ, "carol": Status.READ}


def test_a_wait_for_delivered_wakes_on_the_last_member_only() -> None:
    # Given a group message, and a caller waiting for delivered
    outbox = Outbox()
    outgoing = group_message_sent(outbox)
    results: list[Status | None] = []
    waiter = threading.Thread(target=lambda: results.append(outgoing.wait("delivered", timeout=5).status))
    waiter.start()

    # When the first member's receipt arrives, Then the caller still waits
    outbox.on_receipt(receipt("m-1", Status.DELIVERED, by="bob", all=False))
    time.sleep(0.05)
    assert results == []

    # When the last member's receipt arrives, Then the caller wakes with the message delivered
    outbox.on_receipt(receipt("m-1", Status.DELIVERED, by="carol", all=True))
    waiter.join(5)
    assert results == [Status.DELIVERED]


def test_receipts_are_empty_until_the_first_one() -> None:
    # Given a message just sent, Then no recipient has a receipt yet
    outbox = Outbox()
    outgoing = group_message_sent(outbox)
    assert outgoing.receipts == {}

    # When the view is changed by the caller, Then the message's own view is not
    outgoing.receipts["bob"] = Status.READ
    assert outgoing.receipts == {}
