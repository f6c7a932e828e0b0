"""The brokers under test: started here on free ports (and stopped), or given by address.

- ``mosquitto``: Debian's ``mosquitto`` with a config of its own (anonymous, no persistence,
  ``set_tcp_nodelay``), never the system instance.
- ``amqtt``: stock amqtt 0.12 through its own CLI, anonymous.
- ``mqchat-broker``: mqchat's embedded broker alone as a plain relay (``benchmarks/relay.py``):
  the raw workload without the chat pipeline, to tell the broker's cost from the pipeline's.
- ``mqchat``: ``mqchat run`` (``python -m broker.cli``) with a data folder of its own; the
  benchmark users are created in its store first, all with one token. The per-user command rate
  limit is lifted (``limits.commands_per_second``): the benchmark measures capacity, not the throttle.
- ``external``: any broker already running (``--host``/``--port``, ``--pid`` for its CPU and memory).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.plan import Target

__all__ = ["BENCH_NODE_SETTINGS", "Launched", "TargetError", "launch", "provision_users"]

BENCH_NODE_SETTINGS: dict[str, object] = {
    "limits.commands_per_second": 1_000_000_000.0,
    "limits.commands_burst": 1_000_000_000,
}
"""What the benchmark changes in a node it starts (``--node-setting`` adds to it)."""

REPO = Path(__file__).resolve().parent.parent


class TargetError(Exception):
    """A broker could not be started or reached."""


@dataclass
class Launched:
    target: Target
    process: subprocess.Popen[bytes] | None
    log: Path | None

    def stop(self, timeout: float = 60.0) -> None:
        """Stop a broker this module started (SIGINT lets mqchat drain); external ones are left alone."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports below the ephemeral range. A port the kernel hands out (bind
    to 0) is an ephemeral one: until the server binds it, any outgoing connection on the machine
    (a load generator opening thousands, a client reconnecting to a stopped server) may be given
    it as its own source port, and the server then fails with "address already in use"."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:  # not Linux: IANA's ephemeral range starts at 49152, Linux's default at 32768
        low = 32_768
    held: list[socket.socket] = []
    try:
        for _ in range(200 * count):
            if len(held) == count:
                break
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind((host, random.randrange(10_000, min(low, 32_768))))
            except OSError:
                probe.close()
                continue
            held.append(probe)
        if len(held) < count:
            raise TargetError("no free port below the ephemeral range")
        return [int(probe.getsockname()[1]) for probe in held]
    finally:
        for probe in held:
            probe.close()


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def _wait_ready(proc: subprocess.Popen[bytes], host: str, port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TargetError(f"the broker exited with {proc.returncode}: {_tail(log)}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise TargetError(f"the broker did not listen on {host}:{port} within {timeout:.0f} s: {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
    except OSError:
        return "(no log)"


def _start(argv: list[str], workdir: Path, name: str, port: int, timeout: float = 60.0) -> Launched:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    _wait_ready(proc, "127.0.0.1", port, log, timeout)
    return Launched(Target(name=name, host="127.0.0.1", port=port, pid=proc.pid), proc, log)


def _mosquitto(workdir: Path) -> Launched:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise TargetError("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence false\n"
        "set_tcp_nodelay true\n"
        "max_queued_messages 100000\n"
        "log_dest stdout\n"
        "log_type error\nlog_type warning\n"
    )
    return _start([binary, "-c", str(conf)], workdir, "mosquitto", port)


def _amqtt(workdir: Path) -> Launched:
    port = free_port()
    conf = workdir / "amqtt.yaml"
    conf.write_text(
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    amqtt = Path(sys.executable).with_name("amqtt")
    return _start([str(amqtt), "-c", str(conf)], workdir, "amqtt", port)


def _relay(workdir: Path) -> Launched:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.relay", "--port", str(port)]
    return _start(argv, workdir, "mqchat-broker", port)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def node_config(settings: Mapping[str, object]) -> str:
    """A settings file from dotted keys (``limits.commands_burst``)."""
    sections: dict[str, list[str]] = {}
    top: list[str] = []
    for key, value in settings.items():
        section, _, name = key.rpartition(".")
        line = f"{name} = {_toml_value(value)}"
        (sections.setdefault(section, []) if section else top).append(line)
    parts = ["\n".join(top)] if top else []
    parts += [f"[{section}]\n" + "\n".join(lines) for section, lines in sections.items()]
    return "\n\n".join(parts) + "\n"


def provision_users(store_url: str, users: Iterable[str]) -> str:
    """Create ``users`` (existing ones are kept) with one new token for all; returns the token."""
    from workers.credentials import hash_token, new_token
    from workers.errors import UserExists
    from workers.stores import open_store

    token = new_token()
    secret = hash_token(token)
    store = open_store(store_url)
    try:
        store.create_schema()
        now = time.time()
        for user in users:
            with contextlib.suppress(UserExists):
                store.create_user(user, now=now)
            store.add_credential(user, kind="token", secret_hash=secret, now=now)
    finally:
        store.close()
    return token


def _mqchat(
    workdir: Path, users: Iterable[str], settings: Mapping[str, object], store: str | None = None
) -> Launched:
    """A node on its own SQLite file, or on ``store`` (a PostgreSQL database made for it)."""
    data = workdir / "mqchat-data"
    data.mkdir(exist_ok=True)
    if store is not None:
        settings = {**settings, "store.url": store}
    url = str(settings.get("store.url") or f"sqlite:///{data / 'mqchat.db'}")
    token = provision_users(url, users)
    conf = workdir / "mqchat.toml"
    conf.write_text(node_config({**BENCH_NODE_SETTINGS, **settings}))
    port, http_port = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "broker.cli",
        "--config",
        str(conf),
        "--data-dir",
        str(data),
        "--log-level",
        "warning",
        "run",
        "--port",
        str(port),
        "--no-ws",
        "--http-port",
        str(http_port),
    ]
    launched = _start(argv, workdir, "mqchat", port, timeout=120)
    target = launched.target
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database if parsed.get_backend_name() == "postgresql" else None
    launched.target = Target(
        name="mqchat",
        host=target.host,
        port=port,
        mqchat=True,
        pid=target.pid,
        token=token,
        database=database,
    )
    return launched


@contextlib.contextmanager
def launch(
    name: str,
    workdir: Path,
    *,
    users: Iterable[str] = (),
    node_settings: Mapping[str, object] | None = None,
    external: Target | None = None,
    store_url: str | None = None,
    database: str | None = None,
) -> Iterator[Launched]:
    """Start the broker ``name`` (``mosquitto``, ``amqtt``, ``mqchat``, ``mqchat-broker``, the chat
    peer ``ejabberd``) or use ``external``; stop it after. ``store_url``: the store of the external
    mqchat node, or of the one started here (its ``store.url``; default a SQLite file in
    ``workdir``). With ``database`` (a PostgreSQL admin URL) instead, mqchat and ejabberd each store
    in a fresh database on that server, dropped after."""
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "ejabberd" and external is None:
        import secrets

        from benchmarks.ejabberd import DEFAULT_DATABASE, launch_ejabberd

        with launch_ejabberd(workdir, users, database or DEFAULT_DATABASE, secrets.token_urlsafe(16)) as peer:
            yield peer
        return
    if name == "mqchat" and database and external is None:
        from benchmarks.databases import fresh_database

        with fresh_database(database, "bench_mqchat") as url:
            launched = _mqchat(workdir, users, node_settings or {}, store=url)
            try:
                yield launched
            finally:
                launched.stop(60.0)
        return
    if external is not None:
        target = external
        if external.mqchat:
            if store_url is None:
                raise TargetError("an external mqchat node needs --store-url to create the benchmark users")
            token = provision_users(store_url, users)
            target = Target(**{**external.__dict__, "token": token})
        yield Launched(target, None, None)
        return
    if name == "mosquitto":
        launched = _mosquitto(workdir)
    elif name == "amqtt":
        launched = _amqtt(workdir)
    elif name == "mqchat-broker":
        launched = _relay(workdir)
    elif name == "mqchat":
        settings = dict(node_settings or {})
        if store_url is not None:  # the started node's store (a PostgreSQL database, say)
            settings.setdefault("store.url", store_url)
        launched = _mqchat(workdir, users, settings)
    else:
        known = "mosquitto, amqtt, mqchat, mqchat-broker, ejabberd, or external with --port"
        raise TargetError(f"unknown broker {name!r} ({known})")
    try:
        yield launched
    finally:
        # Only mqchat has stored work to finish; a plain broker that has not exited in a few
        # seconds is killed (stock amqtt once took a minute to act on SIGINT, in a test run).
        launched.stop(60.0 if name == "mqchat" else 5.0)


def pid_of_port(port: int) -> int | None:
    """The pid listening on ``port`` on this machine, when it can be seen (for ``--pid auto``)."""
    import psutil  # type: ignore[import-untyped]

    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return int(conn.pid)
    return None
