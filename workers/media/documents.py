"""Documents: any file, stored exactly as sent, with a safe name and a type read from its content.

A document is never opened by the server beyond its first bytes, except a PDF, whose first page
becomes a JPEG thumbnail where pypdfium2 (PDFium, the optional ``pdf`` extra) is installed. The
type a client names is never used: :func:`document_type` looks at the content (a short table: a
library would bring more than these few signatures need), and whatever it does not recognise is
``application/octet-stream``. HTML or SVG is plain text to it, so it is never served as a page.
The original file name is kept for the download, made safe by :func:`sanitise_name`.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from workers.media.images import Rendition, thumbnail_of
from workers.media.sniff import sniff, sniff_audio

__all__ = [
    "DEFAULT_NAME",
    "DOCUMENT_SNIFF_BYTES",
    "MAX_NAME_BYTES",
    "DocumentType",
    "document_type",
    "pdf_support",
    "pdf_thumbnail",
    "sanitise_name",
]

log = logging.getLogger(__name__)

MAX_NAME_BYTES: Final = 255
DEFAULT_NAME: Final = "file"
DOCUMENT_SNIFF_BYTES: Final = 64 * 1024
"""Bytes :func:`document_type` looks at (a ZIP's first entries, enough text to call it text)."""
MAX_RENDER_PIXELS: Final = 4_000_000
"""The most pixels a PDF's first page is rendered at, whatever size the page declares."""
_MAX_EXT_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class DocumentType:
    mime: str
    ext: str
    """File name extension of the stored object (without the dot)."""


PDF: Final = DocumentType("application/pdf", "pdf")
ZIP: Final = DocumentType("application/zip", "zip")
TEXT: Final = DocumentType("text/plain", "txt")
BINARY: Final = DocumentType("application/octet-stream", "bin")
_OOXML: Final = (
    (
        "word/",
        DocumentType("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    ),
    ("xl/", DocumentType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")),
    (
        "ppt/",
        DocumentType("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
    ),
)
_ODF: Final = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
}
_LOCAL_HEADER: Final = re.compile(rb"PK\x03\x04")
_TEXT_CONTROLS: Final = frozenset(b"\t\n\r\f")
_SIMPLE: Final = (
    (b"\x1f\x8b", DocumentType("application/gzip", "gz")),
    (b"7z\xbc\xaf\x27\x1c", DocumentType("application/x-7z-compressed", "7z")),
    (b"Rar!\x1a\x07", DocumentType("application/vnd.rar", "rar")),
    (b"fLaC", DocumentType("audio/flac", "flac")),
    (b"BM", DocumentType("image/bmp", "bmp")),
    (b"II*\x00", DocumentType("image/tiff", "tif")),
    (b"MM\x00*", DocumentType("image/tiff", "tif")),
)


def document_type(head: bytes) -> DocumentType:
    """The type of a document from its first :data:`DOCUMENT_SNIFF_BYTES` bytes."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_type(head)
    for signature, found in _SIMPLE:
        if head.startswith(signature):
            return found
    known = sniff(head) or sniff_audio(head)
    if known is not None:
        return DocumentType(known.mime, known.ext)
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return DocumentType("audio/wav", "wav")
    if _is_text(head):
        return TEXT
    return BINARY


def _zip_type(head: bytes) -> DocumentType:
    """Office files are ZIP archives: OpenDocument names its type in a first entry ``mimetype``
    stored uncompressed; Office Open XML has a folder per application (``word/``, ``xl/``...)."""
    for match in _LOCAL_HEADER.finditer(head):
        at = match.start()
        if len(head) < at + 30:
            break
        name_length = int.from_bytes(head[at + 26 : at + 28], "little")
        extra_length = int.from_bytes(head[at + 28 : at + 30], "little")
        name = head[at + 30 : at + 30 + name_length]
        if name == b"mimetype" and at == 0:
            content = head[at + 30 + name_length + extra_length :][:80]
            for mime, ext in _ODF.items():
                if content.startswith(mime):
                    return DocumentType(mime.decode(), ext)
        for folder, found in _OOXML:
            if name.startswith(folder.encode()):
                return found
    return ZIP


def _is_text(head: bytes) -> bool:
    """UTF-8 (a character cut off at the end of ``head`` is fine) without control characters."""
    if not head:
        return False
    data = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    for cut in range(4):  # the last character may be cut off by the sniffing window
        try:
            text = data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return all(ch >= " " or ord(ch) in _TEXT_CONTROLS for ch in text) and "\x7f" not in text
    return False


def sanitise_name(name: str) -> str:
    """A file name that is safe to keep and to offer for download: its last path segment only, no
    control or format characters (no right-to-left override disguising ``exe`` as ``pdf``), no
    leading dots or spaces, at most :data:`MAX_NAME_BYTES` bytes of UTF-8 with the extension kept;
    an empty result is ``file``."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith(("C", "Z")) or ch == " ")
    name = name.strip(" .").lstrip(". ")
    if not name:
        return DEFAULT_NAME
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode()) > _MAX_EXT_BYTES:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    budget = MAX_NAME_BYTES - len(suffix.encode())
    encoded = stem.encode()
    if len(encoded) > budget:
        stem = encoded[:budget].decode("utf-8", "ignore").rstrip(" .")
    name = f"{stem}{suffix}".lstrip(". ")
    return name or DEFAULT_NAME


# ---------------------------------------------------------------------- PDF thumbnails
_PDFIUM_LOCK = threading.Lock()
"""PDFium is not thread-safe: one document at a time in this process."""


def _pdfium() -> Any:
    try:
        import pypdfium2  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None
    return pypdfium2


def pdf_support() -> str | None:
    """The pypdfium2 version that makes PDF thumbnails, or None when it is not installed."""
    pdfium = _pdfium()
    return None if pdfium is None else str(pdfium.version.PYPDFIUM_INFO)


def pdf_thumbnail(source: Path, out_dir: Path, *, size: int) -> Rendition | None:
    """A JPEG of the first page of the PDF in ``source`` that fits in ``size`` pixels a side, or
    None: without pypdfium2, or for a PDF it cannot render (damaged, encrypted, hostile). Never
    raises for the PDF's sake: a document is accepted whether or not it has a thumbnail."""
    pdfium = _pdfium()
    if pdfium is None:
        return None
    try:
        with _PDFIUM_LOCK:
            document = pdfium.PdfDocument(str(source))
            try:
                if len(document) < 1:
                    return None
                page = document[0]
                try:
                    width, height = page.get_size()
                    if not (width > 0 and height > 0):
                        return None
                    # twice the thumbnail's size, for a sharp downscale; never more than the cap
                    scale = min(2 * size / max(width, height), (MAX_RENDER_PIXELS / (width * height)) ** 0.5)
                    bitmap = page.render(scale=scale, may_draw_forms=False)
                    image = bitmap.to_pil()
                finally:
                    page.close()
            finally:
                document.close()
        return thumbnail_of(image.convert("RGB"), out_dir / "page.jpg", size=size)
    except Exception as exc:  # noqa: BLE001 PDFium's errors, and anything a hostile file provokes
        log.info("no thumbnail for a PDF: %s", exc)
        return None
