"""When to notify whom: one push per burst to users with no connected device, SMS as the fallback.

1. A message is stored for a user connected nowhere: the first message of a burst asks for a
   ``push_burst`` job ``collapse_seconds`` later and an ``sms_check`` job ``sms_delay`` later;
   the rest of the burst only joins the pending list.
2. ``push_burst`` takes the burst, keeps the messages no device has yet (none if the user came
   back meanwhile), and sends one notification per device token (``push_one``, retried with
   backoff on transient FCM errors; a token FCM says is unregistered is forgotten). A user with no
   token gets the SMS at once instead.
3. ``sms_check`` texts the user's phone when messages are still undelivered after the delay,
   and never the same message twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from workers.locator import Locator
from workers.notify.errors import Rejected, TokenGone
from workers.notify.sms import SmsProvider
from workers.stores import Notifications, PushToken, StoredMessage

__all__ = ["Notifier", "Pusher", "Schedule"]

log = logging.getLogger(__name__)

Schedule = Callable[[str, tuple[Any, ...], int], None]
"""``schedule(job, args, delay_ms)``: run a Notifier job later on the notify queue."""


class Pusher(Protocol):
    def send(
        self, *, token: str, title: str, body: str, data: dict[str, str], collapse_key: str
    ) -> dict[str, Any]: ...


_MEDIA_WORDS: Final = {
    "image": "sent a photo",
    "video": "sent a video",
    "voice": "sent a voice message",
    "document": "sent a document",
}
"""What a push says of a message with media and no caption, by the media's kind."""


def _snippet(message: StoredMessage, limit: int = 120) -> str:
    text = message.text.strip()
    if not text:
        media = message.media or {}
        text = _MEDIA_WORDS.get(str(media.get("kind")), "sent a file")
        if media.get("kind") == "document" and media.get("name"):
            text = f"{text}: {media['name']}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Notifier:
    JOBS = ("push_burst", "push_one", "sms_check")

    def __init__(
        self,
        *,
        store: Notifications,
        locator: Locator,
        pusher: Pusher | None,
        sms: SmsProvider,
        schedule: Schedule,
        collapse_seconds: float,
        sms_delay: float,
        sms_preview: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._locator = locator
        self._pusher = pusher
        self._sms = sms
        self._schedule = schedule
        self._collapse_ms = int(collapse_seconds * 1000)
        self._sms_delay_ms = int(sms_delay * 1000)
        self._sms_preview = sms_preview
        self._clock = clock

    # ------------------------------------------------------------------ from the pipeline
    def message_waiting(self, user: str, message_id: str, sender: str) -> None:
        """Message ``message_id`` of ``sender`` was stored for ``user``; notify if no device of
        theirs is connected."""
        if user == sender or self._locator.nodes_of(user):
            return
        push_needed, sms_needed = self._store.note_waiting(user=user, message_id=message_id)
        if push_needed:
            self._schedule("push_burst", (user,), self._collapse_ms)
        if sms_needed:
            self._schedule("sms_check", (user,), self._sms_delay_ms)

    # ------------------------------------------------------------------ jobs
    def push_burst(self, user: str) -> None:
        pending = self._store.take_pending(user)
        if self._locator.nodes_of(user):
            return  # back online: the client syncs what it missed
        waiting = self._store.undelivered(user=user, message_ids=pending)
        if not waiting:
            return
        tokens = self._store.push_tokens(user) if self._pusher is not None else []
        if not tokens:
            self.sms_check(user)  # nothing to push to: the fallback goes now
            return
        for token in tokens:
            title, body = self._push_text(waiting, token)
            data = {
                "count": str(len(waiting)),
                "conversation": waiting[-1].conversation,
                "message_id": waiting[-1].id,
            }
            self._schedule("push_one", (user, token.token, title, body, data), 0)

    def push_one(self, user: str, token: str, title: str, body: str, data: dict[str, str]) -> None:
        if self._pusher is None:
            return
        try:
            self._pusher.send(token=token, title=title, body=body, data=data, collapse_key=f"mqchat-{user}")
        except TokenGone:
            log.info("push token of %s is no longer registered: removed", user)
            self._store.remove_push_token(token)
        except Rejected as exc:
            log.warning("push to %s refused: %s", user, exc)

    def sms_check(self, user: str) -> None:
        texted_until = self._store.sms_checked(user)
        waiting = self._store.undelivered_since(user=user, since=texted_until)
        phone = self._store.phone_of(user)
        if not waiting or phone is None:
            return
        try:
            self._sms.send(user=user, phone=phone, body=self._sms_text(waiting))
        except Rejected as exc:
            log.warning("SMS to %s refused: %s", user, exc)
        self._store.sms_sent(user, until=waiting[-1].ts)

    # ------------------------------------------------------------------ texts
    @staticmethod
    def _push_text(waiting: list[StoredMessage], token: PushToken) -> tuple[str, str]:
        count = len(waiting)
        if not token.preview:
            return "mqchat", f"{count} new message{'s' if count > 1 else ''}"
        last = waiting[-1]
        if count == 1:
            return last.sender, _snippet(last)
        return f"{count} new messages", f"{last.sender}: {_snippet(last)}"

    def _sms_text(self, waiting: list[StoredMessage]) -> str:
        count = len(waiting)
        if self._sms_preview and count == 1:
            return f"mqchat: {waiting[0].sender}: {_snippet(waiting[0])}"
        senders = sorted({m.sender for m in waiting})
        who = ", ".join(senders[:3]) + (" and others" if len(senders) > 3 else "")
        if not self._sms_preview:
            return f"mqchat: you have {count} unread message{'s' if count > 1 else ''}"
        return f"mqchat: {count} unread messages from {who}"
