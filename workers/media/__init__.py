"""Images and videos: object storage behind one interface, sniffing, processing, and the job.

The storage backend is chosen from a URL, its module imported only when used::

    open_storage("file:///var/lib/mqchat/media", secret=b"…")   # LocalStorage
    open_storage("s3://bucket?endpoint_url=http://127.0.0.1:8333")  # S3Storage (boto3)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from config.settings import redact_url
from workers.media.base import Storage
from workers.media.errors import MediaError, MediaRefused, ObjectMissing, StorageUnavailable, TooLarge

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = [
    "MediaError",
    "MediaRefused",
    "ObjectMissing",
    "Storage",
    "StorageUnavailable",
    "TooLarge",
    "open_storage",
    "redact_url",
    "storage_for",
]


def open_storage(url: str, *, secret: bytes | None = None) -> Storage:
    """The storage for ``url``: ``file:///absolute/folder`` (needs the signing ``secret``) or ``s3://…``."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "file":
        from workers.media.local import LocalStorage

        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"a local media URL is file:///absolute/folder, not {url!r}")
        if secret is None:
            raise ValueError("local media storage needs a signing secret")
        return LocalStorage(Path(unquote(parts.path)), secret=secret)
    if scheme == "s3":
        from workers.media.s3 import S3Storage

        return S3Storage(url)
    raise ValueError(f"no media storage for URL scheme {scheme!r} (use file:// or s3://)")


def storage_for(settings: Settings) -> Storage:
    """The media storage the settings name; a local folder's signing secret is ``media.secret``,
    else the one kept in ``<data_dir>/media.secret`` (made on first use)."""
    url = settings.media_storage_url
    secret = None
    if url.startswith("file:"):
        from workers.media.local import load_secret

        configured = settings.media.secret
        if configured is not None:
            secret = configured.get_secret_value().encode()
        else:
            secret = load_secret(settings.data_dir / "media.secret")
    return open_storage(url, secret=secret)
