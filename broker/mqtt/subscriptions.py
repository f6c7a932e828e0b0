"""The broker's subscriptions, indexed for routing and for disconnects.

Stock amqtt 0.12.1 keeps ``{filter: [(session, qos), ...]}`` and matched every published topic
against every filter, and scanned every filter again when a session ended: O(N) per message and
per disconnect with N clients each on its own inbox. The index keeps amqtt's dict (amqtt's
``add_subscription`` and ``_del_subscription`` still maintain its lists) and adds what makes both
O(1): the set of wildcard filters, the only ones matched one by one (an exact filter is one dict
lookup), and each session's filters, so a disconnect removes exactly those.
"""

from __future__ import annotations

from collections.abc import Callable

from amqtt.session import Session

from broker.members import add_member, members_of, remove_member

__all__ = ["SubscriptionIndex", "is_wildcard"]

Subscribers = dict[str, list[tuple[Session, int]]]


def is_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


class SubscriptionIndex:
    __slots__ = ("_by_filter", "_filters_of", "_matches", "_wildcards")

    def __init__(self, by_filter: Subscribers, *, matches: Callable[[str, str], bool]) -> None:
        """``by_filter``: amqtt's ``Broker._subscriptions`` itself (shared, not copied);
        ``matches(topic, filter)``: amqtt's matching of a topic against a wildcard filter."""
        self._by_filter = by_filter
        self._matches = matches
        self._wildcards: set[str] = set()
        self._filters_of: dict[int, str | set[str]] = {}
        """Each session's filters (one, as most have: the filter itself; broker/members.py)."""

    def added(self, topic_filter: str, session: Session) -> None:
        """``session`` was granted ``topic_filter`` (and is in ``by_filter``'s list for it)."""
        add_member(self._filters_of, id(session), topic_filter)
        if is_wildcard(topic_filter):
            self._wildcards.add(topic_filter)

    def removed(self, topic_filter: str, session: Session) -> None:
        """``session`` left ``topic_filter``; a filter nobody is left on is dropped."""
        remove_member(self._filters_of, id(session), topic_filter)
        if not self._by_filter.get(topic_filter):
            self._by_filter.pop(topic_filter, None)
            self._wildcards.discard(topic_filter)

    def forget(self, session: Session) -> set[str]:
        """The filters of ``session``, which the index no longer lists as its own."""
        filters = members_of(self._filters_of, id(session))
        self._filters_of.pop(id(session), None)
        return filters

    def subscribers(self, topic: str) -> list[tuple[Session, int]]:
        """Each subscription whose filter matches ``topic``: its session and granted QoS."""
        targets = list(self._by_filter.get(topic, ()))
        for topic_filter in self._wildcards:
            if self._matches(topic, topic_filter):
                targets += self._by_filter.get(topic_filter, ())
        return targets
