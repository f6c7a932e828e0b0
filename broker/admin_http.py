"""The admin HTTP API: provision users and read groups without ``mqchat users`` (``/admin/v1/``).

On the node's HTTP port, mounted by the node (``Node._add_routes``) only when ``admin.key`` is set;
unset, every ``/admin/`` path is 404. Every request carries ``Authorization: Bearer <admin.key>``,
compared in constant time; a missing or wrong key is 401 and changes nothing, and counts as a
failed login of the address in the node's login throttle (``broker/throttle.py``), so an address
that keeps guessing is locked out (429) like one guessing passwords. (The per-user delay of the
throttle is not applied: it would let anyone slow the operators down, and the key is 32+ random
characters.)

Every answer is JSON; every error ``{"error": {"code", "message"}}`` with its status: 400 (the
message names the field or parameter), 401, 404, 409, 413, 415, 429, 503. Blocking store calls
run on a thread. The routes, their models and the OpenAPI document (``GET /admin/v1/openapi.json``)
all come from one table, :data:`ROUTES`, and the models of ``broker/admin_schema.py``.

To add a route (devices, moderation...): its request/answer models in ``admin_schema.py``, a
:class:`Route` in :data:`ROUTES` (a new ``{name}`` in a path needs its entry in
``PATH_PARAMETERS``), and the handler method named there, ``async def _x(self, call: Call) ->
Model | None``; a capability of the node it needs (``Node.sign_out``, say) comes in as a keyword
argument of :class:`AdminApi`, passed by ``Node._add_routes``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, SecretStr, ValidationError

from broker.admin_schema import (
    PATH_PARAMETERS,
    PREFIX,
    CreateUser,
    Deleted,
    Device,
    DeviceList,
    Group,
    GroupPage,
    GroupsQuery,
    GroupSummary,
    IssuedToken,
    Member,
    OpenApiDocument,
    PhoneAnswer,
    Report,
    ReportPage,
    ReportsQuery,
    Revoked,
    Route,
    SetPhone,
    SignedOut,
    User,
    UserCreated,
    UserPage,
    UsersQuery,
    UserSummary,
    openapi_document,
)
from broker.throttle import LoginThrottle
from workers.credentials import hash_password, hash_token, new_token
from workers.errors import CommandError, StoreUnavailable, UnknownDevice, UnknownUser, UserExists
from workers.stores import AdminStore, Deletion, UserInfo

__all__ = ["ROUTES", "AdminApi", "AdminError"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 16 * 1024
"""Every request body the API takes is a few fields."""
THROTTLE_KEY: Final = "(admin key)"
"""The throttle's "user" for failed admin logins (not a user id: it cannot collide with one)."""

ROUTES: Final = (
    Route("GET", "/openapi.json", "_openapi", "This document", OpenApiDocument, errors=()),
    Route("POST", "/users", "_create_user", "Create a user; answers a token for it", UserCreated,
          status=201, body=CreateUser, errors=(409,)),
    Route("GET", "/users", "_list_users", "Users in id order, a page at a time", UserPage,
          query=UsersQuery, errors=()),
    Route("GET", "/users/{user}", "_get_user", "One user", User),
    Route("DELETE", "/users/{user}", "_delete_user", "Delete a user and its credentials", None, status=204),
    Route("PUT", "/users/{user}/phone", "_set_phone", "Set the user's phone number (for SMS)", PhoneAnswer,
          body=SetPhone),
    Route("DELETE", "/users/{user}/phone", "_clear_phone", "Clear the user's phone number", PhoneAnswer),
    Route("POST", "/users/{user}/tokens", "_issue_token", "Issue another token (a new device, say)",
          IssuedToken, status=201),
    Route("DELETE", "/users/{user}/tokens", "_revoke_tokens",
          "Revoke every token and password of the user (its next logins are refused)", Revoked),
    Route("GET", "/groups", "_list_groups", "Groups in id order, a page at a time", GroupPage,
          query=GroupsQuery, errors=()),
    Route("GET", "/groups/{group}", "_get_group", "One group and its members with their roles", Group),
    Route("GET", "/users/{user}/devices", "_list_devices", "The user's devices, with last seen", DeviceList),
    Route("DELETE", "/users/{user}/devices/{device}", "_sign_out",
          "Sign one device out: its own tokens are revoked, a JWT issued before is refused for it, and"
          " it is disconnected at once on every node; the user's other devices stay", SignedOut),
    Route("GET", "/reports", "_list_reports", "Reports of users by users, oldest first, a page at a time",
          ReportPage, query=ReportsQuery, errors=()),
    Route("DELETE", "/messages/{message}", "_delete_message",
          "Delete a message for everyone: a tombstone without text or media, a `deleted` event to"
          " its sender and recipients, its media removed from storage", Deleted),
)  # fmt: skip

M = TypeVar("M", bound=BaseModel)


class AdminError(Exception):
    """A refusal: answered ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Call:
    """A request that passed the key and validation: its path parameters, query and body."""

    path: Mapping[str, str]
    query: BaseModel | None
    body: BaseModel | None

    def body_as(self, model: type[M]) -> M:
        assert isinstance(self.body, model), "the route table names another body model"
        return self.body

    def query_as(self, model: type[M]) -> M:
        assert isinstance(self.query, model), "the route table names another query model"
        return self.query


def _error(status: int, code: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="mqchat admin"'} if status == 401 else None
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


class AdminApi:
    """The admin routes of one node, on an aiohttp sub-application mounted at ``/admin/v1``."""

    def __init__(
        self,
        *,
        key: SecretStr,
        store: AdminStore,
        throttle: LoginThrottle | None,
        sign_out: Callable[[str, str], Awaitable[int]],
        delete_message: Callable[[str], Awaitable[Deletion]],
    ) -> None:
        """``sign_out(user, device)`` and ``delete_message(message_id)`` are the node's
        (``Node.sign_out``, ``Node.delete_message``): they reach every node, not only this one."""
        self._key = key.get_secret_value().encode()
        self._store = store
        self._throttle = throttle
        self._node_sign_out = sign_out
        self._node_delete = delete_message
        self._document = OpenApiDocument(openapi_document(ROUTES))

    def mount(self, app: web.Application) -> None:
        admin = web.Application(middlewares=[self._errors])
        for route in ROUTES:
            handler = getattr(self, route.handler)
            admin.router.add_route(route.method, route.path, partial(self._serve, route, handler))
        app.add_subapp(PREFIX, admin)

    # ------------------------------------------------------------------ plumbing
    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except AdminError as exc:
            return _error(exc.status, exc.code, exc.message)
        except web.HTTPException as exc:  # aiohttp's own: no such route, method not allowed...
            if exc.status == 404:
                return _error(404, "not_found", "no such route: see /admin/v1/openapi.json")
            code = "too_large" if exc.status == 413 else "bad_request"
            return _error(exc.status, code, exc.reason)
        except StoreUnavailable as exc:
            log.warning("admin request refused: %s", exc)
            return _error(503, "busy", "the store is unavailable right now; try again later")
        except Exception:
            log.exception("admin request %s %s failed", request.method, request.path)
            return _error(500, "internal", "the server could not do that")

    async def _serve(
        self,
        route: Route,
        handler: Callable[[Call], Awaitable[BaseModel | None]],
        request: web.Request,
    ) -> web.Response:
        self._authenticate(request)
        path = dict(request.match_info)
        for name, value in path.items():
            if not PATH_PARAMETERS[name].regex.fullmatch(value):
                raise AdminError(
                    400, "bad_request", f"{name}: {value!r} is not {PATH_PARAMETERS[name].description}"
                )
        call = Call(path=path, query=_query(route, request), body=await _body(route, request))
        answer = await handler(call)
        if answer is None:
            return web.Response(status=route.status)
        return web.json_response(answer.model_dump(mode="json"), status=route.status)

    def _authenticate(self, request: web.Request) -> None:
        throttle, address = self._throttle, request.remote
        if throttle is not None and throttle.address_locked(address):
            log.warning("admin: refused a request from %s: too many failed logins from there", address)
            raise AdminError(429, "rate_limited", "too many failed logins from your address; try later")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._key):
            return
        if throttle is not None:
            throttle.failed(THROTTLE_KEY, address)
        log.info(
            "admin: refused %s %s from %s: no admin key or a wrong one", request.method, request.path, address
        )
        raise AdminError(401, "unauthorized", "send Authorization: Bearer <admin.key>")

    # ------------------------------------------------------------------ routes
    async def _openapi(self, call: Call) -> OpenApiDocument:
        return self._document

    async def _create_user(self, call: Call) -> UserCreated:
        body = call.body_as(CreateUser)
        token = new_token()

        def create() -> None:
            now = time.time()
            password = hash_password(body.password) if body.password is not None else None
            self._store.create_user(body.id, now=now)
            if password is not None:
                self._store.add_credential(body.id, kind="password", secret_hash=password, now=now)
            self._store.add_credential(body.id, kind="token", secret_hash=hash_token(token), now=now)

        try:
            await asyncio.to_thread(create)
        except UserExists:
            raise AdminError(409, "user_exists", f"id: user {body.id!r} exists already") from None
        log.info("admin: created user %s", body.id)
        return UserCreated(id=body.id, token=token)

    async def _list_users(self, call: Call) -> UserPage:
        query = call.query_as(UsersQuery)
        page = await asyncio.to_thread(self._store.users_page, after=query.after, limit=query.limit + 1)
        users = page[: query.limit]
        return UserPage(
            users=[_summary(info) for info in users],
            next=users[-1].id if len(page) > query.limit else None,
        )

    async def _get_user(self, call: Call) -> User:
        user = call.path["user"]

        def read() -> tuple[UserInfo | None, str | None]:
            info = self._store.user_info(user)
            return info, (self._store.phone_of(user) if info is not None else None)

        info, phone = await asyncio.to_thread(read)
        if info is None:
            raise _unknown_user(user)
        return User(**_summary(info).model_dump(), phone=phone)

    async def _delete_user(self, call: Call) -> None:
        user = call.path["user"]
        try:
            await asyncio.to_thread(self._store.delete_user, user)
        except UnknownUser:
            raise _unknown_user(user) from None
        log.info("admin: deleted user %s", user)

    async def _set_phone(self, call: Call) -> PhoneAnswer:
        return await self._phone(call.path["user"], call.body_as(SetPhone).phone)

    async def _clear_phone(self, call: Call) -> PhoneAnswer:
        return await self._phone(call.path["user"], None)

    async def _list_devices(self, call: Call) -> DeviceList:
        user = call.path["user"]

        def read() -> list[dict[str, object]] | None:
            if not self._store.user_exists(user):
                return None
            return [info.wire() for info in self._store.devices_of(user)]

        devices = await asyncio.to_thread(read)
        if devices is None:
            raise _unknown_user(user)
        return DeviceList(user=user, devices=[Device.model_validate(device) for device in devices])

    async def _sign_out(self, call: Call) -> SignedOut:
        user, device = call.path["user"], call.path["device"]
        try:
            revoked = await self._node_sign_out(user, device)
        except UnknownUser:
            raise _unknown_user(user) from None
        except UnknownDevice:
            raise AdminError(
                404, "unknown_device", f"device: user {user!r} has no device {device!r}"
            ) from None
        log.info("admin: signed out %s/%s", user, device)
        return SignedOut(user=user, device=device, revoked=revoked)

    async def _delete_message(self, call: Call) -> Deleted:
        message_id = call.path["message"]
        try:
            deletion = await self._node_delete(message_id)
        except CommandError as exc:
            raise AdminError(404, "not_found", f"message: {exc.message}") from None
        log.info("admin: deleted message %s for everyone", message_id)
        return Deleted(id=message_id, changed=deletion.changed, message=deletion.message)

    async def _phone(self, user: str, phone: str | None) -> PhoneAnswer:
        def change() -> bool:
            if not self._store.user_exists(user):
                return False
            self._store.set_phone(user, phone)
            return True

        if not await asyncio.to_thread(change):
            raise _unknown_user(user)
        return PhoneAnswer(user=user, phone=phone)

    async def _issue_token(self, call: Call) -> IssuedToken:
        user, token = call.path["user"], new_token()
        try:
            await asyncio.to_thread(
                self._store.add_credential, user, kind="token", secret_hash=hash_token(token), now=time.time()
            )
        except UnknownUser:
            raise _unknown_user(user) from None
        log.info("admin: issued a token to %s", user)
        return IssuedToken(user=user, token=token)

    async def _revoke_tokens(self, call: Call) -> Revoked:
        user = call.path["user"]

        def revoke() -> int | None:
            return self._store.remove_credentials(user) if self._store.user_exists(user) else None

        removed = await asyncio.to_thread(revoke)
        if removed is None:
            raise _unknown_user(user)
        log.info("admin: revoked %d credential(s) of %s", removed, user)
        return Revoked(user=user, removed=removed)

    async def _list_groups(self, call: Call) -> GroupPage:
        query = call.query_as(GroupsQuery)
        page = await asyncio.to_thread(self._store.groups_page, after=query.after, limit=query.limit + 1)
        groups = page[: query.limit]
        return GroupPage(
            groups=[GroupSummary(id=g.id, name=g.name, members=len(g.members)) for g in groups],
            next=groups[-1].id if len(page) > query.limit else None,
        )

    async def _list_reports(self, call: Call) -> ReportPage:
        query = call.query_as(ReportsQuery)
        page = await asyncio.to_thread(self._store.reports_page, after=query.after, limit=query.limit + 1)
        reports = page[: query.limit]
        return ReportPage(
            reports=[Report(**report.wire()) for report in reports],
            next=reports[-1].id if len(page) > query.limit else None,
        )

    async def _get_group(self, call: Call) -> Group:
        group = call.path["group"]
        info = await asyncio.to_thread(self._store.group_info, group)
        if info is None:
            raise AdminError(404, "unknown_group", f"no group {group!r}")
        admins = set(info.admins)
        members = [Member(user=m, role="admin" if m in admins else "member") for m in info.members]
        return Group(id=info.id, name=info.name, members=members)


def _summary(info: UserInfo) -> UserSummary:
    return UserSummary(
        id=info.id, created=info.created_at, last_seen=info.last_seen, credentials=info.credentials
    )


def _unknown_user(user: str) -> AdminError:
    return AdminError(404, "unknown_user", f"no user {user!r}")


def _query(route: Route, request: web.Request) -> BaseModel | None:
    params = request.query
    if route.query is None:
        if params:
            raise AdminError(400, "bad_request", f"{sorted(params)[0]}: this route takes no parameters")
        return None
    for name in params:
        if len(params.getall(name)) > 1:
            raise AdminError(400, "bad_request", f"{name}: given more than once")
    try:
        return route.query.model_validate(dict(params))
    except ValidationError as exc:
        raise AdminError(400, "bad_request", _problem(exc, "query")) from None


async def _body(route: Route, request: web.Request) -> BaseModel | None:
    """The request body, read up to MAX_BODY_BYTES and validated against the route's model."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise AdminError(413, "too_large", f"a body may have at most {MAX_BODY_BYTES} bytes")
    data = bytearray()
    while len(data) <= MAX_BODY_BYTES:
        chunk = await request.content.read(MAX_BODY_BYTES + 1 - len(data))
        if not chunk:
            break
        data += chunk
    if len(data) > MAX_BODY_BYTES:
        raise AdminError(413, "too_large", f"a body may have at most {MAX_BODY_BYTES} bytes")
    if route.body is None:
        if data:
            raise AdminError(400, "bad_request", "body: this route takes no body")
        return None
    if request.content_type != "application/json":
        raise AdminError(415, "unsupported_media", "the body must be application/json")
    try:
        return route.body.model_validate_json(bytes(data))
    except ValidationError as exc:
        raise AdminError(400, "bad_request", _problem(exc, "body")) from None


def _problem(exc: ValidationError, where: str) -> str:
    """The first problem of ``exc``, named by its field (``id: String should match pattern...``)."""
    first: dict[str, Any] = dict(exc.errors(include_url=False, include_input=False)[0])
    if first["type"] == "json_invalid":
        return f"body: not valid JSON ({first['msg']})"
    field = ".".join(str(part) for part in first["loc"]) or where
    return f"{field}: {first['msg']}"
