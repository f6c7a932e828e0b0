"""The per-user upload quota (count a minute, bytes an hour), on a fake clock."""

from __future__ import annotations

from broker.upload_quota import UploadQuota
from tests.unit.test_throttle import Clock

MIB = 1024 * 1024


def test_uploads_a_minute_come_in_a_burst_then_at_the_rate_with_the_wait_told() -> None:
    clock = Clock()
    quota = UploadQuota(per_minute=3, bytes_per_hour=100 * MIB, clock=clock)

    assert [quota.admit("alice", 1000) for _ in range(3)] == [None, None, None]
    refused = quota.admit("alice", 1000)
    assert refused is not None and refused.retry_after == 20 and "3 uploads a minute" in refused.message
    assert quota.check("alice", 1000) == refused  # asking counts nothing
    assert quota.admit("bob", 1000) is None  # others are not affected
    clock.now += 20
    assert quota.admit("alice", 1000) is None
    assert quota.admit("alice", 1000) is not None


def test_bytes_an_hour_are_charged_when_received_and_refuse_what_does_not_fit() -> None:
    clock = Clock()
    quota = UploadQuota(per_minute=100, bytes_per_hour=10 * MIB, clock=clock)

    assert quota.admit("alice", 8 * MIB) is None
    quota.received("alice", 8 * MIB)
    too_much = quota.admit("alice", 4 * MIB)
    assert too_much is not None and "10 MiB an hour" in too_much.message
    assert too_much.retry_after == 720  # 2 MiB missing, at 10 MiB an hour
    assert quota.admit("alice", 1 * MIB) is None  # what still fits passes
    quota.received("alice", 3 * MIB)  # a client that announced less than it sent is charged it all
    assert quota.admit("alice", None) is not None  # nothing is left, not even for one byte
    clock.now += 3600  # an hour later: 10 MiB more, less the 1 MiB overdrawn
    assert quota.admit("alice", 10 * MIB) is not None and quota.admit("alice", 9 * MIB) is None


def test_an_upload_larger_than_the_hourly_volume_waits_for_a_full_bucket() -> None:
    clock = Clock()
    quota = UploadQuota(per_minute=100, bytes_per_hour=MIB, clock=clock)
    assert quota.admit("alice", 5 * MIB) is None  # a full bucket lets it start
    quota.received("alice", 5 * MIB)
    refused = quota.admit("alice", 1)
    assert refused is not None and refused.retry_after == 4 * 3600 + 1
