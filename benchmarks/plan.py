"""What the coordinator hands to each worker process, and what comes back (all picklable)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ConnectResult", "Progress", "Step", "StepResult", "Target", "WorkerPlan"]

Mode = Literal["raw", "chat"]


@dataclass(frozen=True)
class Target:
    """A broker to load. ``mqchat`` ones speak the chat contract: a login per user, chat topics."""

    name: str
    host: str
    port: int
    mqchat: bool = False
    pid: int | None = None
    username: str | None = None
    """For plain brokers: one login for every connection (None: anonymous)."""
    password: str | None = None
    token: str | None = None
    """For mqchat: the token every benchmark user was given (for an XMPP peer: every password)."""
    mqtt5: bool = False
    """Connect with MQTT 5 instead of 3.1.1."""
    protocol: str = "mqtt"
    """``xmpp`` for the chat peer (ejabberd): the same chat workload over XMPP."""
    domain: str | None = None
    """XMPP: the users' domain (``user@domain``)."""
    database: str | None = None
    """The PostgreSQL database the target stores in, when it does: its backends' CPU is measured."""


@dataclass(frozen=True)
class WorkerPlan:
    index: int
    target: Target
    mode: Mode
    run_id: str
    idle: tuple[str, ...] = ()
    """Users (mqchat) or client id suffixes that only connect and subscribe."""
    pairs: tuple[tuple[str, str], ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    """Chat groups, creator first (chat mode only)."""
    qos: int = 1
    payload: int = 100
    window: int = 10
    """Flat out: messages each pair (or group) keeps on the way."""
    keepalive: int = 60
    connect_concurrency: int = 200
    receipts: bool = True
    """Chat: recipients send ``delivered`` receipts, as the SDK does."""
    sources: tuple[str, ...] = ("127.0.0.1",)
    """Loopback source addresses the connections are spread over, worker ``i``'s ``n``-th
    connection on ``sources[(i + n * procs) % len(sources)]`` (see benchmarks/limits.py)."""
    procs: int = 1


@dataclass(frozen=True)
class Step:
    rate: float | None
    """Messages per second this worker sends (None: flat out, each pair keeps ``window`` on the way)."""
    start_at: float
    """time.monotonic() at which to begin (the clock is shared by the processes of a Linux machine)."""
    warmup: float
    seconds: float
    drain: float


@dataclass
class Progress:
    worker: int
    sent: int = 0
    delivered: int = 0
    connected: int = 0
    p99_ms: float | None = None
    behind: int = 0


@dataclass
class ConnectResult:
    worker: int
    connected: int
    failed: int
    seconds: float
    errors: list[str] = field(default_factory=list)


@dataclass
class StepResult:
    worker: int
    sent: int
    """Messages sent in the measured window."""
    expected: int
    """Copies the recipients should get for them (more than ``sent`` for groups)."""
    delivered: int
    """Of those, copies that arrived (before the drain ran out)."""
    latencies: dict[str, array[float]]
    errors: dict[str, int]
    behind: int
    """Fixed rate: most messages the sender was ever behind its schedule."""
    lost_connections: int
