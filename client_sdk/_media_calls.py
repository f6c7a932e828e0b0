"""Images and videos: uploaded and downloaded over the server's media HTTP endpoint (:mod:`._transfer`),
their messages answered on MQTT like text."""

from __future__ import annotations

import contextlib
import io
import os
import ssl
from typing import IO

from client_sdk._base import ClientBase
from client_sdk._commands import new_command_id
from client_sdk._events import Message, Sent, parse_sequenced
from client_sdk._media import Media
from client_sdk._outbox import Outbox, OutgoingMessage
from client_sdk._transfer import MediaEndpoint, UploadAnswer
from client_sdk.contract import DEFAULT_MEDIA_PORT

__all__ = [
    "MediaCalls",
    "document_name",
    "download_file",
    "media_endpoint",
    "media_key",
    "readable",
    "settle_upload",
]


class MediaCalls(ClientBase):
    """Sending and fetching media."""

    _media: MediaEndpoint

    def send_media(
        self,
        to: str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        caption: str = "",
        id: str | None = None,
        reply_to: Message | str | None = None,
    ) -> OutgoingMessage:
        """Send an image or video (a path, or a binary file object read from where it stands) to
        user or group ``to``, with an optional ``caption``; returns once it is uploaded, with the
        same handle as :meth:`send` (sent, then the receipts).

        The server sniffs the type from the content (the file's name means nothing to it), checks
        and processes the file (images lose their metadata and get a thumbnail), then stores and
        delivers the message. The upload streams the file over HTTP; it needs no MQTT connection.

        Raises :class:`CommandRejected` when the server refuses the upload (code ``too_large``,
        ``unsupported_media``, ``unknown_user``, ``unknown_group``, ``not_member``,
        ``unauthorized``...), :class:`ConnectError` when the media endpoint cannot be reached.
        A file refused while it is processed (code ``bad_media``: damaged, truncated, a
        decompression bomb) makes :meth:`OutgoingMessage.wait` raise :class:`CommandRejected`.
        ``reply_to`` (a message of the same conversation, or its id) makes it a reply, refused as
        :meth:`reply` would be.
        """
        return self._upload_message(to, file, caption=caption, id=id, reply_to=reply_to)

    def send_voice(
        self,
        to: str,
        file: str | os.PathLike[str] | bytes | IO[bytes],
        *,
        caption: str | None = None,
        id: str | None = None,
        reply_to: Message | str | None = None,
    ) -> OutgoingMessage:
        """Send a voice note (a path, the bytes, or a binary file object): Opus in Ogg or WebM,
        AAC/M4A or MP3, sniffed by the server from the content. Its message's media has ``kind``
        ``voice``, and the ``duration`` and ``waveform`` the server measured (None where it cannot).
        Raises as :meth:`send_media` (``unsupported_media`` for what is not audio)."""
        return self._upload_message(
            to, readable(file), caption=caption or "", id=id, kind="voice", reply_to=reply_to
        )

    def send_document(
        self,
        to: str,
        file: str | os.PathLike[str] | bytes | IO[bytes],
        *,
        name: str | None = None,
        caption: str | None = None,
        id: str | None = None,
        reply_to: Message | str | None = None,
    ) -> OutgoingMessage:
        """Send any file as a document (a path, the bytes, or a binary file object), named ``name``
        (default: the path's file name, else ``file``). The server stores it as sent, reads its type
        from the content and makes the name safe; recipients download it as an attachment.
        Raises as :meth:`send_media` (``too_large`` past the server's document limit)."""
        return self._upload_message(
            to,
            readable(file),
            caption=caption or "",
            id=id,
            kind="document",
            name=document_name(file, name),
            reply_to=reply_to,
        )

    def _upload_message(
        self,
        to: str,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        caption: str,
        id: str | None,
        kind: str | None = None,
        name: str | None = None,
        reply_to: Message | str | None = None,
    ) -> OutgoingMessage:
        quoted = reply_to.id if isinstance(reply_to, Message) else reply_to
        command_id = new_command_id() if id is None else id
        outgoing = OutgoingMessage(id=command_id, to=to, text=caption)
        with self._lock:
            self._require_open()
            self._session.outbox.expect(outgoing)
        try:
            answer = self._media.upload(
                to=to, id=command_id, caption=caption, file=file, kind=kind, name=name, reply_to=quoted
            )
        except BaseException:
            with self._lock:
                self._session.outbox.forget(command_id)
            raise
        if answer.sent is not None:
            with self._lock:
                settle_upload(self._session.outbox, answer)
        return outgoing

    def download(self, media: Message | Media, *, thumbnail: bool = False) -> bytes:
        """The bytes of the image or video of a message (or of a :class:`Media`), or of its thumbnail.

        Raises :class:`CommandRejected` (code ``not_found`` when this user may not see it,
        ``forbidden`` when a link expired), :class:`ConnectError` when the server cannot be
        reached, ``ValueError`` for a message without media or a media without thumbnail.
        """
        buffer = io.BytesIO()
        self._media.download(media_key(media, thumbnail=thumbnail), buffer)
        return buffer.getvalue()

    def download_to(
        self, path: str | os.PathLike[str], media: Message | Media, *, thumbnail: bool = False
    ) -> int:
        """Like :meth:`download`, streamed into the file ``path`` (complete, or not there at all);
        returns the number of bytes written."""
        return download_file(self._media, media_key(media, thumbnail=thumbnail), path)


def media_endpoint(
    media_url: str | None, *, host: str, user: str, token: str, tls: ssl.SSLContext | bool
) -> MediaEndpoint:
    """The media endpoint a client of ``host`` uses (``media_url``, or the default port on ``host``)."""
    context: ssl.SSLContext | None = None
    if isinstance(tls, ssl.SSLContext):
        context = tls
    elif tls:
        context = ssl.create_default_context()
    if media_url is None:
        where = f"[{host}]" if ":" in host else host
        media_url = f"{'https' if context is not None else 'http'}://{where}:{DEFAULT_MEDIA_PORT}"
    if not media_url.startswith(("http://", "https://")):
        raise ValueError(f"media_url must be an http:// or https:// URL, got {media_url!r}")
    return MediaEndpoint(media_url, user=user, token=token, tls=context)


def settle_upload(outbox: Outbox, answer: UploadAnswer) -> None:
    """An upload whose command id was stored before: nothing new is processed, so the ``sent`` in the
    answer settles the message at once (the lock, if any, is held)."""
    if answer.sent is None:
        return
    sent = parse_sequenced(answer.sent)
    if isinstance(sent, Sent):
        outbox.resolve(answer.id, sent.message)


def download_file(endpoint: MediaEndpoint, key: str, path: str | os.PathLike[str]) -> int:
    """Stream the object ``key`` into the file ``path`` (complete, or not there at all); returns
    the number of bytes written."""
    target = os.fspath(path)
    partial_path = f"{target}.part"
    try:
        with open(partial_path, "wb") as file:
            size = endpoint.download(key, file)
        os.replace(partial_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial_path)
        raise
    return size


def media_key(media: Message | Media, *, thumbnail: bool) -> str:
    """The storage key of the media of a message (or of a Media), or of its thumbnail."""
    found = media.media if isinstance(media, Message) else media
    if found is None:
        raise ValueError("this message has no image or video")
    if thumbnail:
        if found.thumbnail is None:
            raise ValueError("this media has no thumbnail")
        found = found.thumbnail
    return found.key


def readable(file: str | os.PathLike[str] | bytes | IO[bytes]) -> str | os.PathLike[str] | IO[bytes]:
    """What an upload reads: a path or a file object as given, bytes as a file object."""
    return io.BytesIO(file) if isinstance(file, bytes | bytearray) else file


def document_name(file: str | os.PathLike[str] | bytes | IO[bytes], name: str | None) -> str:
    """The name a document is sent with: ``name``, else the path's (or the file object's) base name."""
    if name is not None:
        return name
    if isinstance(file, str | os.PathLike):
        return os.path.basename(os.fspath(file)) or "file"
    named = getattr(file, "name", None)
    if isinstance(named, str) and named:
        return os.path.basename(named) or "file"
    return "file"
