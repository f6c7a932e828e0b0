"""The media job: an upload becomes a stored, routed message, or an ``error`` for its sender.

The node's HTTP endpoint streams an upload to ``uploads/<media id>`` and enqueues this job on
``mqchat.media``. The job reads the upload back, sniffs it again, verifies and processes it
(images: :mod:`.images`, videos: :mod:`.videos`), stores the result as ``m/<media id>.<ext>``
(and ``m/<media id>.thumb.jpg``), saves the message with the link and routes it like any other.
An avatar job (``kind`` ``avatar``) makes a square JPEG ``a/<media id>.jpg`` of an image instead and
sets it on the sender's profile (no ``media_id``: clears it); the avatar it replaces is deleted.
A refused upload leaves nothing in storage, and its sender gets an ``error`` with ``ref`` = the
command id. A retried job (the store was down) does the same work again under the same keys, and
the store keeps the message once.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import dramatiq

from client_sdk.contract import ErrorCode
from config.settings import MediaSettings, Settings
from workers.errors import CommandError, StoreUnavailable, UnknownUser
from workers.events import error_event
from workers.jobs import MEDIA_QUEUE
from workers.media.attachments import Attachments
from workers.media.avatars import make_avatar
from workers.media.base import CHUNK_BYTES, Storage
from workers.media.cleanup import declare_cleanup_actor
from workers.media.documents import pdf_support
from workers.media.errors import MediaRefused, ObjectMissing, StorageUnavailable, TooLarge
from workers.media.images import Rendition, process_image
from workers.media.keys import avatar_key, group_icon_key, media_key, thumbnail_key, upload_key
from workers.media.sniff import SNIFF_BYTES, Sniffed, describe, sniff
from workers.media.videos import poster_support, process_video
from workers.routing import Router
from workers.stores import AcceptResult, GroupSettingsStore, InboxEntry, Messages, Profiles

__all__ = [
    "MEDIA_ACTOR",
    "MediaJob",
    "MediaJobStore",
    "MediaLimits",
    "avatar_key",
    "declare_media_actor",
    "declare_media_job",
    "media_key",
    "send_media_job",
    "thumbnail_key",
    "upload_key",
]

log = logging.getLogger(__name__)

MEDIA_ACTOR: Final = "mqchat_process_media"

RouteMessage = Callable[[str, str, AcceptResult], None]
"""``route(node, sender, result)``: deliver a stored message like every other (Pipeline.route_message)."""


class MediaJobStore(Messages, Profiles, GroupSettingsStore, Protocol):
    """What the media job stores: messages with media, avatars on profiles, and group icons."""


@dataclass(frozen=True, slots=True)
class MediaLimits:
    max_image_bytes: int
    max_video_bytes: int
    max_image_pixels: int
    thumbnail_size: int
    max_audio_bytes: int = 16 * 1024 * 1024
    max_document_bytes: int = 100 * 1024 * 1024

    def max_bytes(self, kind: str) -> int:
        limits = {"image": self.max_image_bytes, "voice": self.max_audio_bytes}
        limits["document"] = self.max_document_bytes
        return limits.get(kind, self.max_video_bytes)

    @classmethod
    def of(cls, settings: MediaSettings) -> MediaLimits:
        return cls(
            max_image_bytes=settings.max_image_bytes,
            max_video_bytes=settings.max_video_bytes,
            max_image_pixels=settings.max_image_pixels,
            thumbnail_size=settings.thumbnail_size,
            max_audio_bytes=settings.max_audio_bytes,
            max_document_bytes=settings.max_document_bytes,
        )


def declare_media_actor(
    broker: dramatiq.Broker, process: Callable[[dict[str, Any]], None]
) -> dramatiq.Actor[Any, Any]:
    return dramatiq.Actor(
        process, broker=broker, actor_name=MEDIA_ACTOR, queue_name=MEDIA_QUEUE, priority=0, options={}
    )


def declare_media_job(
    settings: Settings,
    *,
    store: MediaJobStore,
    router: Router,
    route_message: RouteMessage,
    queue_broker: dramatiq.Broker,
) -> MediaJob:
    """Make the media job with the storage the settings name and declare its actor."""
    from workers.media import storage_for

    storage = storage_for(settings)
    job = MediaJob(
        store=store,
        storage=storage,
        router=router,
        route_message=route_message,
        limits=MediaLimits.of(settings.media),
    )
    declare_media_actor(queue_broker, job.process)
    declare_cleanup_actor(queue_broker, storage)  # media of messages deleted for everyone
    pyav = poster_support()
    if pyav is None:
        log.info("PyAV (av) is not installed: videos without a poster, voice notes without a waveform")
    else:
        log.debug("video posters by PyAV %s", pyav)
    if pdf_support() is None:
        log.info("pypdfium2 is not installed: PDF documents are stored without a thumbnail")
    return job


def send_media_job(broker: dramatiq.Broker, job: dict[str, Any]) -> None:
    """Enqueue ``{"node", "sender", "id", "to", "caption", "media_id"}`` and maybe ``"reply_to"``
    (blocking: call it on a thread)."""
    broker.enqueue(
        dramatiq.Message(queue_name=MEDIA_QUEUE, actor_name=MEDIA_ACTOR, args=(job,), kwargs={}, options={})
    )


class MediaJob:
    def __init__(
        self,
        *,
        store: MediaJobStore,
        storage: Storage,
        router: Router,
        route_message: RouteMessage,
        limits: MediaLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._storage = storage
        self._router = router
        self._route = route_message
        self._limits = limits
        self._clock = clock

    def process(self, job: dict[str, Any]) -> None:
        if job.get("kind") == "avatar":
            self._avatar(job)
            return
        if job.get("kind") == "group_icon":
            self._group_icon(job)
            return
        node, sender, ref, media_id = job["node"], job["sender"], job["id"], job["media_id"]
        written: list[str] = []
        try:
            with tempfile.TemporaryDirectory(prefix="mqchat-media-") as tmp:
                media = self._prepare(Path(tmp), media_id, written, job)
            result = self._store.accept_message(
                sender=sender,
                command_id=ref,
                recipient=job["to"],
                text=job["caption"],
                now=self._clock(),
                media=media,
                reply_to=job.get("reply_to"),
            )
        except (StoreUnavailable, StorageUnavailable):
            raise  # retried: the upload is still there, the same keys are written again
        except ObjectMissing:
            self._upload_gone(node, sender, ref)
            return
        except MediaRefused as exc:
            code = ErrorCode.TOO_LARGE if isinstance(exc, TooLarge) else ErrorCode.BAD_MEDIA
            self._refuse(node, sender, ref, code, str(exc), [*written, upload_key(media_id)])
            return
        except CommandError as exc:
            self._refuse(node, sender, ref, exc.code, exc.message, [*written, upload_key(media_id)])
            return
        except UnknownUser as exc:
            self._refuse(
                node, sender, ref, ErrorCode.UNKNOWN_USER, str(exc), [*written, upload_key(media_id)]
            )
            return
        except Exception:
            log.exception("media %s of %s failed", ref, sender)
            message = "the server could not process the file"
            self._refuse(node, sender, ref, ErrorCode.INTERNAL, message, [*written, upload_key(media_id)])
            return
        stored = result.message.media or {}
        if result.duplicate and stored.get("key") != media["key"]:
            self._delete(written)  # the same command was stored before, with another upload
        self._route(node, sender, result)
        self._delete([upload_key(media_id)])

    def _avatar(self, job: dict[str, Any]) -> None:
        """Set (``media_id``) or clear (None) the sender's avatar; the profile event reaches them
        and their contacts, and the avatar it replaced is deleted."""
        sender, ref = job["sender"], job["id"]

        def apply(avatar: dict[str, Any] | None) -> tuple[list[InboxEntry], list[str]]:
            change = self._store.update_profile(
                user=sender, changes={"avatar": avatar}, now=self._clock(), ref=ref
            )
            return change.entries, change.replaced

        self._square_image(job, "avatar", job.get("media_id"), None, apply)

    def _group_icon(self, job: dict[str, Any]) -> None:
        """Set a group's icon (an admin's upload, made square as an avatar is); the ``group``
        event (action ``settings``) reaches every member, and the icon it replaced is deleted."""
        sender, ref, media_id, group = job["sender"], job["id"], job["media_id"], job["group"]

        def apply(icon: dict[str, Any] | None) -> tuple[list[InboxEntry], list[str]]:
            update = self._store.set_group_settings(
                group=group, actor=sender, changes={"icon": icon}, now=self._clock(), ref=ref
            )
            return update.entries, update.replaced

        self._square_image(job, "group icon", media_id, group_icon_key(media_id), apply)

    def _square_image(
        self,
        job: dict[str, Any],
        what: str,
        media_id: str | None,
        key: str | None,
        apply: Callable[[dict[str, Any] | None], tuple[list[InboxEntry], list[str]]],
    ) -> None:
        """An avatar or a group icon: the upload (None: clearing it) made square, ``apply`` stores
        it, its events are delivered and what it replaced is deleted; a refusal is an ``error``
        to the sender, and what was written for it is deleted."""
        node, sender, ref = job["node"], job["sender"], job["id"]
        upload = [] if media_id is None else [upload_key(media_id)]
        written: list[str] = []
        try:
            image = None
            if media_id is not None:
                with tempfile.TemporaryDirectory(prefix=f"mqchat-{what.replace(' ', '-')}-") as tmp:
                    image = self._prepare_avatar(Path(tmp), media_id, written, key=key)
            entries, replaced = apply(image)
        except (StoreUnavailable, StorageUnavailable):
            raise  # retried: the upload is still there, the same key is written again
        except ObjectMissing:
            self._upload_gone(node, sender, ref)
            return
        except MediaRefused as exc:
            code = ErrorCode.TOO_LARGE if isinstance(exc, TooLarge) else ErrorCode.BAD_MEDIA
            self._refuse(node, sender, ref, code, str(exc), [*written, *upload])
            return
        except UnknownUser as exc:
            self._refuse(node, sender, ref, ErrorCode.UNKNOWN_USER, str(exc), [*written, *upload])
            return
        except CommandError as exc:  # a group icon: not an admin (any more), no such group
            self._refuse(node, sender, ref, exc.code, exc.message, [*written, *upload])
            return
        except Exception:
            log.exception("%s %s of %s failed", what, ref, sender)
            message = "the server could not process the file"
            self._refuse(node, sender, ref, ErrorCode.INTERNAL, message, [*written, *upload])
            return
        self._router.deliver([(e.user, e.payload) for e in entries], origin=(sender, node))
        self._delete([*replaced, *upload])

    def _prepare_avatar(
        self, tmp: Path, media_id: str, written: list[str], *, key: str | None = None
    ) -> dict[str, Any]:
        raw = tmp / "upload"
        with self._storage.open(upload_key(media_id)) as source, raw.open("wb") as target:
            shutil.copyfileobj(source, target, CHUNK_BYTES)
        with raw.open("rb") as file:
            head = file.read(SNIFF_BYTES)
        kind = sniff(head)
        if kind is None or kind.kind != "image":
            what = describe(head) if kind is None else f"a {kind.kind}"
            raise MediaRefused(f"the file is {what}: an avatar is a JPEG, PNG, GIF or WebP image")
        if raw.stat().st_size > self._limits.max_image_bytes:
            raise TooLarge(self._limits.max_image_bytes, "the image")
        out = tmp / "out"
        out.mkdir()
        made = make_avatar(raw, out, mime=kind.mime, max_pixels=self._limits.max_image_pixels)
        key = key or avatar_key(media_id)
        size = self._put(key, made.path, made.mime, written)
        return {"key": key, "type": made.mime, "size": size, "width": made.width, "height": made.height}

    # ------------------------------------------------------------------ steps
    def _prepare(self, tmp: Path, media_id: str, written: list[str], job: dict[str, Any]) -> dict[str, Any]:
        """Fetch, check and process the upload; store the results. Returns the message's media object."""
        raw = tmp / "upload"
        with self._storage.open(upload_key(media_id)) as source, raw.open("wb") as target:
            shutil.copyfileobj(source, target, CHUNK_BYTES)
        kind_asked = job.get("kind")
        if kind_asked in ("voice", "document"):
            limit = self._limits.max_bytes(kind_asked)
            if raw.stat().st_size > limit:
                raise TooLarge(limit, f"the {kind_asked}")
            out = tmp / "out"
            out.mkdir()
            files = Attachments(media_id, put=lambda key, path, mime: self._put(key, path, mime, written))
            if kind_asked == "voice":
                return files.voice(raw)
            return files.document(raw, out, name=str(job.get("name") or ""), size=self._limits.thumbnail_size)
        with raw.open("rb") as file:
            head = file.read(SNIFF_BYTES)
        kind = sniff(head)
        if kind is None:
            raise MediaRefused(f"the file is {describe(head)}, not an image or video this server takes")
        size = raw.stat().st_size
        limit = self._limits.max_bytes(kind.kind)
        if size > limit:
            raise TooLarge(limit, f"the {kind.kind}")
        out = tmp / "out"
        out.mkdir()
        if kind.kind == "image":
            return self._image(raw, out, kind, media_id, written)
        if kind.kind != "video":
            raise MediaRefused(f"the file is {kind.kind}: send it as a voice note (kind=voice)")
        return self._video(raw, out, kind, media_id, written)

    def _image(
        self, raw: Path, out: Path, kind: Sniffed, media_id: str, written: list[str]
    ) -> dict[str, Any]:
        processed = process_image(
            raw,
            out,
            mime=kind.mime,
            max_pixels=self._limits.max_image_pixels,
            thumbnail_size=self._limits.thumbnail_size,
        )
        image = processed.image
        key = media_key(media_id, image.ext)
        size = self._put(key, image.path, image.mime, written)
        thumbnail = self._put_thumbnail(media_id, processed.thumbnail, written)
        return {
            "kind": "image",
            "key": key,
            "type": image.mime,
            "size": size,
            "width": image.width,
            "height": image.height,
            "thumbnail": thumbnail,
        }

    def _video(
        self, raw: Path, out: Path, kind: Sniffed, media_id: str, written: list[str]
    ) -> dict[str, Any]:
        info = process_video(
            raw,
            out,
            mime=kind.mime,
            max_pixels=self._limits.max_image_pixels,
            thumbnail_size=self._limits.thumbnail_size,
        )
        key = media_key(media_id, kind.ext)
        size = self._put(key, raw, kind.mime, written)
        thumbnail = None if info.poster is None else self._put_thumbnail(media_id, info.poster, written)
        media: dict[str, Any] = {
            "key": key,
            "type": kind.mime,
            "size": size,
            "width": info.width,
            "height": info.height,
            "thumbnail": thumbnail,
        }
        if info.duration is not None:
            media["duration"] = info.duration
        return {"kind": "video", **media}

    def _put_thumbnail(self, media_id: str, thumb: Rendition, written: list[str]) -> dict[str, Any]:
        key = thumbnail_key(media_id)
        size = self._put(key, thumb.path, thumb.mime, written)
        return {"key": key, "type": thumb.mime, "size": size, "width": thumb.width, "height": thumb.height}

    def _put(self, key: str, path: Path, mime: str, written: list[str]) -> int:
        written.append(key)
        with path.open("rb") as file:
            return self._storage.put_stream(key, file, content_type=mime)

    # ------------------------------------------------------------------ endings
    def _upload_gone(self, node: str, sender: str, ref: str) -> None:
        """The upload is not there: a retry of a job that finished, or storage lost it."""
        sent = self._store.sent_entry(sender, ref)
        if sent is not None:
            self._router.deliver([(sender, sent.payload)], origin=(sender, node))
            return
        log.warning("the upload of media %s of %s is gone", ref, sender)
        message = "the upload was lost before it could be processed; send it again"
        self._router.deliver([(sender, error_event(ref, ErrorCode.INTERNAL, message))], origin=(sender, node))

    def _refuse(
        self, node: str, sender: str, ref: str, code: ErrorCode, message: str, keys: list[str]
    ) -> None:
        log.info("media %s of %s refused: %s: %s", ref, sender, code.value, message)
        self._delete(keys)
        self._router.deliver([(sender, error_event(ref, code, message))], origin=(sender, node))

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            try:
                self._storage.delete(key)
            except Exception:
                log.exception("could not delete media object %s; it is left behind", key)
