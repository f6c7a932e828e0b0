"""Sends the server did not answer are published again: after a pause when deferred (rate_limited,
busy), and after UNANSWERED_RESEND seconds when nothing came back at all (a lost job)."""

from __future__ import annotations

import time

from client_sdk._session import THROTTLE_RESEND_DELAY, UNANSWERED_RESEND
from tests.unit.test_sdk_session import commands, error_event, new_session, sent_event, synced


def test_an_unanswered_send_is_published_again_with_the_same_id() -> None:
    session = new_session()
    synced(session)
    start = time.monotonic()
    out, effects = session.send(to="bob", text="hello", now=start)
    (first,) = commands(effects, "send")

    assert commands(session.on_tick(now=start + UNANSWERED_RESEND / 2), "send") == []
    (again,) = commands(session.on_tick(now=start + UNANSWERED_RESEND + 1), "send")

    assert again == first and again["id"] == out.id
    assert session.next_tick() is not None


def test_an_answered_send_is_not_published_again() -> None:
    session = new_session()
    synced(session)
    out, _ = session.send(to="bob", text="hello", now=time.monotonic())
    session.on_inbox(sent_event(1, out.id, "m1"), now=time.monotonic())

    assert commands(session.on_tick(now=time.monotonic() + UNANSWERED_RESEND * 3), "send") == []


def test_a_deferred_send_is_kept_and_sent_again_after_a_pause() -> None:
    session = new_session()
    synced(session)
    out, _ = session.send(to="bob", text="later", now=10.0)

    effects = session.on_inbox(error_event(out.id, code="rate_limited"), now=10.0)

    assert out.error is None and out.status is None  # not rejected
    assert [e.code for e in effects.events] == ["rate_limited"]
    (again,) = commands(session.on_tick(now=10.0 + THROTTLE_RESEND_DELAY), "send")
    assert again["id"] == out.id
