"""The object keys of media: an upload waiting for its job, the stored file, its thumbnail, an avatar."""

from __future__ import annotations

__all__ = ["avatar_key", "group_icon_key", "media_key", "thumbnail_key", "upload_key"]


def upload_key(media_id: str) -> str:
    return f"uploads/{media_id}"


def media_key(media_id: str, ext: str) -> str:
    return f"m/{media_id}.{ext}"


def avatar_key(media_id: str) -> str:
    return f"a/{media_id}.jpg"


def thumbnail_key(media_id: str) -> str:
    return f"m/{media_id}.thumb.jpg"


def group_icon_key(media_id: str) -> str:
    """A group's icon: members may download it (see the media endpoint)."""
    return f"gi/{media_id}.jpg"
