"""The admin API's requests and answers as pydantic models, and its OpenAPI 3.1 document.

The models validate what comes in (``extra="forbid"``, strict types) and shape what goes out, and
the OpenAPI document is generated from them and from the route table (``broker/admin_http.py:
ROUTES``), so the document and the validation cannot drift apart. A new route needs its models
here and its :class:`Route` in the table; nothing else in this module changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from client_sdk.contract import GROUP_ID_RE, USER_ID_RE

__all__ = [
    "E164_RE",
    "PATH_PARAMETERS",
    "PREFIX",
    "CreateUser",
    "Deleted",
    "Device",
    "DeviceList",
    "ErrorBody",
    "Group",
    "GroupPage",
    "GroupSummary",
    "GroupsQuery",
    "IssuedToken",
    "Member",
    "OpenApiDocument",
    "PathParameter",
    "PhoneAnswer",
    "Report",
    "ReportPage",
    "ReportsQuery",
    "Revoked",
    "Route",
    "SetPhone",
    "SignedOut",
    "User",
    "UserCreated",
    "UserPage",
    "UserSummary",
    "UsersQuery",
    "openapi_document",
]

PREFIX: Final = "/admin/v1"
E164_RE: Final = r"\+[1-9][0-9]{6,14}"
"""A phone number as ``mqchat users phone`` takes it: E.164, ``+`` and 7-15 digits."""
MAX_PAGE: Final = 500

MESSAGE_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
"""A message id as the stores make it (``workers.stores.rules.messages.new_message_id``)."""

UserId = Annotated[str, Field(pattern=f"^{USER_ID_RE.pattern}$", description="1-64 of [A-Za-z0-9_.-]")]
GroupId = Annotated[
    str, Field(pattern=f"^{GROUP_ID_RE.pattern}$", description="g: and 1-60 of [A-Za-z0-9_-]")
]
Phone = Annotated[str, Field(pattern=f"^{E164_RE}$", description="E.164, like +15550001111")]
Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description="at most this many in the page")]
Timestamp = Annotated[float, Field(description="Unix time, seconds")]


class _Request(BaseModel):
    """A JSON body: no field it does not know, no type it must guess (``"5"`` is not 5)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Query(BaseModel):
    """Query parameters: strings on the wire, converted (``limit=10`` is 10); unknown ones refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---------------------------------------------------------------------- requests
class CreateUser(_Request):
    id: UserId
    password: str | None = Field(
        default=None, min_length=8, max_length=1024, description="also let the user in with this password"
    )


class SetPhone(_Request):
    phone: Phone


class UsersQuery(_Query):
    limit: Limit = 50
    after: UserId | None = Field(default=None, description="the `next` of the previous page")


class GroupsQuery(_Query):
    limit: Limit = 50
    after: GroupId | None = Field(default=None, description="the `next` of the previous page")


class ReportsQuery(_Query):
    limit: Limit = 50
    after: int | None = Field(default=None, ge=0, description="the `next` of the previous page")


# ---------------------------------------------------------------------- answers
class UserCreated(_Answer):
    id: str
    token: str = Field(description="shown once: only its hash is stored")


class UserSummary(_Answer):
    id: str
    created: Timestamp
    last_seen: Timestamp | None
    credentials: int = Field(description="tokens and passwords")


class User(UserSummary):
    phone: str | None


class UserPage(_Answer):
    users: list[UserSummary]
    next: str | None = Field(description="`after` for the next page; null on the last page")


class IssuedToken(_Answer):
    user: str
    token: str = Field(description="shown once: only its hash is stored")


class Revoked(_Answer):
    user: str
    removed: int = Field(description="how many tokens and passwords were removed")


class PhoneAnswer(_Answer):
    user: str
    phone: str | None


class GroupSummary(_Answer):
    id: str
    name: str
    members: int = Field(description="how many")


class GroupPage(_Answer):
    groups: list[GroupSummary]
    next: str | None = Field(description="`after` for the next page; null on the last page")


class Member(_Answer):
    user: str
    role: Literal["admin", "member"]


class Group(_Answer):
    id: str
    name: str
    members: list[Member] = Field(description="in the order they joined")


class Report(_Answer):
    id: int
    reporter: str = Field(description="the user who reported")
    user: str = Field(description="the user reported")
    reason: str
    messages: list[dict[str, Any]] = Field(
        description="copies of the reported messages (wire objects) as the reporter saw them when reporting"
    )
    ts: float = Field(description="when, in seconds since the epoch")


class ReportPage(_Answer):
    reports: list[Report] = Field(description="oldest first")
    next: int | None = Field(description="`after` for the next page; null on the last page")


class Device(_Answer):
    device: str = Field(description="the `<device>` of the client id `<user>/<device>`")
    first_seen: Timestamp
    last_seen: Timestamp
    platform: str | None = Field(description="from the device's push registration; null before one")
    online: bool = Field(description="connected to a node now")


class DeviceList(_Answer):
    user: str
    devices: list[Device] = Field(description="in the order they were first seen")


class SignedOut(_Answer):
    user: str
    device: str
    revoked: int = Field(description="how many tokens bound to this device were removed")


class Deleted(_Answer):
    id: str
    changed: bool = Field(description="false when the message was deleted already")
    message: dict[str, Any] = Field(description="the tombstone: the message without its text and media")


class ErrorDetail(_Answer):
    code: str = Field(
        description="bad_request, unauthorized, not_found, unknown_user, unknown_group, unknown_device, "
        "user_exists, too_large, unsupported_media, rate_limited, busy, internal"
    )
    message: str


class ErrorBody(_Answer):
    error: ErrorDetail


class OpenApiDocument(RootModel[dict[str, Any]]):
    """This document."""


# ---------------------------------------------------------------------- routes and the document
@dataclass(frozen=True, slots=True)
class PathParameter:
    regex: re.Pattern[str]
    """Matched in full."""
    description: str


PATH_PARAMETERS: Final = {
    "user": PathParameter(USER_ID_RE, "a user id"),
    "group": PathParameter(GROUP_ID_RE, "a group id"),
    "device": PathParameter(USER_ID_RE, "a device id (1-64 of A-Z a-z 0-9 _ . -)"),
    "message": PathParameter(MESSAGE_ID_RE, "a message id (32 hexadecimal digits)"),
}
"""Every ``{name}`` a path may hold, checked before the handler runs (400 naming it)."""

_ALWAYS: Final = {400: "bad input (the message names it)", 401: "no admin key, or a wrong one"}
_ERRORS: Final = {
    404: "no such user, group, device, message or route",
    409: "the user exists already",
    413: "the body is too large",
    415: "the body is not application/json",
    429: "too many failed logins from this address",
    503: "the store is unavailable; try again",
}


@dataclass(frozen=True, slots=True)
class Route:
    """One route: what the server serves (``broker/admin_http.py``) and what the document says."""

    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    """Under PREFIX, with ``{name}`` parameters of PATH_PARAMETERS."""
    handler: str
    """The name of the ``AdminApi`` method that answers."""
    summary: str
    answer: type[BaseModel] | None
    """None: 204, no body."""
    status: int = 200
    body: type[_Request] | None = None
    query: type[_Query] | None = None
    errors: tuple[int, ...] = (404,)


def openapi_document(routes: tuple[Route, ...]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``: schemas from the models, paths from the table."""
    used: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for route in routes:
        if route.body is not None:
            used.append((route.body, "validation"))
        if route.answer is not None:
            used.append((route.answer, "serialization"))
    refs, top = models_json_schema(used, ref_template="#/components/schemas/{model}")
    error = {"application/json": {"schema": refs[ErrorBody, "serialization"]}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {"operationId": route.handler.lstrip("_"), "summary": route.summary}
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": PATH_PARAMETERS[name].description,
                "schema": {"type": "string", "pattern": f"^{PATH_PARAMETERS[name].regex.pattern}$"},
            }
            for name in _path_names(route.path)
        ]
        if route.query is not None:
            schema = route.query.model_json_schema()
            for name, prop in schema["properties"].items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in schema.get("required", []),
                        "schema": prop,
                    }
                )
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[route.body, "validation"]}},
            }
        responses: dict[str, Any] = {}
        if route.answer is None:
            responses[str(route.status)] = {"description": "done"}
        else:
            content = {"application/json": {"schema": refs[route.answer, "serialization"]}}
            responses[str(route.status)] = {"description": "done", "content": content}
        codes = {**_ALWAYS, **{c: _ERRORS[c] for c in (*route.errors, 429, 503)}}
        if route.body is not None:
            codes.update({c: _ERRORS[c] for c in (413, 415)})
        for code in sorted(codes):
            responses[str(code)] = {"description": codes[code], "content": error}
        operation["responses"] = responses
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mqchat admin API",
            "version": "1",
            "description": "Provision users and read groups. Every request carries "
            '`Authorization: Bearer <admin.key>`; every error is `{"error": {"code", "message"}}`.',
        },
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"adminKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"adminKey": []}],
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
