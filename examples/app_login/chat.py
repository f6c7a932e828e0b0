"""A user of the app: sign up (once), log in with the app, then chat through mqchat with the JWT.

    .venv/bin/python examples/app_login/chat.py bob "bob's password" --wait 60      # bob listens
    .venv/bin/python examples/app_login/chat.py alice "correct horse" bob "hello bob"

It needs the app (app.py) and mqchat (with mqchat.toml) running. mqchat creates a user at its
first login, so a recipient must have logged in once before a message can be sent to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from typing import Any

from client_sdk.aio import Client


def call(app: str, path: str, user: str, password: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"user": user, "password": password}).encode()
    request = urllib.request.Request(app + path, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def chat(login: dict[str, Any], to: str | None, text: str | None, wait: float) -> None:
    mqtt, user = login["mqtt"], login["user"]
    async with Client(mqtt["host"], mqtt["port"], user=user, token=login["token"], device="cli") as me:
        if to is not None and text is not None:
            sent = await me.send(to, text)
            await sent.wait("sent", timeout=10)
            print(f"{user} → {to}: {text!r} (stored)")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                async for message in me.messages():
                    print(f"{message.sender} → {user}: {message.text!r}")
                    await me.mark_read(message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("user")
    parser.add_argument("password")
    parser.add_argument("to", nargs="?", help="send TEXT to this user")
    parser.add_argument("text", nargs="?")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to print incoming messages")
    parser.add_argument("--app", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    call(args.app, "/signup", args.user, args.password)  # 409 when the user already exists: fine
    status, login = call(args.app, "/login", args.user, args.password)
    if status != 200:
        raise SystemExit(f"login refused: {login.get('error')}")
    asyncio.run(chat(login, args.to, args.text, args.wait))


if __name__ == "__main__":
    main()
