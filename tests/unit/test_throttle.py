"""Login throttling and command rates, on a fake clock; credential checks in batches."""

from __future__ import annotations

import asyncio
import threading

from broker.throttle import CredentialChecks, LoginThrottle, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_user_is_slowed_after_the_free_failures_and_a_success_clears_it() -> None:
    clock = Clock()
    throttle = LoginThrottle(user_free=3, max_delay=8.0, window=60.0, clock=clock)

    delays = []
    for _ in range(7):
        delays.append(throttle.delay_for("bob"))
        throttle.failed("bob", "10.0.0.1")

    assert delays == [0.0, 0.0, 0.0, 1.0, 2.0, 4.0, 8.0]
    assert throttle.delay_for("alice") == 0.0  # others are not affected
    throttle.succeeded("bob")
    assert throttle.delay_for("bob") == 0.0


def test_failures_age_out_of_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(user_free=2, window=60.0, clock=clock)
    for _ in range(4):
        throttle.failed("bob", None)
    assert throttle.delay_for("bob") == 4.0
    clock.now += 61
    assert throttle.delay_for("bob") == 0.0


def test_an_address_that_keeps_failing_is_locked_out_for_a_while() -> None:
    clock = Clock()
    throttle = LoginThrottle(address_limit=5, lockout=300.0, clock=clock)
    for i in range(4):
        throttle.failed(f"user{i}", "203.0.113.9")
    assert not throttle.address_locked("203.0.113.9")
    throttle.failed("user4", "203.0.113.9")
    assert throttle.address_locked("203.0.113.9")
    assert not throttle.address_locked("203.0.113.10")
    clock.now += 301
    assert not throttle.address_locked("203.0.113.9")


def test_tracking_is_bounded() -> None:
    throttle = LoginThrottle(tracked=100)
    for i in range(10_000):
        throttle.failed(f"user{i}", f"198.51.{i // 256}.{i % 256}")
    assert len(throttle._users._items) == 100
    assert len(throttle._addresses._items) == 100


def test_a_token_bucket_allows_bursts_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)

    assert [limiter.allow("bob") for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5
    assert [limiter.allow("bob") for _ in range(2)] == [True, False]
    assert limiter.allow("alice")


def test_a_refused_take_takes_nothing_and_a_cost_above_the_burst_needs_a_full_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)

    assert limiter.take("bob", 2.0) == 0.0  # 1 token left
    assert limiter.take("bob", 2.0) == 0.5  # refused: half a second until 2
    assert limiter.wait("bob", 2.0) == 0.5  # and nothing was taken
    clock.now += 0.5
    assert limiter.take("bob", 5.0) == 0.5  # above the burst: waits for a full bucket (3)
    clock.now += 0.5
    assert limiter.take("bob", 5.0) == 0.0  # taken from a full bucket: 3 - 5 = -2 left
    assert limiter.wait("bob", 1.0) == 1.5  # 3 tokens short of 1
    limiter.charge("bob", 1.0)
    assert limiter.wait("bob", 1.0) == 2.0


# ---------------------------------------------------------------- credential checks in batches


def _credentials(user: str, secret: str) -> bool:
    """A blocking check: ``<user>-ok`` is the secret, and the user ``broken`` breaks the store."""
    if user == "broken":
        raise ConnectionError("the store is down")
    return secret == f"{user}-ok"


def test_logins_checked_together_each_get_their_own_verdict() -> None:
    async def main() -> list[bool | str]:
        checks = CredentialChecks(_credentials, parallel=2, batch=4)
        logins = [(f"u{i}", f"u{i}-ok" if i % 3 else "wrong") for i in range(40)]
        logins.insert(17, ("broken", "broken-ok"))
        outcomes = await asyncio.gather(*(checks.run(u, s) for u, s in logins), return_exceptions=True)
        return [o if isinstance(o, bool) else type(o).__name__ for o in outcomes]

    outcomes = asyncio.run(main())
    expected: list[bool | str] = [bool(i % 3) for i in range(40)]
    expected.insert(17, "ConnectionError")  # the failing check fails its own login alone
    assert outcomes == expected


def test_logins_waiting_together_are_checked_in_one_call_and_one_by_one_when_it_fails() -> None:
    batches: list[int] = []

    def many(logins: list[tuple[str, str, str | None]]) -> list[bool]:
        batches.append(len(logins))
        if any(user == "broken" for user, _, _ in logins):
            raise ConnectionError("the store is down")
        return [_credentials(user, secret) for user, secret, _ in logins]

    async def main() -> list[bool | str]:
        checks = CredentialChecks(lambda u, s, _device: _credentials(u, s), many=many, parallel=1, batch=4)
        logins = [(f"u{i}", f"u{i}-ok" if i % 3 else "wrong") for i in range(12)]
        logins.insert(6, ("broken", "broken-ok"))
        outcomes = await asyncio.gather(
            *(checks.run(u, s, "phone") for u, s in logins), return_exceptions=True
        )
        return [o if isinstance(o, bool) else type(o).__name__ for o in outcomes]

    outcomes = asyncio.run(main())
    expected: list[bool | str] = [bool(i % 3) for i in range(12)]
    expected.insert(6, "ConnectionError")  # its batch is checked one by one: the others pass
    assert outcomes == expected
    assert batches == [4, 4, 4]  # batches of 4, then the last login alone by the single check


def test_logins_that_come_in_one_pass_of_the_loop_are_one_batch() -> None:
    """A connect storm's logins arrive a few per pass of the loop; each one started a batch of its
    own (a thread hop) while fewer than ``parallel`` ran."""
    batches: list[int] = []

    def many(logins: list[tuple[str, str, str | None]]) -> list[bool]:
        batches.append(len(logins))
        return [_credentials(user, secret) for user, secret, _ in logins]

    async def main() -> list[bool]:
        checks = CredentialChecks(lambda u, s, _device: _credentials(u, s), many=many, parallel=2)
        logins = [(f"u{i}", f"u{i}-ok" if i % 2 else "wrong") for i in range(10)]
        return await asyncio.gather(*(checks.run(u, s, "phone") for u, s in logins))

    assert asyncio.run(main()) == [bool(i % 2) for i in range(10)]
    assert batches == [10]


def test_a_login_that_gives_up_leaves_the_others_checked() -> None:
    release = threading.Event()

    def slow(user: str, secret: str) -> bool:
        release.wait(10)
        return secret == "ok"

    async def main() -> list[bool]:
        checks = CredentialChecks(slow, parallel=1, batch=8)
        first = asyncio.ensure_future(checks.run("a", "ok"))
        waiting = [
            asyncio.ensure_future(checks.run(u, s)) for u, s in [("b", "ok"), ("c", "no"), ("d", "ok")]
        ]
        await asyncio.sleep(0)
        waiting[0].cancel()  # b's connection went away while it waited
        release.set()
        return [await first, await waiting[1], await waiting[2]]

    assert asyncio.run(main()) == [True, False, True]


def test_calling_the_checks_is_the_blocking_check() -> None:
    checks = CredentialChecks(_credentials)
    assert checks("ann", "ann-ok") and not checks("ann", "nope")
