"""Messages in the MongoDB store: storing one (a transaction with its receipts and inbox entries),
finding a resent one, and reading the inbox log (sync)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError

from client_sdk.contract import Status, is_group_id
from workers.errors import UnknownUser
from workers.events import dumps
from workers.stores.mongo.base import message_from_doc
from workers.stores.mongo.blocks import blocked_pairs
from workers.stores.mongo.chat_rows import bump_conversation, note_direct
from workers.stores.mongo.media import media_fields
from workers.stores.mongo.replies import MongoReplies
from workers.stores.mongo.schema import REACHED
from workers.stores.mongo.search import search_fields
from workers.stores.records import AcceptResult, InboxEntry, StoredMessage, SyncPage, TextSend
from workers.stores.rules.group_settings import check_may_send
from workers.stores.rules.inbox import sync_page
from workers.stores.rules.messages import dm_conversation, message_events, message_targets, new_message_id

__all__ = ["MongoMessages"]

log = logging.getLogger(__name__)

_ACCEPT_ATTEMPTS = 3


class MongoMessages(MongoReplies):
    """Messages need their group's members (groups), record their media objects (media) and the
    quote of a reply (replies)."""

    def accept_texts(self, sends: Sequence[TextSend], *, now: float) -> list[AcceptResult] | None:
        return None  # not on MongoDB (a transaction per message): the pipeline stores them one by one

    def accept_message(
        self,
        *,
        sender: str,
        command_id: str,
        recipient: str,
        text: str,
        now: float,
        media: Mapping[str, Any] | None = None,
        reply_to: str | None = None,
    ) -> AcceptResult:
        def work(session: ClientSession) -> AcceptResult:
            existing = self._find_duplicate(session, sender, command_id)
            if existing is not None:
                return existing
            conversation, targets = self._targets(session, sender, recipient)
            reply = None if reply_to is None else self._quote_for(session, sender, conversation, reply_to)
            return self._insert_message(
                session, sender, command_id, recipient, conversation, targets, text, now, media, reply
            )

        return self._accept(sender, command_id, work)

    def _targets(self, session: ClientSession, sender: str, recipient: str) -> tuple[str, list[str]]:
        """The conversation of ``sender``'s message to ``recipient`` and who gets a copy."""
        if is_group_id(recipient):
            roster = self._roster(session, recipient)
            targets = message_targets(recipient, sender, None if roster is None else roster.members)
            check_may_send(recipient, sender, None if roster is None else roster.senders)
            return recipient, targets
        if self._users.find_one({"_id": recipient}, {"_id": True}, session=session) is None:
            raise UnknownUser(recipient)
        conversation = dm_conversation(sender, recipient)
        if blocked_pairs(self._blocks, [(recipient, sender)], session):
            return conversation, []  # blocked: stored and sent, but no copy (rules.blocks)
        return conversation, [recipient]

    def _accept(
        self, sender: str, command_id: str, work: Callable[[ClientSession], AcceptResult]
    ) -> AcceptResult:
        """Run ``work`` (which stores ``sender``'s message for ``command_id``) in a transaction."""
        for attempt in range(1, _ACCEPT_ATTEMPTS + 1):
            try:
                return self._tx(work)
            except DuplicateKeyError:
                # a concurrent resend of the same command won the race: answer with what it stored
                with self._guard():
                    existing = self._find_duplicate(None, sender, command_id)
                if existing is not None:
                    return existing
                if attempt == _ACCEPT_ATTEMPTS:
                    raise
                # otherwise two first messages of a conversation raced to create its seq counter
                log.debug("accept_message: retrying after a duplicate key (%s/%s)", sender, command_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def sent_entry(self, sender: str, command_id: str) -> InboxEntry | None:
        with self._guard():
            existing = self._find_duplicate(None, sender, command_id)
        return None if existing is None else existing.sent

    def _find_duplicate(
        self, session: ClientSession | None, sender: str, command_id: str
    ) -> AcceptResult | None:
        doc = self._messages.find_one({"sender": sender, "command_id": command_id}, session=session)
        if doc is None:
            return None
        message = message_from_doc(doc)
        sent_doc = self._inbox.find_one(
            {"user": sender, "message_id": message.id, "kind": "sent"},
            {"cursor": True, "payload": True},
            session=session,
        )
        if sent_doc is None:  # pragma: no cover - written in the same transaction as the message
            raise RuntimeError(f"message {message.id} has no sent entry")
        sent = InboxEntry(sender, int(sent_doc["cursor"]), sent_doc["payload"])
        return AcceptResult(message=message, duplicate=True, entries=[], sent=sent)

    def _insert_message(
        self,
        session: ClientSession,
        sender: str,
        command_id: str,
        recipient: str,
        conversation: str,
        targets: list[str],
        text: str,
        now: float,
        media: Mapping[str, Any] | None,
        reply: Mapping[str, Any] | None = None,
        forwarded_from: str | None = None,
    ) -> AcceptResult:
        """``reply``: the quote of a reply; ``forwarded_from``: the message a forward copies (its
        media objects are then shared, not owned)."""
        forwarded = forwarded_from is not None
        extra: dict[str, Any] = {}
        if reply is not None:
            extra.update(reply_to=reply["id"], reply=dict(reply))
        if forwarded:
            extra.update(forwarded=True, forwarded_from=forwarded_from)
        # the conversation's seq, its timer (disappearing messages) and the chat list's last_at in
        # the same round trip
        seq, timer = bump_conversation(self._conversations, conversation, session, now)
        if seq == 1 and not is_group_id(conversation):  # the chat list's documents
            note_direct(self._chat_members, conversation, (sender, recipient), session, now)
        expires_at = None if not timer else float(now) + timer
        if expires_at is not None:
            extra["expires_at"] = expires_at
        message = StoredMessage(
            id=new_message_id(),
            conversation=conversation,
            seq=seq,
            sender=sender,
            recipient=recipient,
            text=text,
            ts=now,
            media=None if media is None else dict(media),
            reply=None if reply is None else dict(reply),
            forwarded=forwarded,
            expires_at=expires_at,
        )
        self._messages.insert_one(
            {
                "_id": message.id,
                "conversation": conversation,
                "seq": seq,
                "sender": sender,
                "recipient": recipient,
                "command_id": command_id,
                "text": text,
                "created_at": float(now),
                "targets": len(targets),
                "reached": dict.fromkeys(REACHED.values(), 0),
                **media_fields(media, shared=forwarded),
                **search_fields(text),
                **extra,
            },
            session=session,
        )
        if targets:
            self._receipts.insert_many(
                [
                    {
                        "message_id": message.id,
                        "user": user,
                        "status": int(Status.SENT),
                        "created_at": float(now),
                        "delivered_at": None,
                        "read_at": None,
                    }
                    for user in targets
                ],
                session=session,
            )
        entries = self._append_many(session, message_events(message, command_id, targets), now)
        return AcceptResult(message=message, duplicate=False, entries=entries, sent=entries[0])

    # ----------------------------------------------------------------- sync
    def sync(self, *, user: str, after: int, limit: int) -> tuple[list[InboxEntry], bool]:
        with self._guard():
            rows = list(
                self._inbox.find({"user": user, "cursor": {"$gt": after}}, {"cursor": True, "payload": True})
                .sort("cursor", ASCENDING)
                .limit(limit + 1)
            )
        more = len(rows) > limit
        return [InboxEntry(user, int(r["cursor"]), r["payload"]) for r in rows[:limit]], more

    def sync_page(self, *, user: str, after: int, limit: int, max_bytes: int) -> SyncPage:
        entries, more = self.sync(user=user, after=after, limit=limit)
        texts = [dumps(entry.payload) for entry in entries]  # encoded once: measured, then written
        return sync_page(
            ((e.cursor, orjson.Fragment(text), len(text)) for e, text in zip(entries, texts, strict=True)),
            more=more,
            max_bytes=max_bytes,
        )
