"""The ``mqchat`` command: run a node, manage users, show settings."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import re
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from client_sdk.contract import is_valid_user_id
from config.extras import check_extras
from config.settings import Settings, SettingsError, load_settings
from workers.credentials import hash_password, hash_token, new_token
from workers.errors import StoreError, UnknownUser
from workers.stores import Store, open_store

T = TypeVar("T")

__all__ = ["loop_factory", "main", "run_process"]

log = logging.getLogger("mqchat")

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqchat", description="A WhatsApp-style messaging backend over MQTT."
    )
    parser.add_argument("--config", metavar="FILE", help="settings file (TOML); default: built-in defaults")
    parser.add_argument("--data-dir", metavar="DIR", help="where the single-node store keeps its files")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a single node: broker, workers and store on this machine")
    run.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="MQTT over TCP port (default 1883)")
    run.add_argument("--ws-port", type=int, help="MQTT over WebSocket port (default 8080)")
    run.add_argument("--no-ws", action="store_true", help="do not listen for WebSocket clients")
    run.add_argument("--http-port", type=int, help="HTTP port for images and videos (default 8090)")

    node = commands.add_parser("node", help="run a broker node only (workers run as 'mqchat worker')")
    node.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    node.add_argument("--port", type=int, help="MQTT over TCP port (default 1883)")
    node.add_argument("--ws-port", type=int, help="MQTT over WebSocket port (default 8080)")
    node.add_argument("--no-ws", action="store_true", help="do not listen for WebSocket clients")
    node.add_argument("--http-port", type=int, help="HTTP port for images and videos (default 8090)")
    node.add_argument("--node-id", help="this node's name in the locator")
    commands.add_parser("worker", help="run the workers only (store, route, notify), next to 'mqchat node's")

    users = commands.add_parser("users", help="let people in: add, list, remove users and their credentials")
    users_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = users_commands.add_parser("add", help="create a user and print a token for it")
    add.add_argument("name")
    add.add_argument(
        "--password", action="store_true", help="set a password (asked on the terminal or stdin)"
    )
    users_commands.add_parser("list", help="list users")
    token = users_commands.add_parser("token", help="issue another token for a user (e.g. a new device)")
    token.add_argument("name")
    token.add_argument(
        "--device",
        metavar="DEVICE",
        help="the token logs in only as client id NAME/DEVICE (signout revokes it)",
    )
    devices = users_commands.add_parser("devices", help="list a user's devices (client ids NAME/DEVICE)")
    devices.add_argument("name")
    signout = users_commands.add_parser(
        "signout", help="sign one device out: revoke its device tokens and close its connection"
    )
    signout.add_argument("name")
    signout.add_argument("device")
    revoke = users_commands.add_parser("revoke", help="remove every token and password of a user")
    revoke.add_argument("name")
    remove = users_commands.add_parser("remove", help="delete a user and its credentials")
    remove.add_argument("name")
    phone = users_commands.add_parser("phone", help="set (or --clear) the phone number for SMS notifications")
    phone.add_argument("name")
    phone.add_argument("number", nargs="?", help="E.164, e.g. +15550001111")
    phone.add_argument("--clear", action="store_true")

    messages = commands.add_parser("messages", help="moderate messages: delete one for everyone")
    messages_commands = messages.add_subparsers(dest="messages_command", required=True, metavar="ACTION")
    delete = messages_commands.add_parser(
        "delete", help="delete a message for everyone: its text and media are gone, a tombstone stays"
    )
    delete.add_argument("message_id", metavar="MESSAGE_ID")
    delete.add_argument("--by", default="admin", help="who deleted it, as recorded (default: admin)")

    _reports_parser(commands)
    commands.add_parser("settings", help="print the effective settings as JSON")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if getattr(args, "host", None):
        overrides["broker.host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["broker.mqtt_port"] = args.port
    if getattr(args, "ws_port", None) is not None:
        overrides["broker.ws_port"] = args.ws_port
    if getattr(args, "no_ws", False):
        overrides["broker.ws_port"] = None
    if getattr(args, "http_port", None) is not None:
        overrides["media.http_port"] = args.http_port
    if getattr(args, "node_id", None):
        overrides["node_id"] = args.node_id
    return settings.with_overrides(**overrides) if overrides else settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the libraries' own chatter (a line per connection) stays out unless debugging
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("amqtt", "dramatiq", "transitions", "websockets"):
        logging.getLogger(name).setLevel(quiet)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_several_workers_are_fine)


def _several_workers_are_fine(record: logging.LogRecord) -> bool:
    # A process runs one Dramatiq Worker per kind of queue (commands in order on one thread, slow
    # jobs on a pool); Dramatiq warns that each adds the same middleware type, which is harmless.
    return not (
        record.name.startswith("dramatiq.broker") and "middleware of the same type" in str(record.msg)
    )


def _reports_parser(commands: Any) -> None:
    """``mqchat reports list``."""
    reports = commands.add_parser("reports", help="read the reports users made of other users")
    reports_commands = reports.add_subparsers(dest="reports_command", required=True, metavar="ACTION")
    listing = reports_commands.add_parser("list", help="list reports, oldest first, as JSON lines")
    listing.add_argument("--after", type=int, metavar="ID", help="only reports after this id")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.log_level)
    try:
        settings = _settings(args)
        if args.command != "settings":  # printing the settings needs no backend
            check_extras(settings)
        if args.command == "run":
            return _run(settings)
        if args.command == "node":
            return _run(settings, run_workers=False)
        if args.command == "worker":
            return _worker(settings)
        if args.command == "settings":
            print(json.dumps(settings.model_dump(mode="json"), indent=2))
            return 0
        if args.command == "messages":
            from broker.cli_messages import delete_message

            return delete_message(settings, args.message_id, by=args.by)
        if args.command == "reports":
            from broker.cli_reports import list_reports

            return list_reports(settings, after=args.after, limit=args.limit)
        return _users(args, settings)
    except (SettingsError, StoreError) as exc:
        print(f"mqchat: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------- run
def _run(settings: Settings, *, run_workers: bool = True) -> int:
    from broker.node import Node, NodeError

    async def serve() -> int:
        node = Node(settings, run_workers=run_workers)
        try:
            await node.start()
        except NodeError as exc:
            print(f"mqchat: {exc}", file=sys.stderr)
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        scheme = "mqtts" if settings.broker.tls else "mqtt"
        host = settings.broker.host
        kind = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
        print(f"mqchat node {node.node_id} is running (event loop: {kind})", flush=True)
        print(f"  MQTT       {scheme}://{host}:{node.mqtt_port}", flush=True)
        if node.ws_port is not None:
            print(
                f"  WebSocket  {'wss' if settings.broker.tls else 'ws'}://{host}:{node.ws_port}/", flush=True
            )
        if node.http is not None:
            print(f"  media      {node.http.scheme}://{host}:{node.http_port}", flush=True)
        print(f"  store      {_redact(settings.store_url)}", flush=True)
        if run_workers:
            print("  add a user with: mqchat users add NAME    (Ctrl-C stops)", flush=True)
        await stop.wait()
        print("mqchat: stopping (finishing accepted messages)...", flush=True)
        await node.stop()
        print("mqchat: stopped", flush=True)
        return 0

    return run_process(serve(), settings.broker.event_loop)


def run_process(main: Coroutine[Any, Any, T], event_loop: str) -> T:
    """Run ``main`` as a broker process does: on the ``event_loop`` asked for, with GC pacing."""
    from workers.gc_pacing import GcPacing

    _raise_open_files()
    pacing = GcPacing()
    pacing.start()
    try:
        with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
            return runner.run(main)
    finally:
        pacing.stop()


def _raise_open_files() -> None:
    """Raise the soft open-file limit to the hard one (as Go programs do at start): every client
    connection is a file descriptor, and a distribution's default soft limit (1,024) would cap a
    node far below what it can hold. Raising the hard limit is the administrator's (LimitNOFILE=,
    ``ulimit -Hn``)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit the kernel refuses as soft
            log.info("the open-file limit stays at %d: %s", soft, exc)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for and installed; None: the standard library's."""
    if name != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:  # not installed (Windows has no uvloop)
        return None
    return uvloop.new_event_loop


def _worker(settings: Settings) -> int:
    import threading
    from functools import partial

    from workers.health import HealthServer
    from workers.jobs import make_queue_broker, send_to_node
    from workers.locator import open_locator
    from workers.media.cleanup import send_cleanup_job
    from workers.metrics import watch_job_queues
    from workers.retention import Pruner, run_pruner
    from workers.service import build_workers

    if settings.workers.queue_url.startswith("memory:") or not settings.locator.url:
        print(
            "mqchat: a separate worker needs a shared job queue (workers.queue_url redis:// or amqp://) "
            "and a shared locator (locator.url redis://)",
            file=sys.stderr,
        )
        return 2
    store = open_store(settings.store_url)
    store.create_schema()
    queue_broker = make_queue_broker(settings.workers.queue_url)
    workers, expiry = build_workers(
        settings,
        store=store,
        locator=open_locator(settings),
        queue_broker=queue_broker,
        send_to_node=partial(send_to_node, queue_broker),
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for worker in workers:
        worker.start()
    expiry.start()  # disappearing messages: each worker sweeps (the store expires each once)
    watch_job_queues(queue_broker, sorted(queue_broker.get_declared_queues()))
    # retention's sweeps: one worker of the cluster at a time prunes (a lease in the store)
    pruner = Pruner(
        store,
        settings.retention,
        holder=settings.node_id,
        discard=partial(send_cleanup_job, queue_broker),
        sessions=store,
    )
    pruning = threading.Thread(
        target=run_pruner,
        args=(pruner, settings.retention.interval, stop),
        name="mqchat-retention",
        daemon=True,
    )
    pruning.start()
    health = None
    if settings.workers.health_port is not None:

        def check() -> dict[str, object]:
            if not all(any(t.is_alive() for t in w.workers) for w in workers):
                raise RuntimeError("a worker pool has no live thread")
            return {"role": "worker"}

        health = HealthServer(settings.broker.host, settings.workers.health_port, check)
        health.start()
    where = f", health http://{settings.broker.host}:{health.port}/healthz" if health else ""
    print(f"mqchat worker running: queue {_redact(settings.workers.queue_url)}{where}", flush=True)
    stop.wait()
    if health is not None:
        health.close()
    print("mqchat: stopping (finishing jobs in progress)...", flush=True)
    expiry.stop()
    pruner.close()
    pruning.join(30)
    for worker in workers:
        worker.stop(30_000)
    queue_broker.close()
    store.close()
    print("mqchat: stopped", flush=True)
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.rsplit("@", 1)[-1]


# ---------------------------------------------------------------------- users
def _users(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings.store_url)
    try:
        store.create_schema()
        return _users_action(args, store)
    finally:
        store.close()


def _users_action(args: argparse.Namespace, store: Store) -> int:
    action = args.users_command
    if action == "list":
        for user in store.list_users():
            seen = (
                datetime.fromtimestamp(user.last_seen, UTC).isoformat(timespec="seconds")
                if user.last_seen
                else "-"
            )
            print(f"{user.id}\tcredentials={user.credentials}\tlast_seen={seen}")
        return 0
    name = args.name
    if not is_valid_user_id(name):
        print(f"mqchat: {name!r} is not a valid user id (1-64 of A-Z a-z 0-9 _ . -)", file=sys.stderr)
        return 2
    now = time.time()
    if action == "add":
        store.create_user(name, now=now)
        if args.password:
            store.add_credential(name, kind="password", secret_hash=hash_password(_ask_password()), now=now)
        token = new_token()
        store.add_credential(name, kind="token", secret_hash=hash_token(token), now=now)
        print(f"user {name} created; connect with username {name!r} and this token as password:")
        print(token)
        return 0
    if action == "token":
        device = args.device
        if device is not None and not is_valid_user_id(device):
            print(
                f"mqchat: {device!r} is not a valid device name (1-64 of A-Z a-z 0-9 _ . -)", file=sys.stderr
            )
            return 2
        token = new_token()
        store.add_credential(name, kind="token", secret_hash=hash_token(token), now=now, device=device)
        print(token)
        return 0
    if action == "devices":
        if not store.user_exists(name):
            raise UnknownUser(name)
        for info in store.devices_of(name):
            print(
                f"{info.device}\tonline={'yes' if info.online else 'no'}\tplatform={info.platform or '-'}"
                f"\tfirst_seen={_when(info.first_seen)}\tlast_seen={_when(info.last_seen)}"
            )
        return 0
    if action == "signout":
        removed = store.sign_out_device(name, device=args.device, now=now)
        print(
            f"signed out {name}/{args.device}: {removed} device token(s) revoked; running nodes close its"
            " connection within presence.sign_out_sweep seconds (user-wide tokens and password still work)"
        )
        return 0
    if action == "phone":
        number = None if args.clear else args.number
        if number is not None and not _E164.fullmatch(number):
            print(f"mqchat: {number!r} is not an E.164 phone number (like +15550001111)", file=sys.stderr)
            return 2
        if number is None and not args.clear:
            print(store.phone_of(name) or "-")
            return 0
        store.set_phone(name, number)
        print(f"phone of {name}: {number or 'cleared'}")
        return 0
    if action == "revoke":
        print(f"removed {store.remove_credentials(name)} credential(s) of {name}")
        return 0
    store.delete_user(name)
    print(f"user {name} removed")
    return 0


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _ask_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise SettingsError("the passwords differ")
        password = first
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise SettingsError("a password needs at least 8 characters")
    return password


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
