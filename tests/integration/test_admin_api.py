"""The admin HTTP API against a real node: provisioning users that then chat, paging, phones, tokens,
groups, the admin key on every route, bad input, and the OpenAPI document the answers follow."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from broker.admin_http import ROUTES
from client_sdk import Client, MessageDeleted
from tests.harness import RunningNode, connect, node_settings, unique, wait_until
from tests.plain import PlainClient
from workers.credentials import hash_token, new_token

KEY = secrets.token_urlsafe(32)
Answer = tuple[int, Any]


class Admin:
    """Calls to the admin API of a node; every answer is JSON and checked against the document."""

    def __init__(self, node: RunningNode) -> None:
        self.node = node
        self.port = node.node.http_port
        self._document: dict[str, Any] | None = None

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        key: str | None = KEY,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        if response.status == 204:
            assert data == b""
            return 204, None, answer_headers
        assert answer_headers["content-type"].startswith("application/json"), (response.status, data[:200])
        return response.status, json.loads(data), answer_headers

    def __call__(self, method: str, path: str, body: Any = None, *, key: str | None = KEY) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        status, answer, _ = self.raw(method, "/admin/v1" + path, data, key=key)
        if key == KEY:
            self.check(method, path, status, answer)
        return status, answer

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            status, self._document, _ = self.raw("GET", "/admin/v1/openapi.json")
            assert status == 200
        return self._document

    def check(self, method: str, path: str, status: int, answer: Any) -> None:
        """``answer`` is what the document says ``method path`` answers with ``status``."""
        path = path.split("?", maxsplit=1)[0]
        operation = next(
            (
                operations[method.lower()]
                for template, operations in self.document["paths"].items()
                if method.lower() in operations and _matches(template, "/admin/v1" + path)
            ),
            None,
        )
        if operation is None:  # no such route: the document says nothing of it
            assert status in (404, 405), (method, path, status)
            assert set(answer) == {"error"}
            return
        response = operation["responses"].get(str(status))
        assert response is not None, f"{method} {path} answered {status}, not in the document"
        if status == 204:
            assert answer is None
            return
        schema = dict(self.document, **response["content"]["application/json"]["schema"])
        Draft202012Validator(schema).validate(answer)


def _matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def admin_node(tmp_path: Path, **overrides: Any) -> RunningNode:
    return RunningNode(node_settings(tmp_path, **{"admin.key": KEY, **overrides})).start()


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Admin]:
    node = admin_node(tmp_path)
    try:
        yield Admin(node)
    finally:
        node.close()


def refused(node: RunningNode, user: str, token: str) -> bool:
    try:
        PlainClient(node.port, user, token).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_user_created_over_the_api_chats_with_the_sdk_and_plain_mqtt(admin: Admin) -> None:
    # Given two users created over the API
    alice, bob = unique("alice"), unique("bob")
    status, made = admin("POST", "/users", {"id": alice})
    assert status == 201 and made["id"] == alice and made["token"].startswith("mqc_")
    status, bob_made = admin("POST", "/users", {"id": bob, "password": "correct horse"})
    assert status == 201
    admin.node.tokens.update({alice: made["token"], bob: bob_made["token"]})

    # When alice writes with the SDK and bob reads with a plain MQTT client (logged in by password)
    plain_bob = PlainClient(admin.node.port, bob, "correct horse")
    plain_bob.inbox()
    with connect(admin.node, alice) as sdk_alice:
        sent = sdk_alice.send(bob, "hello from the admin API")
        message = plain_bob.expect_type("message")
        delivered = message["message"]["id"]
        receipt = {"v": 1, "type": "receipt", "id": "r-1", "status": "delivered", "messages": [delivered]}
        plain_bob.publish(receipt)

        # Then the message arrives and the receipt comes back
        assert message["message"]["text"] == "hello from the admin API"
        sent.wait("delivered", timeout=10)
    plain_bob.close()

    # And creating one of them again is refused
    assert admin("POST", "/users", {"id": alice}) == (
        409,
        {"error": {"code": "user_exists", "message": f"id: user {alice!r} exists already"}},
    )


def test_users_and_one_user(admin: Admin) -> None:
    # Given five users under a prefix
    prefix = unique("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        assert admin("POST", "/users", {"id": name})[0] == 201

    # When they are listed two at a time
    seen: list[str] = []
    after = prefix
    while True:
        status, page = admin("GET", f"/users?limit=2&after={after}")
        assert status == 200 and len(page["users"]) <= 2
        seen += [u["id"] for u in page["users"]]
        if page["next"] is None:
            break
        after = page["next"]

    # Then each comes once, in order
    assert seen == names
    status, one = admin("GET", f"/users/{names[0]}")
    assert status == 200
    assert one["id"] == names[0] and one["credentials"] == 1 and one["phone"] is None
    assert one["last_seen"] is None and one["created"] > 0
    assert admin("GET", "/users")[1]["users"][0]["id"] <= names[0]
    assert admin("GET", f"/users/{prefix}-nobody")[0] == 404


def test_a_deleted_user_cannot_log_in(admin: Admin) -> None:
    user, token = admin.node.add_user("gone")

    assert admin("DELETE", f"/users/{user}") == (204, None)

    assert refused(admin.node, user, token)
    assert admin("GET", f"/users/{user}")[1]["error"]["code"] == "unknown_user"
    assert admin("DELETE", f"/users/{user}")[0] == 404


def test_phone(admin: Admin) -> None:
    user, _ = admin.node.add_user("phone")

    assert admin("PUT", f"/users/{user}/phone", {"phone": "+15550001111"}) == (
        200,
        {"user": user, "phone": "+15550001111"},
    )
    assert admin("GET", f"/users/{user}")[1]["phone"] == "+15550001111"
    status, error = admin("PUT", f"/users/{user}/phone", {"phone": "5550001111"})
    assert status == 400 and error["error"]["message"].startswith("phone:")
    assert admin("GET", f"/users/{user}")[1]["phone"] == "+15550001111"
    assert admin("DELETE", f"/users/{user}/phone") == (200, {"user": user, "phone": None})
    assert admin("GET", f"/users/{user}")[1]["phone"] is None
    assert admin("PUT", f"/users/{user}-nobody/phone", {"phone": "+15550001111"})[0] == 404


def test_tokens_are_issued_and_revoked(admin: Admin) -> None:
    # Given a user with a token, and one more issued over the API
    user, first = admin.node.add_user("tokens")
    status, issued = admin("POST", f"/users/{user}/tokens")
    assert status == 201 and issued["user"] == user
    PlainClient(admin.node.port, user, issued["token"], device="new").close()
    assert admin("GET", f"/users/{user}")[1]["credentials"] == 2

    # When all are revoked
    assert admin("DELETE", f"/users/{user}/tokens") == (200, {"user": user, "removed": 2})

    # Then neither logs in any more
    assert refused(admin.node, user, first) and refused(admin.node, user, issued["token"])
    assert admin("POST", f"/users/{user}-nobody/tokens")[0] == 404
    assert admin("DELETE", f"/users/{user}-nobody/tokens")[0] == 404


def test_groups_made_with_the_sdk(admin: Admin) -> None:
    # Given a group alice made with the SDK, and bob promoted
    alice, _ = admin.node.add_user("alice")
    bob, _ = admin.node.add_user("bob")
    carol, _ = admin.node.add_user("carol")
    with connect(admin.node, alice) as sdk:
        group = sdk.create_group("climbing", [bob, carol])
        sdk.promote(group, [bob])
        other = sdk.create_group("other", [bob])

    # When the groups are listed one at a time, and the group is read
    seen = {}
    after = ""
    while True:
        status, page = admin("GET", f"/groups?limit=1{after}")
        assert status == 200
        seen.update({g["id"]: g for g in page["groups"]})
        if page["next"] is None:
            break
        after = f"&after={quote(page['next'])}"
    status, one = admin("GET", f"/groups/{group.id}")

    # Then both are there, and its members with their roles
    assert seen == {
        group.id: {"id": group.id, "name": "climbing", "members": 3},
        other.id: {"id": other.id, "name": "other", "members": 2},
    }
    assert status == 200 and one == {
        "id": group.id,
        "name": "climbing",
        "members": [
            {"user": alice, "role": "admin"},
            {"user": bob, "role": "admin"},
            {"user": carol, "role": "member"},
        ],
    }
    assert admin("GET", "/groups/g:nothing")[1]["error"]["code"] == "unknown_group"
    assert admin("GET", "/groups/nothing")[0] == 400


def _example_path(
    route_path: str, user: str, group: str, device: str = "default", message: str = "0" * 32
) -> str:
    return (
        route_path.replace("{user}", user)
        .replace("{group}", group)
        .replace("{device}", device)
        .replace("{message}", message)
    )


def _example_body(route: Any) -> Any:
    return {"id": unique("new")} if route.path == "/users" else {"phone": "+15550002222"}


def test_no_key_or_a_wrong_one_is_refused_on_every_route_and_changes_nothing(tmp_path: Path) -> None:
    node = admin_node(tmp_path, **{"limits.address_failures_max": 10_000})
    admin = Admin(node)
    try:
        # Given a user with a phone and a group
        user, token = node.add_user("kept")
        friend, _ = node.add_user("friend")
        assert admin("PUT", f"/users/{user}/phone", {"phone": "+15550001111"})[0] == 200
        with connect(node, user, device="phone") as sdk:
            group = sdk.create_group("kept", [friend]).id
            sent = sdk.send(friend, "kept message")
            sent.wait("sent", timeout=10)
            message = sent.message_id
            assert message is not None
        # the disconnect's last seen is saved in the background: the snapshot starts after it
        assert wait_until(lambda: admin("GET", f"/users/{user}")[1]["last_seen"] is not None)
        assert wait_until(lambda: not admin("GET", f"/users/{user}/devices")[1]["devices"][0]["online"])
        before = (
            admin("GET", "/users?limit=500"),
            admin("GET", f"/users/{user}"),
            admin("GET", "/groups?limit=500"),
            admin("GET", f"/users/{user}/devices"),
        )

        # When every route is called without the key, with a wrong one, or as HTTP Basic
        wrong = [None, KEY[:-1] + ("x" if KEY[-1] != "x" else "y"), "", KEY + "x"]
        for route in ROUTES:
            path = "/admin/v1" + _example_path(route.path, user, group, "phone", message)
            body = json.dumps(_example_body(route)).encode() if route.body is not None else None
            for key in wrong:
                status, answer, headers = admin.raw(route.method, path, body, key=key)
                assert status == 401, (route.method, path, key)
                assert answer["error"]["code"] == "unauthorized"
                assert headers["www-authenticate"].startswith("Bearer")
            basic = {"Authorization": "Basic " + "dXNlcjpwYXNz"}
            assert admin.raw(route.method, path, body, key=None, headers=basic)[0] == 401

        # Then nothing changed
        after = (
            admin("GET", "/users?limit=500"),
            admin("GET", f"/users/{user}"),
            admin("GET", "/groups?limit=500"),
            admin("GET", f"/users/{user}/devices"),
        )
        assert after == before
        store = node.node.store
        assert store is not None
        entries, _ = store.sync(user=friend, after=0, limit=50)
        assert [e.payload["message"]["text"] for e in entries if e.payload["type"] == "message"] == [
            "kept message"
        ]
        PlainClient(node.port, user, token).close()
    finally:
        node.close()


def test_an_address_that_keeps_guessing_the_key_is_locked_out(tmp_path: Path) -> None:
    node = admin_node(tmp_path, **{"limits.address_failures_max": 3})
    admin = Admin(node)
    try:
        assert admin.document  # read before the lockout, to check the answers against
        for _ in range(3):
            assert admin("GET", "/users", key="mqc_guess")[0] == 401

        status, answer = admin("GET", "/users", key=KEY)

        assert status == 429 and answer["error"]["code"] == "rate_limited"
    finally:
        node.close()


def test_the_api_is_off_without_a_key(node: RunningNode) -> None:
    admin = Admin(node)
    for path in ("/admin/v1/openapi.json", "/admin/v1/users"):
        status, answer, _ = admin.raw("GET", path)
        assert status == 404 and answer["code"] == "not_found"


def test_bad_input_gets_400_naming_the_field_and_changes_nothing(admin: Admin) -> None:
    user, _ = admin.node.add_user("bad")
    cases: list[tuple[str, str, bytes, str]] = [
        ("POST", "/users", b"{not json", "body: not valid JSON"),
        ("POST", "/users", b"[1, 2]", "body:"),
        ("POST", "/users", b'{"id": 5}', "id:"),
        ("POST", "/users", b'{"id": "has space"}', "id:"),
        ("POST", "/users", b'{"id": "x", "nickname": "y"}', "nickname:"),
        ("POST", "/users", b'{"id": "x", "password": "short"}', "password:"),
        ("POST", "/users", b"{}", "id:"),
        ("PUT", f"/users/{user}/phone", b'{"phone": 15550001111}', "phone:"),
        ("POST", f"/users/{user}/tokens", b'{"x": 1}', "body:"),
    ]
    for method, path, body, starts in cases:
        status, answer, _ = admin.raw(method, "/admin/v1" + path, body)
        assert status == 400, (path, body, answer)
        assert answer["error"]["code"] == "bad_request"
        assert answer["error"]["message"].startswith(starts), (body, answer)
        admin.check(method, path, status, answer)
    for query, starts in (
        ("limit=0", "limit:"),
        ("limit=many", "limit:"),
        ("limit=501", "limit:"),
        ("after=a%20b", "after:"),
        ("sort=id", "sort:"),
        ("limit=1&limit=2", "limit:"),
    ):
        status, answer = admin("GET", f"/users?{query}")
        assert status == 400 and answer["error"]["message"].startswith(starts), (query, answer)
    assert admin("GET", "/groups/g:x?extra=1")[0] == 400
    status, answer, _ = admin.raw("GET", "/admin/v1/users/bad%20id")
    assert status == 400 and answer["error"]["message"].startswith("user:")

    # too large, not JSON, unknown routes and methods
    big = json.dumps({"id": "x", "password": "p" * 20_000}).encode()
    assert admin.raw("POST", "/admin/v1/users", big)[0] == 413
    plain = {"Content-Type": "text/plain"}
    status, answer, _ = admin.raw("POST", "/admin/v1/users", b'{"id": "plain"}', headers=plain)
    assert status == 415 and answer["error"]["code"] == "unsupported_media"
    assert admin("GET", "/nothing") == (404, admin("GET", "/nothing")[1])
    assert admin("PATCH", "/users")[0] == 405
    assert admin("GET", "/users/plain")[0] == 404 and admin("GET", "/users/x")[0] == 404


def test_the_document_describes_exactly_the_routes_served(admin: Admin) -> None:
    served = set()
    app = admin.node.node.http._runner.app  # type: ignore[union-attr]
    for resource in app.router.resources():
        for route in getattr(resource, "_app", app).router.routes():
            path = route.resource.canonical if route.resource is not None else ""
            if path.startswith("/admin/") and route.method != "*":
                served.add((route.method, path))
    documented = {
        (method.upper(), path)
        for path, operations in admin.document["paths"].items()
        for method in operations
    }

    assert served == documented
    assert {(r.method, "/admin/v1" + r.path) for r in ROUTES} == documented
    assert admin.document["openapi"] == "3.1.0"
    Draft202012Validator.check_schema(admin.document["components"]["schemas"]["CreateUser"])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries({"id": JSON}),
    st.fixed_dictionaries(
        {"id": st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)}, optional={"password": JSON}
    ),
    st.fixed_dictionaries({"phone": JSON | st.from_regex(r"\+[0-9]{1,16}", fullmatch=True)}),
)
SEGMENTS = st.text(min_size=1, max_size=80) | st.from_regex(r"g:[A-Za-z0-9_-]{0,62}", fullmatch=True)


def test_fuzzed_bodies_and_path_segments_get_json_answers_never_5xx(admin: Admin) -> None:
    user, _ = admin.node.add_user("fuzz")

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=BODIES, segment=SEGMENTS, which=st.integers(0, len(ROUTES) - 1))
    def one(body: Any, segment: str, which: int) -> None:
        route = ROUTES[which]
        quoted = quote(segment, safe="")
        path = _example_path(route.path, quoted, quoted, quoted, quoted)
        data = json.dumps(body).encode() if route.body is not None or which % 2 else None
        status, answer, _ = admin.raw(route.method, "/admin/v1" + path, data)
        assert status < 500, (route.method, path, body, answer)
        if "/admin/v1" + path != "/admin/v1/openapi.json" and status < 300 and route.method == "POST":
            assert "token" in answer
        if status != 204:
            assert isinstance(answer, dict)

    one()
    assert admin("GET", f"/users/{user}")[0] == 200


def test_signing_out_one_device_disconnects_it_and_the_other_keeps_chatting(admin: Admin) -> None:
    # Given alice on two devices, the phone with a token bound to it, and bob
    node = admin.node
    alice, bob = unique("alice"), unique("bob")
    laptop_token = admin("POST", "/users", {"id": alice})[1]["token"]
    bob_token = admin("POST", "/users", {"id": bob})[1]["token"]
    phone_token = new_token()
    store = node.node.store
    assert store is not None
    store.add_credential(
        alice, kind="token", secret_hash=hash_token(phone_token), now=time.time(), device="phone"
    )
    node.tokens.update({bob: bob_token})
    with (
        Client("127.0.0.1", node.port, user=alice, token=phone_token, device="phone") as phone,
        Client("127.0.0.1", node.port, user=alice, token=laptop_token, device="laptop") as laptop,
        connect(node, bob) as bob_sdk,
    ):

        def listed() -> set[tuple[str, bool]]:
            status, body = admin("GET", f"/users/{alice}/devices")
            assert status == 200
            return {(d["device"], d["online"]) for d in body["devices"]}

        # connects are recorded in batches with last seen: the laptop's may come a moment later
        assert wait_until(lambda: listed() == {("phone", True), ("laptop", True)}, timeout=10)

        # When the admin signs the phone out
        status, answer = admin("DELETE", f"/users/{alice}/devices/phone")

        # Then the phone is cut off and its token refused, while the laptop keeps chatting
        assert (status, answer) == (200, {"user": alice, "device": "phone", "revoked": 1})
        assert wait_until(lambda: not phone.connected, timeout=10)
        assert not _logs_in(node, alice, phone_token, "phone")
        assert laptop.connected
        laptop.send(bob, "still here").wait("delivered", timeout=10)
        assert next(bob_sdk.messages(timeout=10)).text == "still here"
        devices = {d["device"]: d["online"] for d in admin("GET", f"/users/{alice}/devices")[1]["devices"]}
        assert devices == {"laptop": True}  # a signed-out device is left out until it connects again

    # an unknown device or user is 404, and nothing changes
    assert admin("DELETE", f"/users/{alice}/devices/tablet")[1]["error"]["code"] == "unknown_device"
    assert admin("DELETE", "/users/nobody-at-all/devices/phone")[1]["error"]["code"] == "unknown_user"
    assert admin("GET", "/users/nobody-at-all/devices")[0] == 404


def _logs_in(node: RunningNode, user: str, token: str, device: str) -> bool:
    try:
        PlainClient(node.port, user, token, device=device).close()
    except ConnectionRefusedError:
        return False
    return True


def test_a_message_deleted_by_the_admin_is_a_tombstone_for_everyone(admin: Admin) -> None:
    # Given a message from alice to bob, and bob offline
    node = admin.node
    alice, bob = node.add_user("alice")[0], node.add_user("bob")[0]
    with connect(node, alice) as alice_sdk:
        sent = alice_sdk.send(bob, "a message the moderator removes")
        sent.wait("sent", timeout=10)
        message = sent.message_id
        assert message is not None

        # When the admin deletes it for everyone
        status, answer = admin("DELETE", f"/messages/{message}")

        # Then alice sees it deleted live, and bob, syncing later, only ever sees the tombstone
        assert status == 200
        assert answer["changed"] is True
        assert answer["message"]["deleted"] is True
        assert "text" not in answer["message"]
        deleted = next(e for e in alice_sdk.events(timeout=10) if isinstance(e, MessageDeleted))
        assert (deleted.message_id, deleted.by) == (message, "admin")
    with connect(node, bob) as bob_sdk:
        seen = list(bob_sdk.messages(timeout=3))
        assert seen and all(m.deleted and not m.text for m in seen)

    # deleting it again changes nothing; an unknown or malformed id is refused
    assert admin("DELETE", f"/messages/{message}")[1]["changed"] is False
    assert admin("DELETE", "/messages/" + "f" * 32)[1]["error"]["code"] == "not_found"
    assert admin("DELETE", "/messages/not-an-id")[0] == 400
