"""Local HTTP servers that play FCM (OAuth token endpoint + HTTP v1 messages:send) and Twilio.

They are the real protocols on loopback: pyfcm and google-auth talk to them exactly as they would
to Google, because the service-account file's ``token_uri`` and pyfcm's endpoint point here.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import urllib.parse
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Server:
    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer = owner.handle(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeFcm(_Server):
    PROJECT = "mqchat-test"

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []
        self.attempts: dict[str, int] = defaultdict(int)
        self.token_requests = 0
        self._script: dict[str, list[int]] = {}

    def script(self, token: str, statuses: list[int]) -> None:
        """Answer the next sends to ``token`` with these HTTP statuses (then 200)."""
        with self.lock:
            self._script[token] = list(statuses)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if path == "/token":
            with self.lock:
                self.token_requests += 1
            return 200, {"access_token": "fake-access-token", "expires_in": 3600, "token_type": "Bearer"}
        if path == f"/v1/projects/{self.PROJECT}/messages:send":
            if headers.get("Authorization") != "Bearer fake-access-token":
                return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
            message = json.loads(body)["message"]
            token = message["token"]
            with self.lock:
                self.attempts[token] += 1
                statuses = self._script.get(token, [])
                status = statuses.pop(0) if statuses else 200
                if status == 200:
                    self.sent.append(message)
            if status == 404:
                return 404, {
                    "error": {"code": 404, "status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}
                }
            if status != 200:
                return status, {"error": {"code": status, "status": "UNAVAILABLE"}}
            return 200, {"name": f"projects/{self.PROJECT}/messages/{len(self.sent)}"}
        return 404, {"error": "no such endpoint"}

    def to(self, token: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.sent if m["token"] == token]

    def service_account(self, directory: Path) -> Path:
        """A service-account file with a real RSA key whose token_uri is this server."""
        key = directory / "fcm-key.pem"
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
            check=True,
            capture_output=True,
        )
        account = {
            "type": "service_account",
            "project_id": self.PROJECT,
            "private_key_id": "test-key",
            "private_key": key.read_text(),
            "client_email": "mqchat@mqchat-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }
        path = directory / "firebase.json"
        path.write_text(json.dumps(account))
        return path


class FakeTwilio(_Server):
    SID = "ACtest"
    TOKEN = "twilio-secret"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, str]] = []
        self.statuses: list[int] = []

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{self.SID}:{self.TOKEN}".encode()).decode()
        if path != f"/2010-04-01/Accounts/{self.SID}/Messages.json":
            return 404, {"message": "not found"}
        if headers.get("Authorization") != expected:
            return 401, {"message": "Authenticate"}
        with self.lock:
            status = self.statuses.pop(0) if self.statuses else 201
            if status == 201:
                self.messages.append({k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()})
        return status, {"sid": "SM1", "status": "queued"}
