"""Limits that keep one abusive client from hurting others: login throttling and command rates.

State is per node and bounded: the least recently seen keys are forgotten first. Also here: the
credential checks of logins, run off the event loop a batch at a time (``CredentialChecks``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

__all__ = ["CredentialChecks", "LoginThrottle", "RateLimiter", "check_login"]

log = logging.getLogger(__name__)
V = TypeVar("V")
_Login = tuple[str, str, "str | None", "asyncio.Future[bool]"]
"""A login waiting for its check: (user, secret, device, its verdict)."""


class _Bounded(Generic[V]):
    def __init__(self, size: int, make: Callable[[], V]) -> None:
        self._items: OrderedDict[str, V] = OrderedDict()
        self._size = size
        self._make = make

    def get(self, key: str) -> V:
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = self._make()
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return item

    def pop(self, key: str) -> None:
        self._items.pop(key, None)


class LoginThrottle:
    """Slows guessing per user and locks out addresses that keep failing.

    - A user with more than ``user_free`` failed logins in ``window`` seconds: each further attempt
      waits 1, 2, 4... seconds (at most ``max_delay``) before its credentials are checked, so
      guessing gets slow while the real user, who succeeds, is merely delayed.
    - An address with ``address_limit`` failures in ``window`` seconds is refused outright for
      ``lockout`` seconds.
    """

    def __init__(
        self,
        *,
        user_free: int = 5,
        max_delay: float = 30.0,
        address_limit: int = 20,
        lockout: float = 300.0,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        tracked: int = 100_000,
    ) -> None:
        self._user_free = user_free
        self._max_delay = max_delay
        self._address_limit = address_limit
        self._lockout = lockout
        self._window = window
        self._clock = clock
        self._users: _Bounded[deque[float]] = _Bounded(tracked, deque)
        self._addresses: _Bounded[deque[float]] = _Bounded(tracked, deque)
        self._locked: _Bounded[list[float]] = _Bounded(tracked, lambda: [0.0])

    def _recent(self, failures: deque[float]) -> int:
        horizon = self._clock() - self._window
        while failures and failures[0] < horizon:
            failures.popleft()
        return len(failures)

    def address_locked(self, address: str | None) -> bool:
        return address is not None and self._locked.get(address)[0] > self._clock()

    def delay_for(self, user: str) -> float:
        excess = self._recent(self._users.get(user)) - self._user_free
        return 0.0 if excess < 0 else min(float(2**excess), self._max_delay)

    def failed(self, user: str, address: str | None) -> None:
        now = self._clock()
        self._users.get(user).append(now)
        if address is None:
            return
        failures = self._addresses.get(address)
        failures.append(now)
        if self._recent(failures) >= self._address_limit:
            self._locked.get(address)[0] = now + self._lockout
            failures.clear()

    def succeeded(self, user: str) -> None:
        self._users.pop(user)


class RateLimiter:
    """A token bucket per key: ``rate`` per second on average, bursts of up to ``burst``."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, tracked: int = 100_000
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._one = min(1.0, self._burst)
        """What one token needs in the bucket (a cost above the burst needs a full bucket)."""
        self._clock = clock
        self._buckets: _Bounded[list[float]] = _Bounded(tracked, lambda: [self._burst, self._clock()])

    def allow(self, key: str) -> bool:
        """Take one token if there is one: ``take(key) == 0.0`` in fewer calls (this runs for
        every command, and the calls of ``take`` were most of its cost)."""
        bucket = self._refilled(key)
        if bucket[0] >= self._one:
            bucket[0] -= 1.0
            return True
        return False

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 when taken, else the seconds until there are enough (nothing is
        taken then). A cost above the burst needs a full bucket, and leaves it below zero. (One
        look-up of the bucket: this runs for every command.)"""
        bucket = self._refilled(key)
        wait = self._wait(bucket, cost)
        if wait == 0.0:
            bucket[0] -= cost
        return wait

    def wait(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there for ``key`` (0.0: now); takes nothing."""
        return self._wait(self._refilled(key), cost)

    def charge(self, key: str, cost: float) -> None:
        """Take ``cost`` tokens whatever is left (what was used is known only afterwards)."""
        self._refilled(key)[0] -= cost

    def _refilled(self, key: str) -> list[float]:
        """``key``'s bucket, with the tokens earned since it was last seen."""
        bucket = self._buckets.get(key)
        now = self._clock()
        bucket[0] = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        return bucket

    def _wait(self, bucket: list[float], cost: float) -> float:
        missing = min(cost, self._burst) - bucket[0]
        return 0.0 if missing <= 0 else missing / self._rate


class CredentialChecks:
    """A blocking credential check run off the event loop, many waiting logins to a thread hop.

    ``asyncio.to_thread`` per login cost a thread hand-off and a wake-up of the event loop each. Here
    a login waits on a future; up to ``parallel`` batches (by default one per core: a slow Argon2
    check releases the GIL and uses a core) run at once on the loop's default executor, each taking
    up to ``batch`` of the waiting logins and checking them one after the other, or all at once
    with ``many`` (``many([(user, secret, device), ...])``: a verdict each, in order, the store
    asked once for them all). Under little load a login is checked at once, alone; under a
    connect storm the waiting ones are checked together. A check that raises fails only its own
    login: when ``many`` raises, the batch's logins are checked one by one. Calling the object is
    the blocking check itself. A login for a device (MQTT: ``<user>/<device>``) is checked as
    ``check(user, secret, device)``, one without (HTTP) as ``check(user, secret)``.
    """

    def __init__(
        self,
        check: Callable[..., bool],
        *,
        many: Callable[[list[tuple[str, str, str | None]]], list[bool]] | None = None,
        parallel: int | None = None,
        batch: int = 16,
    ) -> None:
        self._check = check
        self._many = many
        self._parallel = parallel or max(2, os.cpu_count() or 1)
        self._batch = batch
        self._waiting: deque[_Login] = deque()
        self._running = 0
        self._starting = False
        """A start of the waiting logins is due at the end of this pass of the loop."""

    def __call__(self, user: str, secret: str, device: str | None = None) -> bool:
        return _checked(self._check, user, secret, device)

    async def run(self, user: str, secret: str, device: str | None = None) -> bool:
        """Whether ``secret`` is one of ``user``'s credentials, checked on a thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((user, secret, device, future))
        if self._running < self._parallel and not self._starting:
            # at the end of this pass of the loop, with every login that came in it: in a connect
            # storm most batches started at once held one login, a thread hop each
            self._starting = True
            loop.call_soon(self._start_waiting, loop)
        return await future

    def _start_waiting(self, loop: asyncio.AbstractEventLoop) -> None:
        self._starting = False
        while self._waiting and self._running < self._parallel:
            try:
                self._start(loop)
            except Exception:  # noqa: BLE001 - the logins it took were failed with the error
                return

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch: list[_Login] = []
        while self._waiting and len(batch) < self._batch:
            login = self._waiting.popleft()
            if not login[3].done():  # else it gave up (its connection went away)
                batch.append(login)
        if not batch:
            return
        try:
            done = loop.run_in_executor(None, self._check_all, [login[:3] for login in batch])
        except Exception as exc:  # the executor is shut down: the node is stopping
            _settle(batch, [exc] * len(batch))
            raise
        self._running += 1
        done.add_done_callback(partial(self._finished, loop, batch))

    def _check_all(self, logins: list[tuple[str, str, str | None]]) -> list[bool | BaseException]:
        if self._many is not None and len(logins) > 1:
            try:
                verdicts = self._many(logins)
            except Exception:  # each login gets its own answer below
                log.warning(
                    "a batch of %d logins failed; checking them one by one", len(logins), exc_info=True
                )
            else:
                return list(verdicts)
        outcomes: list[bool | BaseException] = []
        for user, secret, device in logins:
            try:
                outcomes.append(_checked(self._check, user, secret, device))
            except Exception as exc:  # noqa: BLE001 - it fails this login alone
                outcomes.append(exc)
        return outcomes

    def _finished(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Login],
        done: asyncio.Future[list[bool | BaseException]],
    ) -> None:
        self._running -= 1
        if done.cancelled():
            for *_, future in batch:
                future.cancel()
        else:
            error = done.exception()
            _settle(batch, [error] * len(batch) if error is not None else done.result())
        self._start_waiting(loop)


def _checked(check: Callable[..., bool], user: str, secret: str, device: str | None) -> bool:
    return bool(check(user, secret) if device is None else check(user, secret, device))


def _settle(batch: list[_Login], outcomes: list[Any]) -> None:
    for (*_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():  # the login gave up (its connection went away)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(bool(outcome))


async def check_login(
    check: Callable[..., bool],
    throttle: LoginThrottle | None,
    user: str,
    secret: str,
    address: str | None,
    *,
    device: str | None = None,
) -> bool:
    """Check a login off the event loop, slowed and counted by ``throttle`` (MQTT and HTTP alike);
    ``device``: the device an MQTT login is for (see ``CredentialChecks``)."""
    if throttle is not None and (delay := throttle.delay_for(user)):
        await asyncio.sleep(delay)  # guessing a password gets slow
    if isinstance(check, CredentialChecks):
        ok = await check.run(user, secret, device)
    else:
        ok = await asyncio.to_thread(_checked, check, user, secret, device)
    if throttle is not None:
        if ok:
            throttle.succeeded(user)
        else:
            throttle.failed(user, address)
    return ok
