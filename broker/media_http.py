"""The node's HTTP endpoint for images, videos, voice notes and documents (aiohttp, on the node's event loop).

``POST /media?to=<user or g:group>&id=<command id>&caption=<text>`` with the file as the body
    streams the file to object storage (never whole in memory), sniffing its type from the first
    bytes and stopping at the size limit of that type, then enqueues the media job: 202.
    ``&kind=voice`` takes a voice note (audio sniffed from the content), ``&kind=document&name=…``
    any file (a document, kept with its sanitised name).
``POST /media/avatar?id=<command id>`` with an image as the body, ``DELETE /media/avatar?id=…``
    set or clear the user's avatar: the media job makes it (202), and the ``profile`` event with
    ``ref`` = the command id follows on the inbox topic (or an ``error``).
``POST /media/group-icon?group=<group id>&id=<command id>`` with an image as the body
    sets a group's icon (admins only): the media job makes it as an avatar (202), and the ``group``
    event (action ``settings``) with ``ref`` = the command id follows (or an ``error``, e.g.
    ``not_admin``).
``GET /media/<key>``
    302 to a signed, expiring URL of the object, for the sender and the recipients of its message
    (an avatar: for whoever may see its user's profile; a group icon: for the group's members).
``GET /media/signed/<key>?expires=…&sig=…``
    serves a local-folder object to whoever holds a valid signed URL (S3 serves its own).

Requests authenticate with HTTP Basic: the user id and a token or password, as on MQTT, checked
by the same function off the event loop. Refusals are JSON ``{"code", "message"}`` with the wire
error codes and a fitting status (400, 401, 403, 404, 413, 415, 429, 503). Each user's uploads are
limited in number and bytes (``limits.uploads_per_minute``, ``limits.upload_bytes_per_hour``): past
either, 429 ``rate_limited`` with ``Retry-After``.

The same server carries the node's other HTTP routes, which the node adds (``add_routes``):
``/healthz``, ``/metrics`` and the web client.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import BasicAuth, web
from aiohttp.http_exceptions import HttpProcessingError

from broker.media_upload import UploadBody, read_head
from broker.throttle import LoginThrottle, check_login
from broker.upload_quota import UploadQuota
from client_sdk.contract import COMMAND_ID_RE, MAX_CAPTION_LENGTH, ErrorCode, is_group_id, is_valid_user_id
from config.settings import LimitSettings, MediaSettings
from workers.errors import CommandError, StoreUnavailable, UnknownUser
from workers.media.base import CHUNK_BYTES, Attachment, Storage, check_key
from workers.media.documents import document_type
from workers.media.errors import StorageUnavailable, TooLarge
from workers.media.job import upload_key
from workers.media.local import LocalStorage
from workers.media.sniff import CONTENT_TYPES, Sniffed, describe, sniff, sniff_audio
from workers.stores import MediaEndpointStore

__all__ = ["MediaHttp"]

log = logging.getLogger(__name__)

CredentialCheck = Callable[[str, str], bool]
"""``check(user, secret)``: blocking; the same check the MQTT authentication plugin uses."""
SubmitJob = Callable[[dict[str, Any]], None]
"""Enqueue a media job (blocking: called on a thread)."""

MAX_LINE_BYTES: Final = 16 * 1024
"""The request line may carry a caption of MAX_CAPTION_LENGTH characters, percent-encoded."""
_UPLOAD_PARAMS: Final = frozenset({"to", "id", "caption", "reply_to", "kind", "name"})
_KINDS: Final = ("voice", "document")
MAX_NAME_LENGTH: Final = 1024
"""Characters of a document's ``name`` parameter (the server keeps at most 255 bytes of it)."""
_STATUS: Final = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_MEMBER: 403,
    ErrorCode.NOT_ADMIN: 403,  # a member's upload to a group where only admins send
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNKNOWN_USER: 404,
    ErrorCode.UNKNOWN_GROUP: 404,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.BUSY: 503,
    ErrorCode.INTERNAL: 500,
}


class Refused(Exception):
    """A request is refused: answered with ``{"code", "message"}`` and the code's HTTP status."""

    def __init__(self, code: ErrorCode, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def _error(code: ErrorCode, message: str, *, retry_after: int | None = None) -> web.Response:
    headers = (
        {"WWW-Authenticate": 'Basic realm="mqchat", charset="UTF-8"'}
        if code is ErrorCode.UNAUTHORIZED
        else {}
    )
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return web.json_response(
        {"code": code.value, "message": message}, status=_STATUS.get(code, 400), headers=headers
    )


async def _json_refusals(request: web.Request, response: web.StreamResponse) -> None:
    """The refusals aiohttp makes itself, before any handler or middleware runs (an unknown
    ``Expect``, say), are plain text: give them the JSON body every other refusal has."""
    if response.status < 400 or not isinstance(response, web.Response):
        return
    if response.content_type != "text/plain":
        return
    code = next((c for c, status in _STATUS.items() if status == response.status), None)
    code = code or (ErrorCode.INTERNAL if response.status >= 500 else ErrorCode.BAD_REQUEST)
    message = response.text or response.reason
    body = json.dumps({"code": code.value, "message": message}).encode()
    response.body = body
    response.content_type = "application/json"
    response.headers["Content-Length"] = str(len(body))  # aiohttp counted the text already


class MediaHttp:
    """The HTTP server of one node. ``start`` and ``stop`` run on the node's event loop."""

    def __init__(
        self,
        *,
        node_id: str,
        settings: MediaSettings,
        host: str,
        tls: ssl.SSLContext | None,
        storage: Storage,
        store: MediaEndpointStore,
        check_credentials: CredentialCheck,
        submit: SubmitJob,
        on_action: Callable[[str], None] = lambda user: None,
        throttle: LoginThrottle | None = None,
        add_routes: Callable[[web.Application], None] = lambda app: None,
        limits: LimitSettings | None = None,
        profiles_public: bool = False,
    ) -> None:
        """``add_routes`` adds the node's other endpoints (health, metrics, the web client);
        ``limits`` gives the upload quota of each user (default: the default settings);
        ``profiles_public``: anyone may download anyone's avatar, not only contacts."""
        self._node = node_id
        self._settings = settings
        self._host = host
        self._tls = tls
        self._storage = storage
        self._store = store
        self._check = check_credentials
        self._submit = submit
        self._on_action = on_action
        self._throttle = throttle
        self._add_routes = add_routes
        limits = limits or LimitSettings()
        self._idle_timeout = limits.connect_timeout
        self._quota = UploadQuota(
            per_minute=limits.uploads_per_minute, bytes_per_hour=limits.upload_bytes_per_hour
        )
        self._profiles_public = profiles_public
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        assert self._runner is not None, "the HTTP endpoint is not running"
        return int(self._runner.addresses[0][1])

    @property
    def scheme(self) -> str:
        return "https" if self._tls is not None else "http"

    async def start(self) -> None:
        app = web.Application(middlewares=[self._errors])
        app.on_response_prepare.append(_json_refusals)
        app.router.add_post("/media", self._upload, expect_handler=self._expect)
        app.router.add_post("/media/avatar", self._avatar, expect_handler=self._expect)
        app.router.add_delete("/media/avatar", self._clear_avatar)
        app.router.add_post("/media/group-icon", self._group_icon, expect_handler=self._expect)
        app.router.add_get("/media/signed/{key:.+}", self._signed)
        app.router.add_get("/media/{key:.+}", self._download)
        self._add_routes(app)
        # aiohttp's keep-alive timer runs from the connection's start and from each response's end,
        # and is not put back by bytes that arrive: a connection whose request headers are not
        # whole by then (slowloris) is closed, as is one idle between requests
        runner = web.AppRunner(
            app, access_log=None, max_line_size=MAX_LINE_BYTES, keepalive_timeout=self._idle_timeout
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._settings.http_port, ssl_context=self._tls)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("media endpoint on %s://%s:%d", self.scheme, self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ plumbing
    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as exc:
            return _error(exc.code, exc.message, retry_after=exc.retry_after)
        except web.HTTPException as exc:  # aiohttp's own: no such route, method not allowed...
            if exc.status == 404:
                return _error(ErrorCode.NOT_FOUND, "nothing here: see docs/protocol.md, Media")
            return web.json_response({"code": "bad_request", "message": exc.reason}, status=exc.status)
        except (StoreUnavailable, StorageUnavailable) as exc:
            log.warning("media request refused: %s", exc)
            return _error(ErrorCode.BUSY, "storage is unavailable right now; try again later")
        except Exception:
            log.exception("media request %s %s failed", request.method, request.path)
            return _error(ErrorCode.INTERNAL, "the server could not do that")

    async def _user(self, request: web.Request) -> str:
        """The authenticated user, throttled like MQTT logins (the same throttle, on the same node)."""
        throttle, address = self._throttle, request.remote
        if throttle is not None and throttle.address_locked(address):
            log.warning("media: refused a login from %s: too many failed logins from there", address)
            raise Refused(ErrorCode.RATE_LIMITED, "too many failed logins from your address; try later")
        header = request.headers.get("Authorization")
        if not header:
            raise Refused(ErrorCode.UNAUTHORIZED, "log in with HTTP Basic: your user id and token")
        try:
            auth = BasicAuth.decode(header)
        except ValueError:
            raise Refused(ErrorCode.UNAUTHORIZED, "the Authorization header is not HTTP Basic") from None
        user, secret = str(auth.login), str(auth.password)
        if not is_valid_user_id(user) or not secret:
            raise Refused(ErrorCode.UNAUTHORIZED, "bad user id or token")
        ok = await check_login(self._check, throttle, user, secret, address)
        if not ok:
            log.info("media: refused %s from %s: bad credentials", user, request.remote)
            raise Refused(ErrorCode.UNAUTHORIZED, "bad user id or token")
        return user

    # ------------------------------------------------------------------ upload
    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: refuse what would be refused before the client sends the body.

        The upload handler checks everything again (the credentials too: a token costs a hash).
        """
        if request.headers.get("Expect", "").lower() != "100-continue" or request.version < (1, 1):
            return _error(ErrorCode.BAD_REQUEST, "the only expectation understood is 100-continue")
        try:
            user = await self._user(request)
            if (wait := self._quota.check(user, request.content_length)) is not None:
                raise Refused(ErrorCode.RATE_LIMITED, wait.message, retry_after=wait.retry_after)
            if request.path == "/media/avatar":
                largest = self._settings.max_image_bytes
                _avatar_params(request)
            elif request.path == "/media/group-icon":
                largest = self._settings.max_image_bytes
                _group_icon_params(request)
            else:
                largest = self._limit(_upload_params(request).kind, None)
            if request.content_length is not None and request.content_length > largest:
                raise Refused(ErrorCode.TOO_LARGE, f"uploads may have at most {largest} bytes")
        except Refused as exc:
            return _error(exc.code, exc.message, retry_after=exc.retry_after)
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    async def _upload(self, request: web.Request) -> web.Response:
        user = await self._user(request)
        if (wait := self._quota.admit(user, request.content_length)) is not None:
            log.info("media: refused an upload of %s: %s", user, wait.message)
            raise Refused(ErrorCode.RATE_LIMITED, wait.message, retry_after=wait.retry_after)
        params = _upload_params(request)
        to, command_id, caption = params.to, params.id, params.caption
        reply_to = _reply_to_param(request)
        self._on_action(user)
        sent = await asyncio.to_thread(self._store.sent_entry, user, command_id)
        if sent is not None:  # a resend of a stored upload: nothing to do but say so
            return web.json_response({"id": command_id, "status": "stored", "sent": sent.payload})
        try:
            await asyncio.to_thread(self._store.check_recipient, user, to)
        except UnknownUser as exc:
            raise Refused(ErrorCode.UNKNOWN_USER, str(exc)) from None
        except CommandError as exc:
            raise Refused(exc.code, exc.message) from None

        mime, media_id, size = await self._receive(request, user, kind=params.kind)
        job = {"node": self._node, "sender": user, "id": command_id, "to": to, "caption": caption}
        job["media_id"] = media_id
        if reply_to is not None:
            job["reply_to"] = reply_to
        if params.kind is not None:
            job |= {"kind": params.kind, "name": params.name}
        try:
            await asyncio.to_thread(self._submit, job)
        except Exception:
            log.exception("could not enqueue media %s of %s", command_id, user)
            await asyncio.to_thread(self._storage.delete, upload_key(media_id))
            raise Refused(ErrorCode.BUSY, "the server is busy; try again later") from None
        answer = {"id": command_id, "status": "processing", "type": mime, "size": size}
        return web.json_response(answer, status=202)

    async def _avatar(self, request: web.Request) -> web.Response:
        user = await self._user(request)
        if (wait := self._quota.admit(user, request.content_length)) is not None:
            log.info("media: refused an avatar of %s: %s", user, wait.message)
            raise Refused(ErrorCode.RATE_LIMITED, wait.message, retry_after=wait.retry_after)
        command_id = _avatar_params(request)
        self._on_action(user)
        mime, media_id, size = await self._receive(request, user, images_only=True)
        await self._submit_avatar(user, command_id, media_id)
        return web.json_response(
            {"id": command_id, "status": "processing", "type": mime, "size": size}, status=202
        )

    async def _group_icon(self, request: web.Request) -> web.Response:
        """An admin's new icon of a group: checked before the body is read, and again by the media
        job as it stores it (an admin no more by then: the file is deleted, and an ``error`` follows)."""
        user = await self._user(request)
        if (wait := self._quota.admit(user, request.content_length)) is not None:
            log.info("media: refused a group icon of %s: %s", user, wait.message)
            raise Refused(ErrorCode.RATE_LIMITED, wait.message, retry_after=wait.retry_after)
        group, command_id = _group_icon_params(request)
        self._on_action(user)
        try:  # before the body is read: nothing of a refused upload is stored
            await asyncio.to_thread(self._store.check_group_admin, user, group)
        except CommandError as exc:
            raise Refused(exc.code, exc.message) from None
        mime, media_id, size = await self._receive(request, user, images_only=True)
        job = {"kind": "group_icon", "node": self._node, "sender": user, "id": command_id}
        job |= {"media_id": media_id, "group": group}
        try:
            await asyncio.to_thread(self._submit, job)
        except Exception:
            log.exception("could not enqueue group icon %s of %s", command_id, user)
            await asyncio.to_thread(self._storage.delete, upload_key(media_id))
            raise Refused(ErrorCode.BUSY, "the server is busy; try again later") from None
        return web.json_response(
            {"id": command_id, "status": "processing", "type": mime, "size": size}, status=202
        )

    async def _clear_avatar(self, request: web.Request) -> web.Response:
        user = await self._user(request)
        command_id = _avatar_params(request)
        self._on_action(user)
        await self._submit_avatar(user, command_id, None)
        return web.json_response({"id": command_id, "status": "processing"}, status=202)

    async def _submit_avatar(self, user: str, command_id: str, media_id: str | None) -> None:
        job = {"kind": "avatar", "node": self._node, "sender": user, "id": command_id, "media_id": media_id}
        try:
            await asyncio.to_thread(self._submit, job)
        except Exception:
            log.exception("could not enqueue avatar %s of %s", command_id, user)
            if media_id is not None:
                await asyncio.to_thread(self._storage.delete, upload_key(media_id))
            raise Refused(ErrorCode.BUSY, "the server is busy; try again later") from None

    def _limit(self, kind: str | None, sniffed: Sniffed | None) -> int:
        """The size limit of an upload of ``kind`` (None: an image or a video, as sniffed; not
        sniffed yet: the larger of the two)."""
        settings = self._settings
        if kind == "voice":
            return settings.max_audio_bytes
        if kind == "document":
            return settings.max_document_bytes
        if sniffed is None:
            return max(settings.max_image_bytes, settings.max_video_bytes)
        return settings.max_image_bytes if sniffed.kind == "image" else settings.max_video_bytes

    async def _receive(
        self, request: web.Request, user: str, *, images_only: bool = False, kind: str | None = None
    ) -> tuple[str, str, int]:
        """Sniff the body and stream it to storage: its type, its media id and its size. The bytes
        read are charged to the user's upload quota, also when the upload is refused midway."""
        head, raw = b"", None
        try:
            try:
                head = await read_head(request.content)
            except (ConnectionError, TimeoutError, HttpProcessingError) as exc:
                log.info("upload of %s cut off: %s", user, exc)
                raise Refused(ErrorCode.BAD_REQUEST, "the upload was cut off before its end") from None
            if not head:
                raise Refused(ErrorCode.BAD_REQUEST, "the body is empty: send the file's bytes")
            found = _sniff_upload(head, kind=kind, images_only=images_only)
            limit = self._limit(kind, found)
            what = kind or ("file" if found is None else found.kind)
            mime = document_type(head).mime if found is None else found.mime
            if request.content_length is not None and request.content_length > limit:
                raise Refused(ErrorCode.TOO_LARGE, f"{what}s may have at most {limit} bytes")

            media_id = uuid.uuid4().hex
            raw = UploadBody(asyncio.get_running_loop(), request.content, head, limit=limit)
            body = io.BufferedReader(raw, buffer_size=CHUNK_BYTES)
            try:
                size = await asyncio.to_thread(
                    self._storage.put_stream, upload_key(media_id), body, content_type=mime
                )
            except TooLarge:
                raise Refused(ErrorCode.TOO_LARGE, f"{what}s may have at most {limit} bytes") from None
            except (ConnectionError, TimeoutError, HttpProcessingError) as exc:
                log.info("upload of %s cut off: %s", user, exc)
                raise Refused(ErrorCode.BAD_REQUEST, "the upload was cut off before its end") from None
            return mime, media_id, size
        finally:
            self._quota.received(user, max(len(head), raw.count if raw is not None else 0))

    # ------------------------------------------------------------------ download
    async def _download(self, request: web.Request) -> web.Response:
        user = await self._user(request)
        key = request.match_info["key"]
        try:
            check_key(key)
        except ValueError:
            raise Refused(ErrorCode.NOT_FOUND, "no such media") from None
        attachment = None
        if key.startswith("a/"):
            allowed = await asyncio.to_thread(
                self._store.can_read_avatar, user, key, everyone=self._profiles_public
            )
        elif key.startswith("gi/"):
            allowed = await asyncio.to_thread(self._store.can_read_group_icon, user, key)
        else:
            media = await asyncio.to_thread(self._store.readable_media, user, key)
            allowed = media is not None
            attachment = None if media is None else attachment_of(media, key)
        if not allowed:
            # the same answer whether it does not exist or is someone else's: no guessing game
            raise Refused(ErrorCode.NOT_FOUND, "no such media, or it was not sent to you")
        self._on_action(user)
        url = await asyncio.to_thread(
            self._storage.signed_url, key, expires_in=self._settings.url_ttl, attachment=attachment
        )
        return web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})

    async def _signed(self, request: web.Request) -> web.StreamResponse:
        storage = self._storage
        if not isinstance(storage, LocalStorage):
            raise Refused(ErrorCode.NOT_FOUND, "media is served by object storage")
        key = request.match_info["key"]
        try:
            path = storage.path_of(key)
        except ValueError:
            raise Refused(ErrorCode.NOT_FOUND, "no such media") from None
        expires, sig = request.query.get("expires", ""), request.query.get("sig", "")
        attachment = None
        if "name" in request.query or "type" in request.query:
            attachment = Attachment(request.query.get("name", ""), request.query.get("type", ""))
        verdict = storage.check_signature(key, expires, sig, attachment=attachment)
        if verdict == "expired":
            raise Refused(ErrorCode.FORBIDDEN, "this link has expired: ask for the media again")
        if verdict != "ok":
            raise Refused(ErrorCode.FORBIDDEN, "this link is not valid")
        if not await asyncio.to_thread(path.is_file):
            raise Refused(ErrorCode.NOT_FOUND, "no such media")
        remaining = max(0, int(expires) - int(time.time()))
        headers = {
            "Content-Type": CONTENT_TYPES.get(path.suffix.lstrip("."), "application/octet-stream"),
            "Cache-Control": f"public, max-age={remaining}, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        if attachment is not None:  # a document: a download of its name, never shown inline
            headers["Content-Type"] = attachment.content_type
            headers["Content-Disposition"] = attachment.disposition()
        return web.FileResponse(path, headers=headers)


@dataclass(frozen=True, slots=True)
class UploadParams:
    to: str
    id: str
    caption: str
    kind: str | None
    """``voice``, ``document``, or None: an image or a video."""
    name: str
    """The document's file name as sent (sanitised by the job)."""


def _sniff_upload(head: bytes, *, kind: str | None, images_only: bool) -> Sniffed | None:
    """What an upload of ``kind`` is, from its first bytes; Refused (415) when it is not one. A
    document may be anything (None: :func:`document_type` tells its type)."""
    if kind == "document":
        return None
    if kind == "voice":
        found = sniff_audio(head)
        if found is None:
            raise Refused(
                ErrorCode.UNSUPPORTED_MEDIA,
                f"the file is {describe(head)}; a voice note is Opus or Vorbis (Ogg, WebM), AAC/M4A or MP3"
                " audio (the type is read from the content, not from the name)",
            )
        return found
    found = sniff(head)
    if found is None:
        wanted = "a JPEG, PNG, GIF or WebP image"
        if not images_only:
            wanted += ", or an MP4 or WebM video (kind=voice for a voice note, kind=document for any file)"
        raise Refused(
            ErrorCode.UNSUPPORTED_MEDIA,
            f"the file is {describe(head)}; send {wanted} (the type is read from the content, not"
            " from the name)",
        )
    if images_only and found.kind != "image":
        raise Refused(ErrorCode.UNSUPPORTED_MEDIA, "an avatar or icon is a JPEG, PNG, GIF or WebP image")
    return found


def _upload_params(request: web.Request) -> UploadParams:
    query = request.query
    unknown = sorted(set(query) - _UPLOAD_PARAMS)
    if unknown:
        raise Refused(
            ErrorCode.BAD_REQUEST,
            f"unknown parameter(s) {', '.join(unknown)} (use to, id, caption, reply_to, kind, name)",
        )
    for name in _UPLOAD_PARAMS:
        if len(query.getall(name, [])) > 1:
            raise Refused(ErrorCode.BAD_REQUEST, f"parameter {name!r} is given more than once")
    to, command_id, caption = query.get("to", ""), query.get("id", ""), query.get("caption", "")
    if not is_valid_user_id(to) and not is_group_id(to):
        raise Refused(ErrorCode.BAD_REQUEST, f"to: {to!r} is neither a user id nor a group id (g:...)")
    if COMMAND_ID_RE.fullmatch(command_id) is None:
        raise Refused(ErrorCode.BAD_REQUEST, "id: the command id must be 1-64 characters of [A-Za-z0-9_.:-]")
    if len(caption) > MAX_CAPTION_LENGTH:
        raise Refused(ErrorCode.BAD_REQUEST, f"caption: at most {MAX_CAPTION_LENGTH} characters")
    kind, name = query.get("kind"), query.get("name", "")
    if kind is not None and kind not in _KINDS:
        raise Refused(
            ErrorCode.BAD_REQUEST,
            f"kind: {kind!r} is not voice or document (leave it out for images and videos)",
        )
    if "name" in query and kind != "document":
        raise Refused(ErrorCode.BAD_REQUEST, "name: only a document (kind=document) has a name")
    if len(name) > MAX_NAME_LENGTH:
        raise Refused(ErrorCode.BAD_REQUEST, f"name: at most {MAX_NAME_LENGTH} characters")
    return UploadParams(to, command_id, caption, kind, name)


def _reply_to_param(request: web.Request) -> str | None:
    """The message an upload answers (``reply_to``, optional): the media job checks that the
    sender may quote it, as for a ``send``, and refuses the upload with an ``error`` if not."""
    reply_to = request.query.get("reply_to")
    if reply_to is not None and not 1 <= len(reply_to) <= 64:
        raise Refused(ErrorCode.BAD_REQUEST, "reply_to: a message id of 1-64 characters")
    return reply_to


def _avatar_params(request: web.Request) -> str:
    """The command id of an avatar change (its ``id`` parameter, the only one)."""
    query = request.query
    unknown = sorted(set(query) - {"id"})
    if unknown:
        raise Refused(ErrorCode.BAD_REQUEST, f"unknown parameter(s) {', '.join(unknown)} (use id)")
    ids = query.getall("id", [])
    if len(ids) != 1 or COMMAND_ID_RE.fullmatch(ids[0]) is None:
        raise Refused(ErrorCode.BAD_REQUEST, "id: one command id of 1-64 characters of [A-Za-z0-9_.:-]")
    return str(ids[0])


def _group_icon_params(request: web.Request) -> tuple[str, str]:
    """The group and the command id of a group icon upload (``group`` and ``id``, the only ones)."""
    query = request.query
    unknown = sorted(set(query) - {"group", "id"})
    if unknown:
        raise Refused(ErrorCode.BAD_REQUEST, f"unknown parameter(s) {', '.join(unknown)} (use group, id)")
    groups, ids = query.getall("group", []), query.getall("id", [])
    if len(groups) != 1 or not is_group_id(groups[0]):
        raise Refused(ErrorCode.BAD_REQUEST, "group: one group id (g:...)")
    if len(ids) != 1 or COMMAND_ID_RE.fullmatch(ids[0]) is None:
        raise Refused(ErrorCode.BAD_REQUEST, "id: one command id of 1-64 characters of [A-Za-z0-9_.:-]")
    return str(groups[0]), str(ids[0])


def attachment_of(media: Mapping[str, Any], key: str) -> Attachment | None:
    """How the object ``key`` of a message's ``media`` is served: a document's file is a download
    (its sanitised name, its sniffed type); anything else (a document's thumbnail too) is shown."""
    if media.get("kind") != "document" or media.get("key") != key:
        return None
    return Attachment(str(media.get("name") or "file"), str(media.get("type") or "application/octet-stream"))
