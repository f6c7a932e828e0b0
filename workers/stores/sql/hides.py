"""Deleting a message for me in the SQL store (the rule: ``rules.hides``).

One transaction: a ``message_hides`` row, the user's own entries that carried the message
rewritten to the hidden stub (``carriers``), and the ``hidden`` event in the user's inbox.
"""

from __future__ import annotations

from sqlalchemy import insert

from workers.stores.records import MessageChange
from workers.stores.rules.hides import check_hide, hidden_event, hidden_stub
from workers.stores.sql.facts import SqlMessageFacts
from workers.stores.sql.schema import message_hides

__all__ = ["SqlHides"]


class SqlHides(SqlMessageFacts):
    def hide_message(self, message_id: str, *, user: str, command_id: str, now: float) -> MessageChange:
        with self._tx() as conn:
            facts = check_hide(self._facts(conn, message_id), message_id=message_id, user=user)
            if user in self._hiders(conn, message_id):
                return MessageChange(changed=False)
            conn.execute(insert(message_hides).values(message_id=message_id, user_id=user, hidden_at=now))
            stub = hidden_stub(facts)
            self._rewrite_carriers(conn, message_id, [user], lambda _old: dict(stub))
            entries = self._append_many(conn, [hidden_event(user, facts, ref=command_id, now=now)], now)
        return MessageChange(changed=True, message=stub, entries=entries)
