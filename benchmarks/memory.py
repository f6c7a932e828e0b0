"""What an idle connected user costs the node's memory, and where it goes:
``python -m benchmarks.memory --users 2000``.

Starts a node in this process (SQLite in a temporary folder, the benchmark's settings), traces its
allocations (``tracemalloc``), connects ``--users`` users from a child process (each with the
generator's connection, subscribed to its inbox as the chat benchmark's users are), and prints the
allocations the connections left behind, grouped by the line that made them and by the first
frame in mqchat's or amqtt's code, per connection. The RSS growth is printed too; it is what the
chat benchmark's "per connection" figure measures (RSS also holds the allocator's slack and the
kernel's socket buffers are not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from benchmarks.limits import raise_open_files, source_addresses
from benchmarks.targets import BENCH_NODE_SETTINGS, provision_users

__all__: list[str] = []

_OURS = ("/broker/", "/amqtt/", "/workers/", "/config/")


def _where(trace: tracemalloc.Traceback) -> str:
    """The innermost frame in the project's or amqtt's code (else the innermost frame)."""
    for frame in reversed(trace):  # tracemalloc orders a traceback oldest frame first
        if any(part in frame.filename for part in _OURS):
            return f"{_short(frame.filename)}:{frame.lineno}"
    return f"{_short(trace[-1].filename)}:{trace[-1].lineno}"


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/lib/python3", "/scale/", "/work/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


async def _profile(users: int, top: int, frames: int) -> None:
    from broker.node import Node
    from config.settings import Settings

    with tempfile.TemporaryDirectory(prefix="mqchat-memory-") as tmp:
        data = Path(tmp)
        names = [f"m{n}" for n in range(users)]
        token = provision_users(f"sqlite:///{data / 'mqchat.db'}", names)
        overrides: dict[str, object] = {
            "broker.host": "127.0.0.1",
            "broker.mqtt_port": 0,
            "broker.ws_port": None,
            "media.http_port": 0,
            **BENCH_NODE_SETTINGS,
        }
        settings = Settings(data_dir=data).with_overrides(**overrides)
        async with Node(settings) as node:
            assert node.broker is not None
            port = node.broker.bound_port("default")
            proc = psutil.Process()
            await asyncio.sleep(1.0)
            gc.collect()
            tracemalloc.start(frames)
            before = tracemalloc.take_snapshot()
            rss_before = proc.memory_info().rss
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.memory",
                    "--connect",
                    str(port),
                    "--token",
                    token,
                    "--users",
                    str(users),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            assert child.stdin is not None
            started = time.monotonic()
            line = await asyncio.to_thread(child.stdout.readline)
            seconds = time.monotonic() - started
            await asyncio.sleep(1.0)
            gc.collect()
            after = tracemalloc.take_snapshot()
            rss_after = proc.memory_info().rss
            tracemalloc.stop()
            child.stdin.close()
            await asyncio.to_thread(child.wait)
        print(f"{line.strip()} in {seconds:.2f} s")
        print(
            f"RSS {rss_before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB: "
            f"{(rss_after - rss_before) / users / 1024:.2f} KiB per connection (this process)"
        )
        _report(before, after, users, top)


def _report(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, users: int, top: int) -> None:
    stats = after.compare_to(before, "traceback")
    total = sum(s.size_diff for s in stats)
    print(f"traced: {total / users / 1024:.2f} KiB per connection ({total / 2**20:.1f} MiB)")
    by_place: dict[str, list[int]] = {}
    for stat in stats:
        place = _where(stat.traceback)
        entry = by_place.setdefault(place, [0, 0])
        entry[0] += stat.size_diff
        entry[1] += stat.count_diff
    print(f"\nby the first frame in mqchat or amqtt (bytes and blocks per connection), top {top}:")
    for place, (size, count) in sorted(by_place.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"{size / users:9.1f} B {count / users:6.2f}  {place}")
    print(f"\nby the allocating line, top {top}:")
    for stat in sorted(after.compare_to(before, "lineno"), key=lambda s: -s.size_diff)[:top]:
        frame = stat.traceback[0]
        where = f"{_short(frame.filename)}:{frame.lineno}"
        print(f"{stat.size_diff / users:9.1f} B {stat.count_diff / users:6.2f}  {where}")


async def _connect(port: int, token: str, users: int) -> None:
    from benchmarks.mqtt import Connection

    addresses = source_addresses(users)
    gate = asyncio.Semaphore(200)
    conns: list[Connection] = []

    async def one(n: int) -> None:
        async with gate:
            user = f"m{n}"
            conn = Connection(f"{user}/bench", username=user, password=token)
            await conn.connect("127.0.0.1", port, local_host=addresses[n % len(addresses)])
            await conn.subscribe(f"chat/{user}/in")
            conns.append(conn)

    await asyncio.gather(*(one(n) for n in range(users)))
    print(f"{len(conns)} connected and subscribed", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the profiler is done
    await asyncio.gather(*(c.close() for c in conns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=30, help="traceback depth kept by tracemalloc")
    parser.add_argument("--connect", type=int, help=argparse.SUPPRESS)  # the child: the port
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_open_files()
    if args.connect:
        asyncio.run(_connect(args.connect, args.token, args.users))
        os._exit(0)
    from broker.cli import loop_factory

    with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:  # the node's default loop
        runner.run(_profile(args.users, args.top, args.frames))


if __name__ == "__main__":
    main()
