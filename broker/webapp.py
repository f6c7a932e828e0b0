"""The web client, served by the node's HTTP endpoint next to the media API.

``GET /``
    the page (``web/index.html``).
``GET /web/config.json``
    where the page finds the broker: ``{"mqtt_ws", "mqtt_versions", "media", "prefix",
    "presence_prefix", "disappearing_timers"}``. The WebSocket URL is built from the host the page
    was loaded from and the port the WebSocket listener is bound to (null when the node has no
    WebSocket listener); ``mqtt_versions`` are the MQTT protocol levels the broker speaks (the page
    picks MQTT 5 when 5 is among them); ``media`` is the page's own origin.
``GET /web/<file>``
    the client's static files (plain ES modules, no build step), from ``broker/web/``.

The client uses only the published wire contract (docs/protocol.md) and the media HTTP API.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Final, Protocol

from aiohttp import web
from yarl import URL

from config.settings import Settings

__all__ = ["MQTT_VERSIONS", "WEB_ROOT", "WebNode", "add_web_routes"]

MQTT_VERSIONS: Final = (4, 5)
"""The CONNECT protocol levels the node's broker speaks (3.1.1 and 5: broker/mqtt/connect.py)."""

log = logging.getLogger(__name__)

WEB_ROOT: Final = Path(__file__).with_name("web")
"""The client's files, shipped as package data of ``broker``."""

_CSP: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        # MQTT.js runs its keep-alive timers in a worker made from a blob: (background tabs throttle
        # the page's own timers, and the broker would drop a connection that misses its pings)
        "worker-src 'self' blob:",
        # the broker's WebSocket is on another port; media downloads may redirect to object storage
        "connect-src 'self' ws: wss: http: https:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_HEADERS: Final = {
    "Cache-Control": "no-cache",  # revalidate: a new release is picked up on the next load
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": _CSP,
}


class WebNode(Protocol):
    """What the web routes need to know about the node."""

    @property
    def settings(self) -> Settings: ...

    @property
    def ws_port(self) -> int | None:
        """The bound port of the MQTT-over-WebSocket listener (None: no such listener)."""
        ...


def add_web_routes(app: web.Application, node: WebNode) -> None:
    """Serve the web client on ``app`` (call before the app starts)."""
    if not (WEB_ROOT / "index.html").is_file():
        log.warning("the web client is not installed (no %s); / is not served", WEB_ROOT / "index.html")
        return
    app.router.add_get("/", _index)
    app.router.add_get("/web/config.json", partial(_config, node))
    app.router.add_static("/web/", WEB_ROOT, follow_symlinks=False)
    app.on_response_prepare.append(_web_headers)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / "index.html")


async def _config(node: WebNode, request: web.Request) -> web.Response:
    settings = node.settings
    ws_port = node.ws_port
    host = request.url.host or settings.broker.host
    mqtt_ws = (
        str(URL.build(scheme="wss" if settings.broker.tls else "ws", host=host, port=ws_port, path="/"))
        if ws_port
        else None
    )
    body = {
        "mqtt_ws": mqtt_ws,
        "mqtt_versions": list(MQTT_VERSIONS),
        "media": str(request.url.origin()),
        "prefix": settings.topics.prefix,
        "presence_prefix": settings.topics.presence_prefix,
        # the timer choices of the chat header (disappearing messages), besides off
        "disappearing_timers": settings.messages.disappearing_timers,
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def _is_web(path: str) -> bool:
    return path == "/" or path.startswith("/web/")


async def _web_headers(request: web.Request, response: web.StreamResponse) -> None:
    if _is_web(request.path):
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
