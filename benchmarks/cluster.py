"""The CPU of each component of a deployment per chat message, in one run.

``python -m benchmarks.cluster --store-url postgresql+psycopg://... [chat options]`` starts one
``mqchat node`` and ``--workers`` ``mqchat worker`` processes on RabbitMQ, Redis and the given
PostgreSQL database (a config file of its own in a work folder), runs ``python -m benchmarks chat``
against the node, and reports, for every step, the CPU of the node, the workers, RabbitMQ's
``beam.smp``, the PostgreSQL backends of that database and Redis, in % of a core and in µs per chat
message. RabbitMQ and Redis serve the whole machine: their CPU over a quiet spell just before the
load (``--idle``) is printed too, to subtract. Every option it does not know goes to ``chat``, e.g.
``--users 2000 --pairs 100 --rate 200,500 --duration 20``.

Give it a RabbitMQ virtual host and a Redis database of its own (``--queue-url``, ``--locator-url``)
where other mqchat workers may run on the same RabbitMQ: a worker of another deployment on the same
``mqchat.commands`` queue takes this node's commands, and answers them from its own store.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.cli import main as bench_main
from benchmarks.procstat import ProcessSet, percent_between
from benchmarks.targets import free_port

__all__: list[str] = []

_RABBITMQ = r"beam\.smp.* -s rabbit "
_REDIS = r"^redis-server "


def _config(folder: Path, store_url: str, queue_url: str, locator_url: str) -> Path:
    config = folder / "cluster.toml"
    config.write_text(
        f'data_dir = "{folder}"\n'
        f'[store]\nurl = "{store_url}"\n'
        f'[workers]\nqueue_url = "{queue_url}"\n'
        f'[locator]\nurl = "{locator_url}"\n'
        "[limits]\ncommands_per_second = 100000\ncommands_burst = 100000\n"
        "[media]\nhttp_port = 0\n"
    )
    return config


def _start(config: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """An ``mqchat`` process, once it says it is running (its output goes to ``log``)."""
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "--config", str(config), *args], stdout=out, stderr=out
    )
    deadline = time.monotonic() + 60
    while b"running" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{' '.join(args)} did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    return process


def _idle(seconds: float, components: dict[str, ProcessSet]) -> dict[str, float]:
    """The components' CPU (% of a core) with no load of ours."""
    before = {name: c.cpu_by_pid() for name, c in components.items()}
    time.sleep(seconds)
    return {name: percent_between(before[name], c.cpu_by_pid(), seconds) for name, c in components.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--store-url", required=True, help="PostgreSQL (SQLAlchemy URL) of the deployment")
    parser.add_argument("--queue-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--locator-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--workers", type=int, default=1, help="mqchat worker processes")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of the shared services' idle CPU")
    args, chat = parser.parse_known_args(argv)
    database = urlsplit(args.store_url).path.lstrip("/")
    folder = Path(tempfile.mkdtemp(prefix="mqchat-cluster-"))
    config = _config(folder, args.store_url, args.queue_url, args.locator_url)
    port = free_port()
    processes = [
        _start(config, folder / "node.log", "node", "--port", str(port), "--no-ws", "--node-id", "bench")
    ]
    try:
        for i in range(args.workers):
            processes.append(_start(config, folder / f"worker{i}.log", "worker"))
        shared = {"rabbitmq": ProcessSet(_RABBITMQ), "redis": ProcessSet(_REDIS)}
        idle = _idle(args.idle, shared)
        print("idle before the load: " + ", ".join(f"{name} {pct:.0f}%" for name, pct in idle.items()))
        watches = {
            "node": rf"broker\.cli --config {config} node",
            "worker": rf"broker\.cli --config {config} worker",
            "rabbitmq": _RABBITMQ,
            "postgres": rf"^postgres: .* {database} ",
            "redis": _REDIS,
        }
        argv_chat = ["chat", "--port", str(port), "--mqchat", "--pid", str(processes[0].pid)]
        argv_chat += ["--store-url", args.store_url, *chat]
        for name, pattern in watches.items():
            argv_chat += ["--watch", f"{name}={pattern}"]
        return bench_main(argv_chat)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if os.environ.get("MQCHAT_BENCH_KEEP"):
            print(f"logs in {folder}")


if __name__ == "__main__":
    sys.exit(main())
