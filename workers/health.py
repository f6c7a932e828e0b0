"""A worker process's health and metrics endpoint: ``/healthz`` and ``/metrics`` over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["HealthServer"]


class HealthServer:
    """Serves on a thread; ``check()`` returns the health document, or raises when unhealthy."""

    def __init__(self, host: str, port: int, check: Callable[[], dict[str, Any]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif self.path == "/healthz":
                    try:
                        status, body = 200, {"status": "ok", **check()}
                    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy"
                        status, body = 503, {"status": "unavailable", "error": str(exc)}
                    self._send(status, json.dumps(body).encode(), "application/json")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mqchat-health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
