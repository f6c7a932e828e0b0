"""Media over HTTP (stdlib only): upload a file to the server's media endpoint, download a stored one.

The endpoint is described in docs/protocol.md, "Media": ``POST /media?to=&id=&caption=`` with the
file as the body, and ``GET /media/<key>``, which redirects to a signed, expiring URL (the node
itself, or object storage). Both use HTTP Basic authentication with the MQTT credentials; the
credentials are never sent along a redirect. Bodies are streamed both ways, never held whole.
A refusal raises :class:`CommandRejected` with the server's code; an upload refused because the
user sent too many or too much (HTTP 429, ``rate_limited``) carries the server's ``Retry-After``
in ``retry_after``.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import quote, urlencode

from client_sdk._errors import CommandRejected, ConnectError, MqchatError
from client_sdk.contract import COMMAND_ID_RE, MAX_CAPTION_LENGTH, is_group_id, is_valid_user_id

__all__ = ["HTTP_TIMEOUT", "MediaEndpoint", "UploadAnswer"]

HTTP_TIMEOUT: Final = 60.0
"""Seconds an HTTP request may go without progress."""
_CHUNK: Final = 256 * 1024
_STATUS_CODES: Final = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    413: "too_large",
    429: "rate_limited",
    503: "busy",
}


@dataclass(frozen=True, slots=True)
class UploadAnswer:
    """The server took an upload: ``sent`` is the ``sent`` event of the message when the command id
    was stored before (nothing new is processed), else None (processing goes on; ``sent`` follows)."""

    id: str
    sent: Mapping[str, Any] | None


class MediaEndpoint:
    """The media endpoint at ``base_url`` (``http(s)://host:port``) for one user's credentials."""

    def __init__(self, base_url: str, *, user: str, token: str, tls: ssl.SSLContext | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the media endpoint is an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        credentials = base64.b64encode(f"{user}:{token}".encode()).decode("ascii")
        self._authorization = f"Basic {credentials}"
        handlers: list[urllib.request.BaseHandler] = []
        if tls is not None:
            handlers.append(urllib.request.HTTPSHandler(context=tls))
        self._opener = urllib.request.build_opener(*handlers)

    def upload(
        self,
        *,
        to: str,
        id: str,
        caption: str,
        file: str | os.PathLike[str] | IO[bytes],
        kind: str | None = None,
        name: str | None = None,
        reply_to: str | None = None,
    ) -> UploadAnswer:
        """Stream ``file`` (a path or a binary file object, read from where it stands) to ``to``;
        ``kind`` ``voice`` or ``document`` (with the file's ``name``), or None for an image or video;
        ``reply_to``: the message it answers."""
        if not is_valid_user_id(to) and not is_group_id(to):
            raise ValueError(f"to {to!r} is neither a user id nor a group id (g:...)")
        if not isinstance(id, str) or COMMAND_ID_RE.fullmatch(id) is None:
            raise ValueError(f"command id {id!r} must be 1-64 characters of [A-Za-z0-9_.:-]")
        if not isinstance(caption, str) or len(caption) > MAX_CAPTION_LENGTH:
            raise ValueError(f"caption must be a string of at most {MAX_CAPTION_LENGTH} characters")
        if kind not in (None, "voice", "document"):
            raise ValueError(f"kind must be 'voice', 'document' or None (an image or video), not {kind!r}")
        if name is not None and (kind != "document" or not isinstance(name, str) or len(name) > 1024):
            raise ValueError("name: a string of at most 1024 characters, for a document only")
        params = {"to": to, "id": id, "caption": caption}
        if kind is not None:
            params["kind"] = kind
        if name is not None:
            params["name"] = name
        if reply_to is not None:
            params["reply_to"] = reply_to
        query = urlencode(params)
        if isinstance(file, str | os.PathLike):
            with Path(file).open("rb") as opened:
                return self._upload(f"{self.base_url}/media?{query}", id, opened)
        return self._upload(f"{self.base_url}/media?{query}", id, file)

    def upload_avatar(self, *, id: str, file: str | os.PathLike[str] | IO[bytes]) -> None:
        """Stream the image ``file`` to become this user's avatar (processed after the answer)."""
        if not isinstance(id, str) or COMMAND_ID_RE.fullmatch(id) is None:
            raise ValueError(f"command id {id!r} must be 1-64 characters of [A-Za-z0-9_.:-]")
        url = f"{self.base_url}/media/avatar?{urlencode({'id': id})}"
        if isinstance(file, str | os.PathLike):
            with Path(file).open("rb") as opened:
                self._upload(url, id, opened)
                return
        self._upload(url, id, file)

    def upload_group_icon(self, *, group: str, id: str, file: str | os.PathLike[str] | IO[bytes]) -> None:
        """Stream the image ``file`` to become ``group``'s icon (processed after the answer)."""
        if not isinstance(id, str) or COMMAND_ID_RE.fullmatch(id) is None:
            raise ValueError(f"command id {id!r} must be 1-64 characters of [A-Za-z0-9_.:-]")
        if not is_group_id(group):
            raise ValueError(f"group {group!r} is not a group id")
        url = f"{self.base_url}/media/group-icon?{urlencode({'group': group, 'id': id})}"
        if isinstance(file, str | os.PathLike):
            with Path(file).open("rb") as opened:
                self._upload(url, id, opened)
                return
        self._upload(url, id, file)

    def clear_avatar(self, *, id: str) -> None:
        """Ask for this user's avatar to be removed (done after the answer)."""
        url = f"{self.base_url}/media/avatar?{urlencode({'id': id})}"
        request = urllib.request.Request(url, method="DELETE")  # noqa: S310 - base_url is http(s)
        request.add_unredirected_header("Authorization", self._authorization)
        with self._open(request, id) as response:
            response.read()

    def download(self, key: str, target: IO[bytes]) -> int:
        """Write the stored object ``key`` into ``target``; returns the number of bytes."""
        url = f"{self.base_url}/media/{quote(key, safe='/')}"
        request = urllib.request.Request(url, method="GET")  # noqa: S310 - base_url is http(s), checked above
        request.add_unredirected_header("Authorization", self._authorization)
        with self._open(request, None) as response:
            size = 0
            while chunk := response.read(_CHUNK):
                target.write(chunk)
                size += len(chunk)
        return size

    def _upload(self, url: str, id: str, body: IO[bytes]) -> UploadAnswer:
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 - http(s) only
        request.add_unredirected_header("Authorization", self._authorization)
        request.add_header("Content-Type", "application/octet-stream")
        length = _remaining(body)
        if length is not None:
            request.add_header("Content-Length", str(length))
        with self._open(request, id) as response:
            answer = _json(response.read())
        sent = answer.get("sent") if answer.get("status") == "stored" else None
        return UploadAnswer(id=id, sent=sent if isinstance(sent, Mapping) else None)

    def _open(self, request: urllib.request.Request, ref: str | None) -> Any:
        try:
            return self._opener.open(request, timeout=HTTP_TIMEOUT)
        except urllib.error.HTTPError as exc:
            with exc:
                raise _refusal(exc, ref) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectError(f"cannot reach the media endpoint {self.base_url}: {reason}") from exc


def _remaining(body: IO[bytes]) -> int | None:
    """Bytes left in ``body`` from its position, when that can be known (else it goes chunked)."""
    try:
        if not body.seekable():
            return None
        position = body.tell()
        end = body.seek(0, os.SEEK_END)
        body.seek(position)
    except (OSError, ValueError, AttributeError):
        return None
    return max(0, end - position)


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise MqchatError("the media endpoint answered something that is not JSON") from None
    if not isinstance(value, dict):
        raise MqchatError("the media endpoint answered something that is not a JSON object")
    return value


def _refusal(error: urllib.error.HTTPError, ref: str | None) -> CommandRejected:
    """The server's JSON ``{"code", "message"}``, or what the HTTP status says when there is none."""
    try:
        body = json.loads(error.read(64 * 1024))
    except (ValueError, OSError):
        body = None
    retry_after = _seconds(error.headers.get("Retry-After") if error.headers is not None else None)
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        message = str(body.get("message", ""))
        return CommandRejected(code=body["code"], ref=ref, message=message, retry_after=retry_after)
    code = _STATUS_CODES.get(error.code, "internal" if error.code >= 500 else "bad_request")
    message = f"HTTP {error.code} {error.reason}"
    return CommandRejected(code=code, ref=ref, message=message, retry_after=retry_after)


def _seconds(header: str | None) -> float | None:
    """A ``Retry-After`` in seconds (the HTTP-date form is not used by the server)."""
    try:
        seconds = float(header) if header is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 86_400 * 7 else None
