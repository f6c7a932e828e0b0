"""Fault test of disappearing messages: a photo sent under a timer is gone from S3 (a real SeaweedFS
server, as in tests/integration/test_media_s3.py) after it expires, although the node and the
worker (whose sweeper expires it) were killed before its time came and started again only after.

A cluster of ``mqchat node`` + ``mqchat worker`` on the machine's Redis (db 13) and PostgreSQL:
run it alone, under the cluster lock
(``flock /tmp/mqchat-cluster.lock pytest tests/faults/test_disappearing_media.py``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import Message, Sent
from tests.cluster import Cluster
from tests.harness import wait_until
from tests.integration.test_media_s3 import S3Server, s3  # noqa: F401 - the SeaweedFS fixture
from tests.media_files import png

SHORT = 6
"""The test-only timer (seconds): long enough to kill both processes before it runs out."""


@pytest.fixture
def s3_cluster(s3: S3Server, tmp_path: Path, postgres_url: str) -> Iterator[tuple[Cluster, str]]:  # noqa: F811
    bucket = s3.new_bucket()
    running = Cluster(tmp_path, "redis://127.0.0.1:6379/13", postgres_url)
    config = running.config.read_text()
    media = f'[media]\nhttp_port = 0\nstorage_url = "{s3.url(bucket)}"\n'
    timers = f"[messages]\ndisappearing_timers = [{SHORT}, 86400]\nexpiry_sweep = 0.2\n"
    running.config.write_text(config.replace("[media]\nhttp_port = 0\n", media) + timers)
    try:
        running.node("n1")
        running.worker("w1")
        yield running, bucket
    finally:
        print(running.report())  # pytest shows it when the test failed
        running.close()


def test_an_expired_photo_leaves_s3_even_if_node_and_worker_restarted_in_between(
    s3_cluster: tuple[Cluster, str],
    s3: S3Server,  # noqa: F811
) -> None:
    cluster, bucket = s3_cluster
    alice, bob = cluster.user("alice"), cluster.user("bob")
    media_url = f"http://127.0.0.1:{cluster._http_port('n1')}"
    with cluster.client(alice, "n1", media_url=media_url) as client:
        client.wait_synced(timeout=15)
        client.set_timer(bob, SHORT)
        out = client.send_media(bob, io.BytesIO(png(320, 200)), caption="burn after reading")
        out.wait("sent", timeout=30)
        (sent,) = [
            e.message
            for e in client.events(timeout=2)
            if isinstance(e, Sent) and e.message.id == out.message_id
        ]
    assert sent.media is not None and sent.expires_at is not None
    assert sent.media.thumbnail is not None
    keys = {sent.media.key, sent.media.thumbnail.key}
    assert keys <= set(s3.keys(bucket))

    # When the node and the worker die before the photo's time comes
    cluster.kill("w1")
    cluster.kill("n1")
    assert time.time() < sent.expires_at, "the processes must be down before the expiry"
    time.sleep(sent.expires_at - time.time() + 0.5)  # its time passes while nothing runs
    assert keys <= set(s3.keys(bucket))  # nothing removed it meanwhile

    # Then once they are back, the first sweeps expire it and its objects leave S3
    cluster.node("n1", cluster.ports["n1"])
    cluster.worker("w1")
    assert wait_until(lambda: not keys & set(s3.keys(bucket)), timeout=60, interval=0.5), s3.keys(bucket)

    # and bob, offline all along, syncs the stub: no caption, no media
    with cluster.client(bob, "n1") as client:
        client.wait_synced(timeout=15)
        copies = [e for e in client.events(timeout=2) if isinstance(e, Message) and e.id == sent.id]
    assert [(m.expired, m.text, m.media) for m in copies] == [(True, "", None)]
