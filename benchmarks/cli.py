"""``python -m benchmarks``: the load generator's command line.

python -m benchmarks raw --broker mqchat,mosquitto,amqtt --users 5000 --pairs 50 --rate 1000,2000
python -m benchmarks chat --users 5000 --pairs 200 --rate 500,1000,2000 --profile
python -m benchmarks chat --broker mqchat,ejabberd --database postgresql://postgres@127.0.0.1:5432/postgres \
    --users 5000 --pairs 100 --rate 1000,1500,2000   # mqchat and the XMPP peer, each on PostgreSQL
python -m benchmarks sync --messages 10000
python -m benchmarks history --conversations 1000 --messages 100000
python -m benchmarks raw --host 127.0.0.1 --port 1883 --pid auto   # any running broker
python -m benchmarks raw --broker mqchat-broker,mosquitto --mqtt 3.1.1,5   # each broker on each version
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from benchmarks.coordinator import BenchError, Scenario, new_run_id, run_scenario, scenario_users
from benchmarks.history import HistoryReport
from benchmarks.limits import OpenFilesTooLow, open_files_needed, raise_open_files
from benchmarks.machine import describe
from benchmarks.plan import Target
from benchmarks.procstat import ProcessSet, StoreWatch
from benchmarks.profile import Profiler
from benchmarks.progress import Progress
from benchmarks.report import RunReport, SyncReport, format_runs, write_json
from benchmarks.targets import TargetError, launch, pid_of_port

__all__ = ["main"]


def _rates(text: str) -> tuple[float | None, ...]:
    rates: list[float | None] = []
    for raw in text.split(","):
        part = raw.strip().lower()
        if part in {"flat", "max", "flat-out"}:
            rates.append(None)
        else:
            value = float(part)
            if value <= 0:
                raise argparse.ArgumentTypeError("a rate is a positive number of messages per second")
            rates.append(value)
    return tuple(rates)


def _mqtt_versions(text: str) -> tuple[str, ...]:
    versions = tuple(part.strip() for part in text.split(",") if part.strip())
    if not versions or any(v not in ("3.1.1", "5") for v in versions):
        raise argparse.ArgumentTypeError("MQTT versions are 3.1.1 and 5, comma-separated")
    return versions


def _setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("use section.name=value, e.g. workers.ingest_batch=500")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def _watch(text: str) -> tuple[str, ProcessSet]:
    name, sep, pattern = text.partition("=")
    if not sep or not name or not pattern:
        raise argparse.ArgumentTypeError("use NAME=REGEX, e.g. rabbitmq=beam.smp.*rabbit")
    try:
        return name.strip(), ProcessSet(pattern)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {exc}") from None


def _common(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("broker")
    target.add_argument(
        "--broker",
        default="mqchat",
        help="comma-separated brokers to start and load in turn: mqchat, mosquitto, amqtt, mqchat-broker"
        " (mqchat's broker alone, as a relay); chat mode: mqchat and the chat peer ejabberd (XMPP,"
        " pairs only) (default mqchat)",
    )
    target.add_argument(
        "--database",
        metavar="URL",
        help="a PostgreSQL server (admin URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres):"
        " mqchat and ejabberd each store in a fresh database there, whose CPU is measured too"
        " (default: mqchat on SQLite; ejabberd always needs PostgreSQL and uses that URL)",
    )
    target.add_argument("--host", default="127.0.0.1", help="with --port: a broker already running")
    target.add_argument("--port", type=int, help="load the broker already listening here instead")
    target.add_argument("--pid", help="its process id for CPU and memory figures, or 'auto'")
    target.add_argument("--username", help="plain broker: login of every connection")
    target.add_argument("--password")
    target.add_argument("--mqchat", action="store_true", help="the broker at --port is an mqchat node")
    target.add_argument(
        "--store-url",
        help="the mqchat node's store: an external node's (to create the benchmark users) or the"
        " started node's (its store.url, e.g. postgresql://postgres@127.0.0.1/bench, whose backends'"
        " CPU is reported as store CPU)",
    )
    target.add_argument(
        "--node-setting",
        action="append",
        type=_setting,
        default=[],
        metavar="KEY=VALUE",
        help="setting of the mqchat node started here (repeatable), e.g. workers.ingest_batch=500",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    out.add_argument("--workdir", type=Path, help="where started brokers keep config, data and logs")
    out.add_argument("--keep", action="store_true", help="keep the work folder")
    out.add_argument("--quiet", action="store_true", help="no progress display")


def _load(parser: argparse.ArgumentParser, *, chat: bool) -> None:
    load = parser.add_argument_group("load")
    load.add_argument("--users", type=int, default=0, help="connected users in all (idle ones fill up)")
    load.add_argument("--pairs", type=int, default=10, help="publisher/subscriber (chatting) pairs")
    if chat:
        load.add_argument("--groups", type=int, default=0, help="chatting groups")
        load.add_argument("--group-size", type=int, default=5)
        load.add_argument("--no-receipts", action="store_true", help="recipients send no delivered receipts")
    load.add_argument(
        "--rate",
        type=_rates,
        default=(None,),
        help="messages/s of each step, comma-separated; 'flat' = flat out (default)",
    )
    load.add_argument("--window", type=int, default=10, help="flat out: messages on the way per pair")
    load.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    load.add_argument("--duration", type=float, default=10.0, help="measured seconds per step")
    load.add_argument("--drain", type=float, default=10.0, help="seconds to wait for stragglers")
    load.add_argument(
        "--procs",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="load generator processes (default: half the cores, at least one: on two cores a second "
        "one only adds a process competing with the broker's; the report says if the generator is short)",
    )
    load.add_argument(
        "--mqtt",
        type=_mqtt_versions,
        default=("3.1.1",),
        metavar="VERSIONS",
        help="MQTT versions the load speaks, comma-separated: 3.1.1, 5 (default 3.1.1); with several,"
        " each broker is started and loaded once per version, and named with it in the results",
    )
    load.add_argument("--qos", type=int, default=1, choices=[0, 1])
    load.add_argument("--payload", type=int, default=100, help="approximate bytes per message")
    load.add_argument("--keepalive", type=int, default=60)
    load.add_argument("--connect-concurrency", type=int, default=200, help="per process")
    load.add_argument("--p99-target", type=float, default=10.0, help="ms, for the sustainable rate")
    load.add_argument(
        "--watch",
        action="append",
        type=_watch,
        default=[],
        metavar="NAME=REGEX",
        help="also report the CPU of the processes whose command line matches REGEX (and their "
        "children) as NAME, each step (repeatable): the other components of a deployment",
    )
    load.add_argument(
        "--profile",
        choices=["step", "connect"],
        help="py-spy the mqchat node during the first step, or while everyone connects",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    raw = modes.add_parser("raw", help="plain MQTT QoS 1 pairs and idle subscribers, against any broker")
    _load(raw, chat=False)
    _common(raw)
    chat = modes.add_parser("chat", help="mqchat end to end: sent, delivered, receipts")
    _load(chat, chat=True)
    _common(chat)
    sync = modes.add_parser("sync", help="an offline user with many missed messages catches up")
    sync.add_argument("--messages", type=int, default=10_000)
    sync.add_argument("--page-size", type=int, default=200, help="the 'limit' of each sync command")
    sync.add_argument("--no-receipts", action="store_true")
    sync.add_argument("--repeat", type=int, default=3, help="sync the same inbox this many times")
    sync.add_argument("--payload", type=int, default=100)
    _common(sync)
    history = modes.add_parser("history", help="history pages of a user with many conversations")
    history.add_argument("--conversations", type=int, default=1000)
    history.add_argument("--groups", type=int, default=20, help="of the conversations, groups of five")
    history.add_argument("--messages", type=int, default=100_000)
    history.add_argument("--queries", type=int, default=1000)
    history.add_argument("--limit", type=int, default=50, help="the 'limit' of each history command")
    _common(history)
    return parser


def _external(args: argparse.Namespace) -> Target | None:
    if args.port is None:
        return None
    pid: int | None = None
    if args.pid == "auto":
        pid = pid_of_port(args.port)
    elif args.pid:
        pid = int(args.pid)
    name = "mqchat" if args.mqchat else f"{args.host}:{args.port}"
    return Target(
        name=name,
        host=args.host,
        port=args.port,
        mqchat=args.mqchat,
        pid=pid,
        username=args.username,
        password=args.password,
    )


def _scenario(args: argparse.Namespace) -> Scenario:
    groups = getattr(args, "groups", 0)
    group_size = getattr(args, "group_size", 5)
    busy = 2 * args.pairs + groups * group_size
    return Scenario(
        mode=args.mode,
        idle=max(0, args.users - busy),
        pairs=args.pairs,
        groups=groups,
        group_size=group_size,
        rates=args.rate,
        warmup=args.warmup,
        seconds=args.duration,
        drain=args.drain,
        procs=args.procs,
        qos=args.qos,
        payload=args.payload,
        window=args.window,
        keepalive=args.keepalive,
        connect_concurrency=args.connect_concurrency,
        receipts=not getattr(args, "no_receipts", False),
    )


def _run_load(
    args: argparse.Namespace, workdir: Path, display: Progress, profiles: list[str]
) -> list[RunReport]:
    scenario = _scenario(args)
    users = scenario_users(scenario)
    # every connection is a file here and in the broker, which inherits this process's limit
    raise_open_files(open_files_needed(len(users.all())))
    external = _external(args)
    names = [external.name] if external else [n.strip() for n in args.broker.split(",") if n.strip()]
    if args.mode == "chat" and external is None and not set(names) <= {"mqchat", "ejabberd"}:
        raise TargetError("chat mode runs against mqchat and its peer ejabberd only")
    if args.mode == "raw" and "ejabberd" in names:
        raise TargetError("ejabberd is a chat peer (XMPP): use it in chat mode")
    reports = []
    versions: tuple[str, ...] = args.mqtt
    for name, version in [(name, version) for name in names for version in versions]:
        folder = name.replace(":", "_") + ("" if versions == ("3.1.1",) else f"-v{version}")
        with launch(
            name,
            workdir / folder,
            users=users.all(),
            node_settings=dict(args.node_setting),
            external=external,
            store_url=args.store_url,
            database=getattr(args, "database", None),
        ) as launched:
            target = replace(launched.target, mqtt5=version == "5")
            if versions != ("3.1.1",):
                target = replace(target, name=f"{target.name} v{version}")
            if args.mode == "chat" and not target.mqchat and target.protocol != "xmpp":
                raise TargetError("chat mode runs against mqchat only (add --mqchat for an external node)")
            profiler = None
            if args.profile and target.mqchat and target.pid:
                profiler = Profiler(target.pid, workdir)
            reports.append(
                run_scenario(
                    scenario,
                    target,
                    users,
                    display,
                    on_measure=profiler.start if profiler and args.profile == "step" else None,
                    on_connect=(profiler.start_open, profiler.stop)
                    if profiler and args.profile == "connect"
                    else None,
                    components=dict(getattr(args, "watch", [])),
                    store=StoreWatch(target.database)
                    if target.database
                    else StoreWatch.for_url(args.store_url or dict(args.node_setting).get("store.url")),
                )
            )
            if profiler is not None:
                phase = "step 1" if args.profile == "step" else "the connect phase"
                profiles.append(f"profile of the {target.name} node during {phase}:\n{profiler.finish()}")
    return reports


def _run_sync(args: argparse.Namespace, workdir: Path, display: Progress) -> list[SyncReport]:
    from benchmarks.sync import offline_sync

    run = new_run_id()
    sender, reader = f"b{run}-sender", f"b{run}-reader"
    external = _external(args)
    if external is not None and not external.mqchat:
        raise TargetError("sync runs against mqchat only (add --mqchat for an external node)")
    with launch(
        "mqchat",
        workdir / "mqchat",
        users=[sender, reader],
        node_settings=dict(args.node_setting),
        external=external,
        store_url=args.store_url,
    ) as launched:
        return offline_sync(
            launched.target,
            sender,
            reader,
            messages=args.messages,
            page_size=args.page_size,
            receipts=not args.no_receipts,
            repeat=args.repeat,
            payload=args.payload,
            display=display,
        )


def _run_history(args: argparse.Namespace, workdir: Path, display: Progress) -> list[HistoryReport]:
    from benchmarks.history import database_of, measure_node, measure_store, seed

    if _external(args) is not None:
        raise TargetError("history seeds its own SQLite store: run it without --port")
    folder = workdir / "mqchat"
    (folder / "mqchat-data").mkdir(parents=True, exist_ok=True)
    url = database_of(folder)
    seeded = seed(
        url, conversations=args.conversations, groups=args.groups, messages=args.messages, display=display
    )
    display.note(
        f"[history] seeded {seeded.messages} messages in {len(seeded.conversations)} conversations "
        f"in {seeded.seconds:.0f} s"
    )
    display.update("[history] in the store...")
    reports = [measure_store(url, seeded, queries=args.queries, limit=args.limit)]
    with launch("mqchat", folder, users=[seeded.user], node_settings=dict(args.node_setting)) as launched:
        display.update("[history] through the node...")
        reports.append(measure_node(launched.target, seeded, queries=args.queries, limit=args.limit))
    return reports


def _print_history(reports: list[HistoryReport]) -> None:
    for r in reports:
        where = "store.history()" if r.where == "store" else "end to end over MQTT"
        if r.latency is None:
            print(f"history, {where}: no samples")
            continue
        print(
            f"history, {where}: {r.latency.count} pages of {r.messages_per_page:.0f} messages on average: "
            f"p50 {r.latency.p50:.1f} ms, p90 {r.latency.p90:.1f} ms, p99 {r.latency.p99:.1f} ms, "
            f"max {r.latency.max:.1f} ms"
        )


def _print_sync(reports: list[SyncReport]) -> None:
    for i, r in enumerate(reports, 1):
        cpu = f", node CPU {r.broker_cpu:.0f}%" if r.broker_cpu is not None else ""
        mib = 2**20
        if r.broker_rss_before:
            cpu += f", node RSS {r.broker_rss_before / mib:.0f} -> peak {r.broker_rss_peak / mib:.0f} MiB"
        cpu += f", client RSS {r.client_rss_before / mib:.0f} -> peak {r.client_rss_peak / mib:.0f} MiB"
        print(
            f"sync {i}: {r.entries} of {r.messages} missed messages in {r.pages} pages: connect "
            f"{r.connect_seconds * 1000:.0f} ms + sync {r.sync_seconds:.2f} s = {r.total_seconds:.2f} s"
            f" (last cursor {r.last_cursor}, receipts {'on' if r.receipts else 'off'}{cpu})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    display = Progress(quiet=args.quiet)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mqchat-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    machine = describe()  # before any broker starts: the machine at rest
    ok = False
    try:
        if args.mode == "history":
            pages = _run_history(args, workdir, display)
            display.close()
            print(machine.line())
            _print_history(pages)
            if args.json:
                write_json(args.json, [asdict(page) for page in pages])
        elif args.mode == "sync":
            syncs = _run_sync(args, workdir, display)
            display.close()
            print(machine.line())
            _print_sync(syncs)
            if args.json:
                write_json(args.json, syncs)
        else:
            profiles: list[str] = []
            runs = _run_load(args, workdir, display, profiles)
            display.close()
            print(machine.line())
            print(format_runs(runs, p99_ms=args.p99_target))
            for profile in profiles:
                print(profile)
            if args.json:
                write_json(args.json, runs)
        ok = True
        return 0
    except (BenchError, TargetError, OpenFilesTooLow) as exc:
        display.close()
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        display.close()
        print("benchmarks: interrupted", file=sys.stderr)
        return 130
    finally:
        if args.workdir is None and ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok or args.keep:
            print(f"benchmarks: work folder kept in {workdir}", file=sys.stderr)
