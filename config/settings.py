"""The settings of an mqchat process, their defaults, and how they are read.

Every setting has a default, so a single node needs no file at all. ``load_settings(path)`` reads a
TOML file (see ``config/single-node.toml`` for every setting documented) and validates it; an error
names the field. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import json
import tomllib
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "JWT_ALGORITHMS",
    "AdminSettings",
    "AuthSettings",
    "BrokerSettings",
    "GroupSettings",
    "LimitSettings",
    "LocatorSettings",
    "MediaSettings",
    "MessageSettings",
    "PresenceSettings",
    "PushSettings",
    "RetentionSettings",
    "SessionSettings",
    "Settings",
    "SettingsError",
    "StoreSettings",
    "TopicSettings",
    "WorkerSettings",
    "load_settings",
    "redact_url",
]

Port = Annotated[int, Field(ge=0, le=65535)]


class SettingsError(ValueError):
    """The settings could not be read or are invalid; the message names the field."""


def redact_url(url: str) -> str:
    """``url`` without the credentials it may carry (for logs, banners and error messages)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Section):
    """The embedded MQTT broker's listeners."""

    host: str = "127.0.0.1"
    """Address the listeners bind to (``0.0.0.0`` for every interface)."""
    mqtt_port: Port = 1883
    """MQTT over TCP. 0 picks a free port."""
    ws_port: Port | None = 8080
    """MQTT over WebSocket (path ``/``, subprotocol ``mqtt``); unset to disable. 0 picks a free port."""
    certfile: Path | None = None
    """PEM certificate chain: when set (with ``keyfile``) both listeners use TLS."""
    keyfile: Path | None = None
    max_connections: int = Field(default=0, ge=0)
    """Connections per listener; 0 means unlimited."""
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    """The event loop of ``mqchat run`` / ``mqchat node``: uvloop (libuv; faster sockets and timers),
    or the standard library's. uvloop is used only where it is installed (not on Windows)."""

    @model_validator(mode="after")
    def _tls_pair(self) -> BrokerSettings:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("broker.certfile and broker.keyfile go together")
        for name in ("certfile", "keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"broker.{name}: no such file {path}")
        return self

    @property
    def tls(self) -> bool:
        return self.certfile is not None


class TopicSettings(_Section):
    prefix: str = "chat"
    """Inboxes are ``<prefix>/<user>/in``, outboxes ``<prefix>/<user>/out``."""
    presence_prefix: str = "presence"
    """Retained presence is on ``<presence_prefix>/<user>``."""


class StoreSettings(_Section):
    url: str | None = None
    """``sqlite:///…``, ``postgresql://…`` (SQLAlchemy) or ``mongodb://…`` (pymongo; a replica set);
    default: SQLite in ``data_dir``."""


class WorkerSettings(_Section):
    queue_url: str = "memory://"
    """Dramatiq broker: ``memory://`` runs the queue and the workers inside the node process."""
    threads: int = Field(default=4, ge=1, le=256)
    """Worker threads for delivery jobs (commands run in order on their own thread)."""
    ingest_batch: int = Field(default=200, ge=1, le=10_000)
    """At most this many client commands go into one job."""
    ingest_linger_ms: float = Field(default=0.0, ge=0, le=100)
    """Group commit: a small batch waits up to this long for more commands to join it: fewer,
    larger transactions and fewer wake-ups, for up to this much more latency: it saves CPU at low
    and moderate rates but adds to the median at every rate (benchmarks/RESULTS.md has the trade
    measured). Where a thread hands the commands over (a job queue, or ``commands_process`` off)
    only under load: a lone command after a quiet spell goes at once. With the commands process,
    every batch waits this long in the event loop before it is handed over. 0 (default): never."""
    receipt_linger_ms: float = Field(default=10.0, ge=0, le=100)
    """A batch of receipts only waits up to this long for another command to join it (the first
    command that is not a receipt ends the wait): at low rates a message's delivered receipt then
    shares one transaction and one answer with the next message sent, instead of waking the
    commands' runner on its own. Receipts' answers come up to this much later; sends never wait.
    0: receipts go as any other command."""
    commands_process: bool | None = None
    """A single node (``queue_url`` ``memory://``) runs client commands in a child process instead of
    a thread: the broker and the store then each have a core and no longer share one GIL. Needs a
    store two processes can open (a SQLite file, PostgreSQL or MongoDB). Unset (default): on when
    the store allows it; false: in a thread of the node."""
    commands_stall: float = Field(default=60.0, ge=0.5, le=3600.0)
    """Seconds a commands process (``commands_process``) may hold batches without answering before
    it is taken as hung: it is killed, and another one stores its batches again. A store that is
    unavailable does not count: the process says when it waits to retry a batch. Keep it above the
    store's own waits (SQLite waits up to 30 s for another process's lock)."""
    ingest_queue: int = Field(default=50_000, ge=10)
    """Commands waiting to be enqueued; past it a command is refused with ``busy``."""
    health_port: Port | None = None
    """``mqchat worker`` serves ``/healthz`` and ``/metrics`` on this port; unset: not at all."""


class LocatorSettings(_Section):
    """The locator: which node each user is connected to."""

    url: str | None = None
    """``redis://…`` shares it between nodes and workers; unset: this process's memory (one node)."""
    node_ttl: float = Field(default=10.0, ge=1.0, le=300.0)
    """A node that has not refreshed its entry for this many seconds is dead: its users go offline."""


class LimitSettings(_Section):
    max_payload_bytes: int = Field(default=65_536, ge=256, le=16 * 1024 * 1024)
    """Largest command payload accepted; larger ones get a ``too_large`` error. A packet that says
    it is over four times this (and over 1 MiB) closes its connection before it is read."""
    sync_page_size: int = Field(default=200, ge=1, le=1000)
    """Default number of inbox entries in one sync page."""
    commands_per_second: float = Field(default=100.0, gt=0.0)
    """Commands a user may send per second on average (per node); past it, error ``rate_limited``."""
    commands_burst: int = Field(default=1000, ge=1)
    """Commands a user may send at once before the average applies."""
    max_connections_per_user: int = Field(default=20, ge=1)
    """Connections one user may have open on a node (devices); more are refused at CONNECT."""
    connect_timeout: float = Field(default=10.0, gt=0.0, le=600.0)
    """Seconds a new MQTT connection (TCP, TLS or WebSocket) has to send its CONNECT, and an HTTP
    request to the media endpoint to send its headers; then it is closed. A socket that never logs
    in would otherwise hold a connection slot and its buffers for good."""
    max_inflight_per_connection: int = Field(default=1000, ge=1)
    """Deliveries a connection may leave unacknowledged; past it the client is disconnected (it syncs
    when it comes back), so a client that stops reading cannot make the node's memory grow."""
    login_failures_free: int = Field(default=5, ge=1)
    """Failed logins of a user per minute before each further attempt is slowed (1, 2, 4... s)."""
    login_max_delay: float = Field(default=30.0, ge=0.0)
    address_failures_max: int = Field(default=20, ge=1)
    """Failed logins from one address per minute before the address is locked out."""
    address_lockout: float = Field(default=300.0, ge=0.0)
    """Seconds an address that kept failing is refused."""
    uploads_per_minute: int = Field(default=30, ge=1)
    """Media uploads a user may start per minute on average (per node), and at once; past it, HTTP
    429 ``rate_limited`` with ``Retry-After``."""
    upload_bytes_per_hour: int = Field(default=2 * 1024**3, ge=1024 * 1024)
    """Bytes of media a user may upload per hour (per node); past it, HTTP 429 ``rate_limited``."""


class GroupSettings(_Section):
    max_members: int = Field(default=256, ge=2, le=1024)
    """Members a group may hold, its creator included; past it, error ``group_full``."""


class MessageSettings(_Section):
    """What a sender (or a group admin) may still change of a message once it is sent."""

    edit_window: float = Field(default=900.0, ge=0.0)
    """Seconds after sending during which its sender may edit a message; later, ``too_late``."""
    delete_window: float = Field(default=172_800.0, ge=0.0)
    """Seconds after sending during which its sender may delete a message for everyone (a group
    admin may at any time); later, ``too_late``."""
    # disappearing messages (rules.timers)
    disappearing_timers: list[int] = Field(default=[86_400, 604_800, 7_776_000], min_length=1)
    """The timers (seconds) a conversation may be set to besides 0 (off): 24 h, 7 d and 90 d; any
    other value is ``bad_request``. Tests allow a short one."""
    expiry_sweep: float = Field(default=5.0, gt=0.0, le=3600.0)
    """How often (seconds) the workers look for expired messages and delete them (a message
    disappears at most this long after its ``expires_at``)."""
    expiry_batch: int = Field(default=500, ge=1, le=10_000)
    """Messages one sweep transaction expires at most (a sweep goes on while it finds a full batch)."""

    @field_validator("disappearing_timers")
    @classmethod
    def _positive_timers(cls, value: list[int]) -> list[int]:
        if any(seconds <= 0 for seconds in value):
            raise ValueError("disappearing_timers: positive numbers of seconds (0, off, is always allowed)")
        return sorted(set(value))


class RetentionSettings(_Section):
    """How long the server keeps inbox entries and messages (see ``workers/retention.py``)."""

    inbox_days: float = Field(default=30.0, ge=0.0)
    """Inbox entries older than this many days are pruned (0: kept for ever). A device that syncs
    from before the oldest kept entry gets ``sync_reset`` and rebuilds from history."""
    messages_days: float = Field(default=0.0, ge=0.0)
    """Messages older than this many days are deleted with their media, receipts, reactions...
    (0: kept for ever). The inbox is then pruned at the shorter of the two ages."""
    interval: float = Field(default=3600.0, gt=0.0)
    """Seconds between two sweeps; the first starts with the node (or worker)."""
    batch: int = Field(default=500, ge=1, le=100_000)
    """Users (or conversations) one step of a sweep goes through; each step is a transaction of
    its own, and the sweep's position is stored after each, so a restart goes on from there."""


_MIB = 1024 * 1024


class MediaSettings(_Section):
    """Images, videos, voice notes and documents: the HTTP endpoint, object storage, limits and processing."""

    http_port: Port = 8090
    """Uploads and downloads over HTTP (HTTPS when ``broker.certfile`` is set). 0 picks a free port."""
    storage_url: str | None = None
    """``file:///folder`` or ``s3://bucket[/prefix]?endpoint_url=…&region=…``; default:
    ``<data_dir>/media``."""
    max_image_bytes: int = Field(default=16 * _MIB, ge=1024)
    """Largest image upload; larger ones are refused (HTTP 413, ``too_large``)."""
    max_video_bytes: int = Field(default=100 * _MIB, ge=1024)
    """Largest video upload."""
    max_audio_bytes: int = Field(default=16 * _MIB, ge=1024)
    """Largest voice note (``kind=voice``)."""
    max_document_bytes: int = Field(default=100 * _MIB, ge=1024)
    """Largest document (``kind=document``: any file, stored as sent)."""
    max_image_pixels: int = Field(default=50_000_000, ge=1024, le=170_000_000)
    """Most pixels of an image (all frames of an animation together) or a video frame: beyond, the
    file is refused as a decompression bomb before it is decoded (Pillow refuses more than about
    179 million pixels in any case)."""
    thumbnail_size: int = Field(default=320, ge=32, le=2048)
    """Thumbnails and video posters fit in this many pixels a side."""
    url_ttl: int = Field(default=300, ge=1, le=604_800)
    """Seconds a signed download URL works (S3 allows at most 7 days)."""
    secret: SecretStr | None = Field(default=None, min_length=32)
    """Key that signs local download URLs; unset: a random one kept in ``<data_dir>/media.secret``."""

    @field_validator("storage_url")
    @classmethod
    def _storage_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("file:///", "s3://")):
            raise ValueError("use file:///absolute/folder or s3://bucket?endpoint_url=…")
        return value


class PushSettings(_Section):
    """Notifications for users with no connected device."""

    fcm_service_account: Path | None = None
    """Firebase service-account JSON file; unset: no push (the SMS fallback still works)."""
    fcm_project_id: str | None = None
    """Firebase project; default: the one named in the service-account file."""
    fcm_endpoint: str = "https://fcm.googleapis.com/v1/projects"
    """FCM HTTP v1 base URL (change it only to go through a proxy)."""
    preview: bool = True
    """Whether SMS show the sender and text; each device chooses for its pushes when it registers."""
    collapse_seconds: float = Field(default=3.0, ge=0.0, le=3600.0)
    """Messages arriving within this window after the first become one push."""
    sms_provider: Literal["outbox", "twilio"] = "outbox"
    """``outbox`` only records SMS in the store (nothing is sent by accident); ``twilio`` sends them."""
    sms_delay: float = Field(default=300.0, ge=0.0)
    """Seconds a message may stay undelivered before the SMS fallback."""
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    """The sending number, E.164."""
    twilio_base_url: str = "https://api.twilio.com"

    @model_validator(mode="after")
    def _twilio_complete(self) -> PushSettings:
        if self.sms_provider == "twilio" and not (
            self.twilio_account_sid and self.twilio_auth_token and self.twilio_from
        ):
            raise ValueError(
                "push.sms_provider 'twilio' needs twilio_account_sid, twilio_auth_token and twilio_from"
            )
        if self.fcm_service_account is not None and not self.fcm_service_account.is_file():
            raise ValueError(f"push.fcm_service_account: no such file {self.fcm_service_account}")
        return self


class SessionSettings(_Section):
    """Persistent MQTT sessions, kept in the store (see docs/protocol.md, "Persistent sessions")."""

    persistent_ttl: float = Field(default=7 * 86400.0, gt=0.0)
    """Seconds a 3.1.1 session with clean session 0 outlives its last connection (its acknowledged
    cursor and inbox subscription); unused longer, it is deleted and the next connect starts anew."""
    max_expiry: float = Field(default=30 * 86400.0, gt=0.0)
    """The most an MQTT 5 client's Session Expiry Interval is honoured for (seconds)."""
    ack_flush: float = Field(default=1.0, gt=0.0, le=60.0)
    """Seconds between two writes of the devices' acknowledged cursors (one batch per node): a
    node that crashes replays at most this much again, with DUP set."""


class PresenceSettings(_Section):
    min_interval: float = Field(default=5.0, ge=0.0)
    """While a user is online, ``last_seen`` is republished at most this often (seconds)."""
    keepalive_grace: float = Field(default=1.5, ge=1.0, le=10.0)
    """A connection silent for this many times its keep-alive is closed (MQTT says 1.5)."""
    visibility: Literal["contacts", "everyone"] = "contacts"
    """Who may watch a user's presence: ``contacts`` (the user itself, users it has a 1-on-1
    conversation with, members of a group it is in; the ``<presence_prefix>/+`` wildcard is
    refused) or ``everyone`` (any user, wildcard included: for IoT-style deployments)."""
    sign_out_sweep: float = Field(default=2.0, gt=0.0, le=60.0)
    """How often (seconds) a node looks in the store for devices signed out by another process
    (``mqchat users signout``) and closes their connections: one query per sweep."""


JWT_ALGORITHMS = {
    "HS256": "oct",
    "HS384": "oct",
    "HS512": "oct",
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
}
"""The JWT algorithms JWT login accepts, and the key type (JWK ``kty``) each needs: ``oct`` is the
shared ``auth.jwt_secret``, the others are public keys from ``auth.jwt_jwks_file``."""
JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"
]


class AuthSettings(_Section):
    """Logins besides the tokens and passwords of ``mqchat users``: JWTs of the app's auth server.

    JWT login is on when ``jwt_secret`` or ``jwt_jwks_file`` is set. The MQTT password (and the
    media endpoint's) is then either a token/password as before or a JWT whose ``sub`` is the
    MQTT username."""

    jwt_secret: SecretStr | None = Field(default=None, min_length=32)
    """Shared secret of the HS algorithms (its UTF-8 bytes): 32 characters at least, 48 for HS384,
    64 for HS512."""
    jwt_jwks_file: Path | None = None
    """A JWKS file (JSON ``{"keys": [...]}``) with the public keys of the RS, PS and ES algorithms;
    a token's ``kid`` picks its key. Read once at start: restart the node to rotate keys."""
    jwt_algorithms: list[JwtAlgorithm] | None = None
    """The algorithms accepted; any other (``none`` included) is refused. Unset: HS256 when
    ``jwt_secret`` is set, RS256 and ES256 when ``jwt_jwks_file`` is set."""
    jwt_issuer: str | None = None
    """The ``iss`` a token must carry; unset: not checked."""
    jwt_audience: str | None = None
    """The ``aud`` a token must carry; unset: a token that has an ``aud`` is refused."""
    jwt_leeway: float = Field(default=30.0, ge=0.0, le=300.0)
    """Seconds of clock difference allowed for ``exp``, ``nbf`` and ``iat``."""
    jwt_create_users: bool = False
    """Create the user of a valid JWT on its first login; false: only users that exist (``mqchat
    users add``) may log in with a JWT."""

    @property
    def jwt(self) -> bool:
        """Whether JWT login is on."""
        return self.jwt_secret is not None or self.jwt_jwks_file is not None

    @property
    def jwt_accepted(self) -> list[str]:
        """The algorithms accepted (``jwt_algorithms``, or what the keys configured allow)."""
        if self.jwt_algorithms is not None:
            return list(self.jwt_algorithms)
        return (["HS256"] if self.jwt_secret is not None else []) + (
            ["RS256", "ES256"] if self.jwt_jwks_file is not None else []
        )

    @model_validator(mode="after")
    def _jwt_consistent(self) -> AuthSettings:
        if self.jwt_algorithms is not None and not self.jwt:
            raise ValueError("auth.jwt_algorithms needs auth.jwt_secret or auth.jwt_jwks_file")
        if self.jwt_algorithms is not None and not self.jwt_algorithms:
            raise ValueError(
                "auth.jwt_algorithms: name at least one algorithm (or unset jwt_secret and jwt_jwks_file)"
            )
        accepted = self.jwt_accepted
        shared = [alg for alg in accepted if JWT_ALGORITHMS[alg] == "oct"]
        public = [alg for alg in accepted if JWT_ALGORITHMS[alg] != "oct"]
        if shared and self.jwt_secret is None:
            raise ValueError(f"auth.jwt_algorithms: {shared[0]} needs auth.jwt_secret")
        if public and self.jwt_jwks_file is None:
            raise ValueError(f"auth.jwt_algorithms: {public[0]} needs public keys in auth.jwt_jwks_file")
        if self.jwt_secret is not None:
            if not shared:
                raise ValueError("auth.jwt_secret is set but auth.jwt_algorithms has no HS algorithm")
            size = len(self.jwt_secret.get_secret_value().encode())
            for alg in shared:
                if size < int(alg[2:]) // 8:
                    raise ValueError(
                        f"auth.jwt_secret: {alg} needs a secret of {int(alg[2:]) // 8} bytes at least"
                    )
        if self.jwt_jwks_file is not None:
            if not public:
                raise ValueError(
                    "auth.jwt_jwks_file is set but auth.jwt_algorithms has no RS, PS or ES algorithm"
                )
            _check_jwks(self.jwt_jwks_file)
        return self


class AdminSettings(_Section):
    """The admin HTTP API (``/admin/v1/`` on the node's HTTP port): off while ``key`` is unset."""

    key: SecretStr | None = Field(default=None, min_length=32)
    """The key operators and app back ends send as ``Authorization: Bearer <key>``: 32 characters
    at least (``openssl rand -base64 33``, say). Unset: the API is off (404)."""


def _check_jwks(path: Path) -> None:
    """That ``path`` is a JWKS (its keys are read, and checked one by one, when a node starts)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ValueError(f"auth.jwt_jwks_file: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"auth.jwt_jwks_file: {path} is not JSON: {exc}") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(key, dict) for key in keys):
        raise ValueError(f'auth.jwt_jwks_file: {path} is not a JWKS: expected {{"keys": [{{...}}, ...]}}')


class Settings(_Section):
    node_id: str = Field(
        default_factory=lambda: f"node-{uuid.uuid4().hex[:8]}", pattern=r"^[A-Za-z0-9_.-]{1,64}$"
    )
    """Name of this node in the locator; unique per node."""
    data_dir: Path = Field(default=Path("mqchat-data"), validate_default=True)
    """Where the single-node defaults keep their files (SQLite database, media)."""
    broker: BrokerSettings = BrokerSettings()
    topics: TopicSettings = TopicSettings()
    store: StoreSettings = StoreSettings()
    workers: WorkerSettings = WorkerSettings()
    limits: LimitSettings = LimitSettings()
    presence: PresenceSettings = PresenceSettings()
    groups: GroupSettings = GroupSettings()
    messages: MessageSettings = MessageSettings()
    retention: RetentionSettings = RetentionSettings()
    sessions: SessionSettings = SessionSettings()
    media: MediaSettings = MediaSettings()
    push: PushSettings = PushSettings()
    locator: LocatorSettings = LocatorSettings()
    auth: AuthSettings = AuthSettings()
    admin: AdminSettings = AdminSettings()

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'mqchat.db'}"

    @property
    def media_storage_url(self) -> str:
        return self.media.storage_url or (self.data_dir / "media").as_uri()

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with top-level or dotted (``broker.mqtt_port``) fields replaced, validated again."""
        data = self.model_dump()
        for key, value in changes.items():
            target = data
            *parents, leaf = key.split(".")
            for part in parents:
                target = target[part]
            target[leaf] = value
        return _validate(data)


# Sections that were renamed: a file that still has the old one is told the new name, rather than
# that the section is unknown.
_RENAMED_SECTIONS = {"sessions": ("[locator] (which node each user is on)", {"url", "node_ttl"})}
"""Sections whose settings moved: the old name, where they went, and the settings that moved (the
name ``sessions`` is now persistent MQTT sessions': a file with ``[sessions] url`` is an old one)."""


def _validate(data: dict[str, Any]) -> Settings:
    for old, (new, moved) in _RENAMED_SECTIONS.items():
        section = data.get(old)
        if isinstance(section, dict) and moved & set(section):
            raise SettingsError(f"invalid settings: {old}: this section is now {new}")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None


def load_settings(path: str | Path | None = None) -> Settings:
    """The settings from a TOML file, or the defaults when ``path`` is None."""
    if path is None:
        return Settings()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read settings file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{file} is not valid TOML: {exc}") from None
    return _validate(data)
