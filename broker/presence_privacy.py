"""A user's privacy change applied at once to presence, on every node.

Presence is one retained message per user on ``<presence_prefix>/<user>``; who may subscribe is
the ACL's (the user's ``online`` setting under the server's ``presence.visibility``), and whether
the message carries ``last_seen`` the presence plugin's. When a user changes their settings (their
``privacy`` event passes through the node they are connected to), each node:

- forgets the ACL's remembered "yes" answers about watching that user;
- asks the store again about each session subscribed to the user's presence here, and cuts the
  subscriptions it no longer allows (the watcher gets nothing more, as a stranger would; a new
  SUBSCRIBE is refused);
- then the node where the user is connected publishes their presence again, with or without
  ``last_seen`` (the other nodes get it as any presence change): the watchers who still get it are
  those the new settings allow.

The node that saw the event tells every other live node through its queue, as ``Node.sign_out``
does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from broker.mqtt.plugins import AclPlugin, PresencePlugin
from broker.mqtt.server import MqchatBroker
from client_sdk.contract import VERSION, Topics
from workers.routing import NodeItem

__all__ = ["PRIVACY_EVENT_PREFIX", "PresencePrivacyChanges"]

log = logging.getLogger(__name__)

PRIVACY_EVENT_PREFIX = f'{{"v":{VERSION},"type":"privacy","cursor":'
"""How a stored ``privacy`` event (a change, not a ``privacy_get`` answer) starts in its JSON
(``workers.events.dumps`` of ``rules.inbox.number_entries``): the node tells it from the others by
this prefix alone, without parsing them."""


class PresencePrivacyChanges:
    def __init__(
        self,
        *,
        topics: Topics,
        broker: Callable[[], MqchatBroker | None],
        acl: AclPlugin,
        presence: PresencePlugin,
        hiding_last_seen: Callable[[Sequence[str]], set[str]],
        tell_other_nodes: Callable[[str], None] | None = None,
    ) -> None:
        """``hiding_last_seen(users)``: blocking (the store); ``tell_other_nodes(user)``: passes the
        change on (event loop; it must not block)."""
        self._topics = topics
        self._broker = broker
        self._acl = acl
        self._presence = presence
        self._hiding_last_seen = hiding_last_seen
        self._tell = tell_other_nodes
        self._tasks: set[asyncio.Task[int]] = set()

    def seen_events(self, items: Sequence[NodeItem]) -> None:
        """Events published here (event loop): start applying the privacy changes among them."""
        for user, payload, _qos, _options in items:
            if payload.startswith(PRIVACY_EVENT_PREFIX):
                self.start(user, tell=True)

    def start(self, user: str, *, tell: bool) -> None:
        task = asyncio.ensure_future(self.apply(user, tell=tell))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def apply(self, user: str, *, tell: bool = False) -> int:
        """Apply ``user``'s new settings here (and tell the other nodes); the number of
        subscriptions cut."""
        if tell and self._tell is not None:
            try:
                self._tell(user)
            except Exception:
                log.warning("privacy change of %s not passed on to other nodes", user, exc_info=True)
        self._acl.forget(user)
        cut = await self._cut(user)
        try:
            hidden = await asyncio.to_thread(self._hiding_last_seen, [user])
        except Exception:
            log.warning("privacy of %s unknown: last seen left out", user, exc_info=True)
            hidden = {user}
        # published again after the cut: whoever still gets it may see it
        await self._presence.privacy_changed(user, user in hidden)
        return cut

    async def _cut(self, user: str) -> int:
        broker = self._broker()
        if broker is None:
            return 0
        topic = self._topics.presence(user)
        cut = 0
        for session in broker.subscribers_of(topic):
            watcher = session.username
            if watcher is None or watcher == user:
                continue
            if not await self._acl.may_still_watch(watcher, user):
                broker.cut_subscription(topic, session)
                cut += 1
        if cut:
            log.info("privacy of %s: %d presence subscriptions cut", user, cut)
        return cut
