"""An app's own login service that lets its users chat through mqchat, with no `mqchat users add`.

The app keeps its users (here: in memory, passwords hashed with Argon2id) and, when one logs in,
hands out a short-lived JWT signed with the secret it shares with mqchat (``[auth] jwt_secret``
in ``mqchat.toml`` beside this file). The user's client then connects to mqchat with its user id
as MQTT username and the JWT as password; mqchat checks the signature, ``exp``, ``iss`` and
``aud``, and creates the user on its first login (``jwt_create_users``)::

    ./mqchat --config examples/app_login/mqchat.toml run        # terminal 1
    .venv/bin/python examples/app_login/app.py --port 8000      # terminal 2
    curl -s localhost:8000/signup -d '{"user": "alice", "password": "correct horse"}'
    curl -s localhost:8000/login -d '{"user": "alice", "password": "correct horse"}'
    # {"user": "alice", "token": "eyJ…", "expires_in": 900, "mqtt": {"host": …, "port": 1883}}

``chat.py`` beside this file is a client that does exactly that and sends a message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from typing import Any

import jwt
from aiohttp import web
from pwdlib import PasswordHash

SECRET = os.environ.get("APP_JWT_SECRET", "change-me-a-secret-the-app-shares-with-mqchat-0123")
"""The same as ``[auth] jwt_secret`` in mqchat.toml (set APP_JWT_SECRET in real life)."""
ISSUER = "https://app.example/"
AUDIENCE = "mqchat"
TOKEN_SECONDS = 900
USER_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""mqchat's rule for a user id: the app's ids must follow it, since they become MQTT usernames."""

USERS = web.AppKey("users", dict[str, str])
MQTT = web.AppKey("mqtt", dict[str, Any])
hasher = PasswordHash.recommended()


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def credentials(request: web.Request) -> tuple[str, str] | web.Response:
    try:
        body = await request.json()
    except ValueError:
        return error(400, "the body is not JSON")
    user, password = (body.get("user"), body.get("password")) if isinstance(body, dict) else (None, None)
    if not isinstance(user, str) or not USER_ID.fullmatch(user):
        return error(400, "user: 1-64 of A-Z a-z 0-9 _ . -")
    if not isinstance(password, str) or len(password) < 8:
        return error(400, "password: at least 8 characters")
    return user, password


async def signup(request: web.Request) -> web.Response:
    given = await credentials(request)
    if isinstance(given, web.Response):
        return given
    user, password = given
    users = request.app[USERS]
    if user in users:
        return error(409, f"{user} exists")
    users[user] = await asyncio.to_thread(hasher.hash, password)
    return web.json_response({"user": user}, status=201)


async def login(request: web.Request) -> web.Response:
    given = await credentials(request)
    if isinstance(given, web.Response):
        return given
    user, password = given
    stored = request.app[USERS].get(user)
    if stored is None or not await asyncio.to_thread(hasher.verify, password, stored):
        return error(401, "wrong user or password")
    now = int(time.time())
    claims = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + TOKEN_SECONDS}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    return web.json_response(
        {"user": user, "token": token, "expires_in": TOKEN_SECONDS, "mqtt": request.app[MQTT]}
    )


def make_app(*, mqtt_host: str = "127.0.0.1", mqtt_port: int = 1883) -> web.Application:
    app = web.Application(client_max_size=4096)
    app[USERS] = {}
    app[MQTT] = {"host": mqtt_host, "port": mqtt_port}
    app.router.add_post("/signup", signup)
    app.router.add_post("/login", login)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="An app's login service that hands out mqchat JWTs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--mqtt-host", default="127.0.0.1", help="where the app's clients find mqchat")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    args = parser.parse_args()
    web.run_app(make_app(mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
