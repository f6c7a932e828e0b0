"""The media job on its own (real SQLite store, real folder): retries store once, refusals leave nothing."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.media_files import jpeg, png_bomb
from workers.errors import StoreUnavailable
from workers.locator import MemoryLocator
from workers.media.job import MediaJob, MediaLimits, upload_key
from workers.media.local import LocalStorage
from workers.routing import NodeItem, Router
from workers.stores import AcceptResult, open_store
from workers.stores.sql import SqlStore

LIMITS = MediaLimits(
    max_image_bytes=1 << 20, max_video_bytes=1 << 20, max_image_pixels=10**6, thumbnail_size=64
)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
        assert isinstance(store, SqlStore)
        store.create_schema()
        for user in ("alice", "bob"):
            store.create_user(user, now=time.time())
        self.store = store
        self.storage = LocalStorage(tmp_path / "media", secret=b"s" * 32)
        self.published: list[tuple[str, dict[str, Any]]] = []
        locator = MemoryLocator()
        locator.set_online("alice", "n1", now=0.0)
        locator.set_online("bob", "n1", now=0.0)
        self.router = Router(locator, lambda node, items: self.published.extend(_decode(items)))
        self.routed: list[AcceptResult] = []

        def route(node: str, sender: str, result: AcceptResult) -> None:
            self.routed.append(result)
            entries = [result.sent] if result.duplicate else result.entries
            self.router.deliver(((e.user, e.payload) for e in entries), origin=(sender, node))

        self.job = MediaJob(
            store=store, storage=self.storage, router=self.router, route_message=route, limits=LIMITS
        )

    def upload(self, media_id: str, data: bytes, command_id: str = "c-1") -> dict[str, Any]:
        self.storage.put_stream(
            upload_key(media_id), io.BytesIO(data), content_type="application/octet-stream"
        )
        return {
            "node": "n1",
            "sender": "alice",
            "id": command_id,
            "to": "bob",
            "caption": "hi",
            "media_id": media_id,
        }

    def files(self) -> list[str]:
        root = self.storage.root
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _decode(items: list[NodeItem]) -> Iterator[tuple[str, dict[str, Any]]]:
    import json

    for user, payload, _, _ in items:
        yield user, json.loads(payload)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    made = Setup(tmp_path)
    yield made
    made.store.close()


def test_a_job_run_twice_stores_the_message_once(setup: Setup) -> None:
    job = setup.upload("a" * 32, jpeg())
    setup.job.process(job)
    setup.job.process(job)  # a retry after the message was stored: the upload is gone by now

    assert [e["type"] for u, e in setup.published if u == "bob"] == ["message"]
    assert [e["type"] for u, e in setup.published if u == "alice"] == ["sent", "sent"]
    assert setup.files() == [f"m/{'a' * 32}.jpg", f"m/{'a' * 32}.thumb.jpg"]


def test_a_job_that_met_an_unavailable_store_does_the_same_work_again(setup: Setup) -> None:
    job = setup.upload("b" * 32, jpeg())
    accept = setup.store.accept_message
    calls = 0

    def flaky(**kwargs: Any) -> AcceptResult:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreUnavailable("database unavailable")
        return accept(**kwargs)

    setup.store.accept_message = flaky  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        setup.job.process(job)  # Dramatiq retries it
    assert setup.published == [] and f"uploads/{'b' * 32}" in setup.files()
    setup.job.process(job)
    assert [e["type"] for _, e in setup.published] == ["sent", "message"]
    assert setup.files() == [f"m/{'b' * 32}.jpg", f"m/{'b' * 32}.thumb.jpg"]


def test_a_second_upload_with_a_stored_command_id_leaves_no_orphans(setup: Setup) -> None:
    setup.job.process(setup.upload("c" * 32, jpeg()))
    setup.job.process(setup.upload("d" * 32, jpeg()))  # same command id c-1, another upload
    assert setup.files() == [f"m/{'c' * 32}.jpg", f"m/{'c' * 32}.thumb.jpg"]
    assert setup.routed[-1].duplicate


def test_a_refused_upload_leaves_nothing_and_tells_the_sender(setup: Setup) -> None:
    setup.job.process(setup.upload("e" * 32, png_bomb()))
    assert setup.files() == []
    [(user, error)] = setup.published
    assert user == "alice" and (error["type"], error["ref"], error["code"]) == ("error", "c-1", "bad_media")


def test_an_upload_over_the_limit_is_refused_even_if_it_got_through(setup: Setup) -> None:
    setup.job.process(setup.upload("f" * 32, jpeg()[:-2] + b"\x00" * (1 << 20) + b"\xff\xd9"))
    assert setup.files() == [] and setup.published[0][1]["code"] == "too_large"


def test_a_document_past_the_limit_at_processing_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    # the limit went down between the upload and its processing (a restart with new settings)
    setup = Setup(tmp_path)
    setup.job = MediaJob(
        store=setup.store,
        storage=setup.storage,
        router=setup.router,
        route_message=lambda node, sender, result: None,
        limits=MediaLimits(
            max_image_bytes=1 << 20,
            max_video_bytes=1 << 20,
            max_image_pixels=10**6,
            thumbnail_size=64,
            max_document_bytes=2048,
        ),
    )
    setup.job.process({**setup.upload("d1", b"x" * 4096), "kind": "document", "name": "big.txt"})
    errors = [p for _, p in setup.published if p["type"] == "error"]
    assert [(e["ref"], e["code"]) for e in errors] == [("c-1", "too_large")]
    assert setup.files() == []


def test_a_voice_note_that_is_no_audio_is_refused_in_processing(setup: Setup) -> None:
    setup.job.process({**setup.upload("v1", jpeg()), "kind": "voice"})
    errors = [p for _, p in setup.published if p["type"] == "error"]
    assert [e["code"] for e in errors] == ["bad_media"] and "not a voice note" in errors[0]["message"]
    assert setup.files() == []


def test_a_document_is_stored_byte_for_byte_under_its_sniffed_type(setup: Setup) -> None:
    data = b"%PDF-1.4\n%broken but a PDF by its signature\n"
    setup.job.process({**setup.upload("d2", data), "kind": "document", "name": "../x/Plan.pdf"})
    (result,) = setup.routed
    media = result.message.media
    assert media is not None
    assert (media["kind"], media["type"], media["name"], media["size"]) == (
        "document",
        "application/pdf",
        "Plan.pdf",
        len(data),
    )
    assert setup.files() == [media["key"]] and media["key"].endswith(".pdf")
    with setup.storage.open(media["key"]) as stored:
        assert stored.read() == data
