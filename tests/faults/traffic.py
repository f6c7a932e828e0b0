"""Chat traffic for the fault scenarios: pairs of users on two nodes, and the check afterwards.

Senders live on one node and their recipients on the other, half each way. Each sender sends
``per_sender`` numbered messages to its recipient while the scenario breaks things; afterwards every
message its sender saw as *sent* must be stored once and delivered once, in conversation order,
and reach *delivered*. The counts are printed, one line per scenario.
"""

from __future__ import annotations

import threading
import time

from client_sdk import Client, Message, OutgoingMessage, Status
from tests.cluster import Cluster

__all__ = ["Traffic"]


class Traffic:
    def __init__(self, cluster: Cluster, *, pairs: int, per_sender: int, interval: float) -> None:
        self.per_sender = per_sender
        self.interval = interval
        self.senders = [cluster.user(f"s{i}") for i in range(pairs)]
        self.recipients = [cluster.user(f"r{i}") for i in range(pairs)]
        homes = {u: ("n1" if i % 2 == 0 else "n2") for i, u in enumerate(self.senders)}
        homes |= {r: ("n2" if i % 2 == 0 else "n1") for i, r in enumerate(self.recipients)}
        self.clients: dict[str, Client] = {u: cluster.client(u, homes[u]) for u in homes}
        self.received: dict[str, list[Message]] = {r: [] for r in self.recipients}
        self.outgoing: dict[str, list[OutgoingMessage]] = {s: [] for s in self.senders}
        self._stop_reading = threading.Event()
        self._readers = [threading.Thread(target=self._read, args=(r,)) for r in self.recipients]
        self._writers = [
            threading.Thread(target=self._send, args=pair)
            for pair in zip(self.senders, self.recipients, strict=True)
        ]

    def connect(self) -> None:
        """Every client connected and caught up (a sync is a job: the workers must be running)."""
        for client in self.clients.values():
            client.connect()
            client.wait_synced(timeout=30)

    def start(self) -> None:
        """Start reading and sending."""
        for thread in self._readers + self._writers:
            thread.start()

    def _read(self, user: str) -> None:
        while not self._stop_reading.is_set():
            self.received[user].extend(self.clients[user].messages(timeout=0.5))

    def _send(self, sender: str, recipient: str) -> None:
        for i in range(self.per_sender):
            self.outgoing[sender].append(self.clients[sender].send(recipient, f"{sender}:{i}"))
            if self.interval:
                time.sleep(self.interval)

    def sent_so_far(self) -> int:
        return sum(len(v) for v in self.outgoing.values())

    def in_flight(self) -> int:
        """Messages handed to the client whose *sent* has not come back yet."""
        return sum(1 for v in list(self.outgoing.values()) for out in list(v) if out.status is None)

    def finish(self, scenario: str, *, timeout: float = 120.0) -> None:
        """Wait for everything to be stored and delivered, print the counts, and check them."""
        for thread in self._writers:
            thread.join()
        for sender in self.senders:
            for out in self.outgoing[sender]:
                out.wait("sent", timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            len(self.received[r]) < self.per_sender for r in self.recipients
        ):
            time.sleep(0.5)
        self._stop_reading.set()
        for thread in self._readers:
            thread.join()
        for sender in self.senders:
            for out in self.outgoing[sender]:
                out.wait("delivered", timeout=timeout)

        expected = {
            r: [f"{s}:{i}" for i in range(self.per_sender)]
            for s, r in zip(self.senders, self.recipients, strict=True)
        }
        sent = self.sent_so_far()
        stored = sum(1 for v in self.outgoing.values() for out in v if out.message_id)
        delivered = sum(len(v) for v in self.received.values())
        duplicates = sum(len(v) - len({m.id for m in v}) for v in self.received.values())
        lost = sum(len(set(expected[r]) - {m.text for m in self.received[r]}) for r in self.recipients)
        print(
            f"\n{scenario}: sent={sent} stored={stored} delivered={delivered}"
            f" duplicates={duplicates} lost={lost}"
        )

        assert (stored, delivered, duplicates, lost) == (sent, sent, 0, 0)
        for recipient in self.recipients:
            messages = self.received[recipient]
            assert sorted(m.text for m in messages) == sorted(expected[recipient])
            assert [m.seq for m in messages] == list(range(1, self.per_sender + 1))  # in order, no gap
        outgoing = [out for v in self.outgoing.values() for out in v]
        assert all(out.status in (Status.DELIVERED, Status.READ) for out in outgoing)

    def close(self) -> None:
        self._stop_reading.set()
        for client in self.clients.values():
            client.close()
