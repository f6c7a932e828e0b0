"""Voice notes and documents in the media job: what is checked, stored and put in the message.

A voice note (``kind=voice``) is sniffed again, checked (:mod:`.voice`) and stored as sent under
``m/<media id>.<ext>``; its media object carries the duration and waveform PyAV measured (null
without it), and no thumbnail. A document (``kind=document``) is stored as sent under
``m/<media id>.<ext of the sniffed type>`` with its sanitised name; a PDF gets a first-page
thumbnail where pypdfium2 can render it (:mod:`.documents`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.media.documents import DOCUMENT_SNIFF_BYTES, PDF, document_type, pdf_thumbnail, sanitise_name
from workers.media.errors import MediaRefused
from workers.media.keys import media_key, thumbnail_key
from workers.media.sniff import SNIFF_BYTES, describe, sniff_audio
from workers.media.voice import process_voice

__all__ = ["Attachments", "Put"]

Put = Callable[[str, Path, str], int]
"""``put(key, path, mime)``: store the file under ``key``, remembered for removal if the job fails;
returns its size."""


class Attachments:
    """The voice note or document of one upload (``media_id``)."""

    def __init__(self, media_id: str, *, put: Put) -> None:
        self._id = media_id
        self._put = put

    def voice(self, raw: Path) -> dict[str, Any]:
        with raw.open("rb") as file:
            head = file.read(SNIFF_BYTES)
        found = sniff_audio(head)
        if found is None:
            raise MediaRefused(f"the file is {describe(head)}, not a voice note (Opus, AAC, MP3)")
        info = process_voice(raw, mime=found.mime)
        key = media_key(self._id, found.ext)
        size = self._put(key, raw, found.mime)
        return {
            "kind": "voice",
            "key": key,
            "type": found.mime,
            "size": size,
            "duration": info.duration,
            "waveform": info.waveform,
        }

    def document(self, raw: Path, out: Path, *, name: str, size: int) -> dict[str, Any]:
        with raw.open("rb") as file:
            head = file.read(DOCUMENT_SNIFF_BYTES)
        if not head:
            raise MediaRefused("the document is empty")
        found = document_type(head)
        key = media_key(self._id, found.ext)
        stored = self._put(key, raw, found.mime)
        thumbnail = None
        if found is PDF and (page := pdf_thumbnail(raw, out, size=size)) is not None:
            thumb_key = thumbnail_key(self._id)
            thumbnail = {
                "key": thumb_key,
                "type": page.mime,
                "size": self._put(thumb_key, page.path, page.mime),
                "width": page.width,
                "height": page.height,
            }
        return {
            "kind": "document",
            "key": key,
            "type": found.mime,
            "size": stored,
            "name": sanitise_name(name),
            "thumbnail": thumbnail,
        }
