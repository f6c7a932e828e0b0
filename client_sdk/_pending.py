"""Commands that wait for an answer: a caller blocks until the server's event with ``ref`` = the command id.

A :class:`PendingRequest` is made for one command id and the type of event that answers it (the
sequenced ``group`` event for a group change, the live ``groups`` event for ``group_list``). The
session resolves it when it processes that answer, or rejects it on an ``error`` event with the
same ``ref``; the caller's :meth:`PendingRequest.wait` returns the answer, raises
:class:`CommandRejected`, or raises :class:`Timeout`.

Pure bookkeeping, no I/O. :class:`PendingRequests` is not thread-safe (its owner holds a lock);
each :class:`PendingRequest` guards its own state, so any thread may wait on it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Generic, TypeVar

from client_sdk._errors import CommandRejected, NotConnected, Timeout
from client_sdk._events import (
    BlockList,
    ChatPage,
    DeviceList,
    GroupEvent,
    GroupInvite,
    GroupList,
    HistoryPage,
    JoinRequestList,
    Ok,
    PrivacyAnswer,
    ProfileChanged,
    ProfileList,
    SearchResults,
    TimerInfo,
)
from client_sdk._privacy import GroupInvitation, PrivacyChanged

__all__ = ["PendingRequest", "PendingRequests"]

logger = logging.getLogger(__name__)

A = TypeVar(  # the answer a request waits for (the clients use this one)
    "A",
    GroupEvent,
    GroupList,
    DeviceList,
    Ok,
    ProfileChanged,
    ProfileList,
    GroupInvite,
    JoinRequestList,
    TimerInfo,
    HistoryPage,
    PrivacyChanged,
    PrivacyAnswer,
    GroupInvitation,
    BlockList,
    ChatPage,
    SearchResults,
)
"""The type of event that answers a request."""


class PendingRequest(Generic[A]):
    """The command ``id`` (of type ``kind``), waiting for an ``answer_type`` event with ``ref`` = ``id``."""

    __slots__ = ("_abandoned", "_answer", "_changed", "_error", "answer_type", "id", "kind")

    def __init__(self, *, id: str, kind: str, answer_type: type[A]) -> None:
        self.id = id
        self.kind = kind
        self.answer_type: type[A] = answer_type
        self._changed = threading.Condition(threading.Lock())
        self._answer: A | None = None
        self._error: CommandRejected | None = None
        self._abandoned = False

    def __repr__(self) -> str:
        with self._changed:
            if self._answer is not None:
                state = "answered"
            elif self._error is not None:
                state = f"rejected ({self._error.code})"
            else:
                state = "abandoned" if self._abandoned else "pending"
        return f"PendingRequest({self.kind} {self.id!r}, {state})"

    @property
    def done(self) -> bool:
        """Whether the request was answered or rejected."""
        with self._changed:
            return self._answer is not None or self._error is not None

    def wait(self, *, timeout: float | None) -> A:
        """Block until the answer arrives and return it.

        Raises :class:`CommandRejected` when the server refused the command, :class:`Timeout` after
        ``timeout`` seconds (None: no limit), :class:`NotConnected` when the client was closed first.
        """
        with self._changed:
            self._changed.wait_for(self._settled, timeout)
            return self._outcome(timeout)

    def _settled(self) -> bool:
        """Whether a wait is over (answered, rejected or abandoned); the asyncio client waits on this
        too, with its own wake-ups."""
        return self._answer is not None or self._error is not None or self._abandoned

    def _outcome(self, timeout: float | None) -> A:
        """How a wait ends: the answer, or the error to raise (Timeout when not settled)."""
        if self._answer is not None:
            return self._answer
        if self._error is not None:
            error = self._error
            raise CommandRejected(code=error.code, ref=error.ref, message=error.message)
        if self._abandoned:
            raise NotConnected(f"the client was closed before {self.kind} {self.id!r} was answered")
        raise Timeout(f"{self.kind} {self.id!r} was not answered within {timeout} s")

    def _resolve(self, answer: A) -> None:
        with self._changed:
            self._answer = answer
            self._changed.notify_all()

    def _reject(self, error: CommandRejected) -> None:
        with self._changed:
            self._error = error
            self._changed.notify_all()

    def _abandon(self) -> None:
        with self._changed:
            self._abandoned = True
            self._changed.notify_all()


class PendingRequests:
    """The requests still waiting for their answer, by command id."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[str, PendingRequest[Any]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, ref: object) -> bool:
        return ref in self._pending

    def add(self, request: PendingRequest[Any]) -> None:
        """Start waiting for the answer to ``request``; its command id must not be pending already."""
        if request.id in self._pending:
            raise ValueError(f"a request with command id {request.id!r} is already pending")
        self._pending[request.id] = request

    def resolve(self, ref: str | None, answer: object) -> PendingRequest[Any] | None:
        """``answer`` arrived with ``ref``: hand it to the request waiting for it, if any.

        Returns the request, or None when nothing here waits for ``ref`` (another device's command,
        a replay of an answer already taken, a request given up) or waits for another type of answer.
        """
        request = None if ref is None else self._pending.get(ref)
        if request is None:
            return None
        if not isinstance(answer, request.answer_type):
            logger.warning(
                "%s %s was answered by a %s event; still waiting", request.kind, ref, type(answer).__name__
            )
            return None
        del self._pending[request.id]
        request._resolve(answer)
        return request

    def kind_of(self, ref: str | None) -> str | None:
        """The command type of the request waiting for ``ref`` (None: nothing waits for it)."""
        request = None if ref is None else self._pending.get(ref)
        return None if request is None else request.kind

    def reject(self, ref: str, error: CommandRejected) -> PendingRequest[Any] | None:
        """The server refused the command ``ref``: fail its request (None when nothing waits for it)."""
        request = self._pending.pop(ref, None)
        if request is not None:
            request._reject(error)
        return request

    def discard(self, ref: str) -> None:
        """Stop waiting for ``ref`` (its caller gave up); a later answer is then just an event."""
        self._pending.pop(ref, None)

    def close(self) -> None:
        """The client closed: wake every waiter (their waits raise NotConnected)."""
        for request in self._pending.values():
            request._abandon()
        self._pending.clear()
