"""Login throttling and command rates, on a fake clock."""

from __future__ import annotations

from broker.throttle import LoginThrottle, RateLimiter


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
