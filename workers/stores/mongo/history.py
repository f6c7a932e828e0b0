"""History of one conversation in the MongoDB store (the rule: ``rules.history``).

The page's messages are read by the unique ``conversation_seq`` index in the direction of the
query, ``limit + 1`` of them; of a group, in chunks whose receipts for the viewer are read
together (one query a chunk), keeping only what the viewer sent or got. Then their views
(``views``); the receipt state of the viewer's own comes from each message's ``targets`` and
``reached`` counters.
"""

from __future__ import annotations

from typing import Any, Final

from pymongo import ASCENDING, DESCENDING
from pymongo.client_session import ClientSession

from workers.stores.mongo.base import Doc
from workers.stores.mongo.views import MongoViews
from workers.stores.rules.history import (
    HistoryPage,
    HistoryQuery,
    check_conversation,
    not_in_conversation,
    page_of,
    receipt_state,
)

__all__ = ["MongoHistory"]

_CHUNK: Final = 200


class MongoHistory(MongoViews):
    def history(self, query: HistoryQuery) -> HistoryPage:
        other = check_conversation(query.conversation, query.viewer)
        group = other is None

        def work(session: ClientSession) -> HistoryPage:
            rows = self._page_rows(session, query, visible_only=group)
            if group and not rows and not self._may_read_group(session, query):
                raise not_in_conversation(query.conversation)
            views = self._message_views(session, [i for _, i in rows], query.viewer)
            page, more = page_of(query, rows, views)
            own = [m["id"] for m in page if m["from"] == query.viewer]
            return HistoryPage(messages=page, more=more, receipts=self._receipt_states(session, own))

        return self._tx(work)

    def _page_rows(
        self, session: ClientSession, query: HistoryQuery, *, visible_only: bool, want: int | None = None
    ) -> list[tuple[int, str]]:
        want = query.limit + 1 if want is None else want
        seq: dict[str, int] = {}
        if query.before is not None:
            seq["$lt"] = query.before
        if query.after is not None:
            seq["$gt"] = query.after
        where: Doc = {"conversation": query.conversation}
        if seq:
            where["seq"] = seq
        found = self._messages.find(where, {"seq": True, "sender": True}, session=session)
        found = found.sort("seq", DESCENDING if query.backwards else ASCENDING)
        if not visible_only:  # of a 1-on-1 conversation the viewer is in, every message is theirs
            return [(int(d["seq"]), d["_id"]) for d in found.limit(want)]
        rows: list[tuple[int, str]] = []
        chunk: list[Doc] = []
        for doc in found.batch_size(_CHUNK):
            chunk.append(doc)
            if len(chunk) == _CHUNK:
                rows.extend(self._visible(session, chunk, query.viewer))
                chunk = []
                if len(rows) >= want:
                    break
        if chunk and len(rows) < want:
            rows.extend(self._visible(session, chunk, query.viewer))
        return rows[:want]

    def _visible(self, session: ClientSession, docs: list[Doc], viewer: str) -> list[tuple[int, str]]:
        others = [d["_id"] for d in docs if d["sender"] != viewer]
        got: set[str] = set()
        if others:
            found = self._receipts.find(
                {"message_id": {"$in": others}, "user": viewer}, {"message_id": True}, session=session
            )
            got = {r["message_id"] for r in found}
        return [(int(d["seq"]), d["_id"]) for d in docs if d["sender"] == viewer or d["_id"] in got]

    def _may_read_group(self, session: ClientSession, query: HistoryQuery) -> bool:
        """A member now, or one who has any message of it (a member who left)."""
        member = self._groups.find_one(
            {"_id": query.conversation, "members.user": query.viewer}, {"_id": True}, session=session
        )
        if member is not None:
            return True
        if query.before is None and query.after is None:
            return False  # that page was the whole conversation, and nothing of it is theirs
        whole = HistoryQuery(query.viewer, query.conversation, None, None, 1)
        return bool(self._page_rows(session, whole, visible_only=True, want=1))

    def _receipt_states(self, session: ClientSession, own: list[str]) -> dict[str, dict[str, Any]]:
        if not own:
            return {}
        found = self._messages.find(
            {"_id": {"$in": own}}, {"targets": True, "reached": True}, session=session
        )
        states = {}
        for doc in found:
            reached = doc.get("reached") or {}
            states[doc["_id"]] = receipt_state(
                int(doc.get("targets") or 0),
                int(reached.get("delivered") or 0),
                int(reached.get("read") or 0),
            )
        return {m: states.get(m, receipt_state(0, 0, 0)) for m in own}
