"""Media in a local folder (the single-node default), served by the node through HMAC-signed URLs.

A signed URL is ``/media/signed/<key>?expires=<unix seconds>&sig=<hex>``: HMAC-SHA256 of the key
and the expiry under a secret only the node knows, compared in constant time. The node's HTTP
endpoint checks it (:meth:`LocalStorage.check_signature`) and serves the file. A document's URL
also carries ``type`` and ``name`` (how it is served: a download of that name), signed with the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import IO, Final, Literal
from urllib.parse import urlencode

from workers.media.base import CHUNK_BYTES, Attachment, check_key
from workers.media.errors import ObjectMissing

__all__ = ["SIGNED_PATH", "LocalStorage", "load_secret"]

SIGNED_PATH: Final = "/media/signed/"
"""Where the node serves signed downloads of a local folder."""


def load_secret(path: Path) -> bytes:
    """The signing secret kept in ``path``, made (random, readable by the owner only) on first use."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(secret + b"\n")
    return secret


class LocalStorage:
    """Objects as files under ``root`` (``<root>/<key>``)."""

    def __init__(self, root: Path, *, secret: bytes, signed_path: str = SIGNED_PATH) -> None:
        if len(secret) < 16:
            raise ValueError("the media signing secret must have at least 16 bytes")
        self.root = root
        self._secret = secret
        self._signed_path = signed_path

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_stream(self, key: str, stream: IO[bytes], *, content_type: str) -> int:
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        size = 0
        try:
            with partial.open("xb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    out.write(chunk)
                    size += len(chunk)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size

    def open(self, key: str) -> IO[bytes]:
        try:
            return self.path_of(key).open("rb")
        except FileNotFoundError:
            raise ObjectMissing(key) from None

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def signed_url(self, key: str, *, expires_in: int, attachment: Attachment | None = None) -> str:
        expires = int(time.time()) + expires_in
        query = {"expires": str(expires)}
        if attachment is not None:
            query |= {"type": attachment.content_type, "name": attachment.name}
        query["sig"] = self._sign(key, expires, attachment)
        return f"{self._signed_path}{check_key(key)}?{urlencode(query)}"

    def check_signature(
        self,
        key: str,
        expires: str,
        sig: str,
        *,
        now: float | None = None,
        attachment: Attachment | None = None,
    ) -> Literal["ok", "expired", "invalid"]:
        """Whether a signed URL's ``expires`` and ``sig`` (and ``attachment``, its ``type`` and
        ``name``) are genuine and still valid for ``key``."""
        if not expires.isdigit() or len(expires) > 12:
            return "invalid"
        if not hmac.compare_digest(self._sign(key, int(expires), attachment).encode(), sig.encode()):
            return "invalid"
        return "ok" if int(expires) >= (time.time() if now is None else now) else "expired"

    def close(self) -> None:
        pass

    def _sign(self, key: str, expires: int, attachment: Attachment | None = None) -> str:
        signed = f"{key}\n{expires}"
        if attachment is not None:  # the NUL keeps a name from passing itself off as part of the type
            signed += f"\n{attachment.content_type}\x00{attachment.name}"
        return hmac.new(self._secret, signed.encode(), hashlib.sha256).hexdigest()
