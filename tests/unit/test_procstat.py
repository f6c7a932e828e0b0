"""The load generator's CPU and memory figures: a broker's child processes (a node's commands
process) count as the broker's, and the generator's own workers do not."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks.procstat import ProcessSet, ProcWatch, percent_between

_BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(60)"


def _reaching(read: Callable[[], float], floor: float, timeout: float = 30.0) -> float:
    """The first value of ``read`` at or above ``floor`` (or its last, after ``timeout``). The value
    that ends the wait is the one returned: another child of the test process that ends between the
    two reads inside ``read`` takes its share out of the second, so a fresh read can fall short."""
    deadline = time.monotonic() + timeout
    seen = read()
    while seen < floor and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = read()
    return seen


def test_a_process_cpu_includes_its_children_unless_excluded() -> None:
    child = subprocess.Popen([sys.executable, "-c", _BUSY])
    try:
        counting = ProcWatch(os.getpid(), children=True)
        excluding = ProcWatch(os.getpid(), children=True, exclude=frozenset({child.pid}))

        def difference() -> float:
            # excluding first: other children of the test process (a browser left by the end-to-end
            # tests, say) keep running, and may only add to the figure read second
            without = excluding.cpu().cpu
            return counting.cpu().cpu - without

        # the busy child's 0.6 s: counted with children, not when excluded
        assert _reaching(difference, 0.5) >= 0.5
        own = ProcWatch(os.getpid()).cpu().cpu
        assert own <= excluding.cpu().cpu
    finally:
        child.kill()
        child.wait()


_LARGE = (  # 96 MiB with every page written, so resident
    "import time\nheld = bytearray(96 << 20)\nheld[::4096] = b'x' * ((96 << 20) // 4096)\n"
    "print('ready', flush=True)\ntime.sleep(60)"
)


def test_a_process_memory_includes_its_children_unless_excluded() -> None:
    with subprocess.Popen([sys.executable, "-c", _LARGE], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            excluding = ProcWatch(os.getpid(), children=True, exclude=frozenset({child.pid}))
            counting = ProcWatch(os.getpid(), children=True)

            def difference() -> float:
                without = excluding.rss()
                return counting.rss() - without

            # the child's 96 MiB: counted with children, not when excluded
            assert _reaching(difference, 90 * 1024 * 1024) >= 90 * 1024 * 1024
            assert excluding.rss() > 0
        finally:
            child.kill()


def test_a_process_set_finds_its_processes_by_command_line_and_counts_one_started_in_between() -> None:
    # Given a set watching processes by a marker in their command line, sampled before one starts
    marker = f"procset-marker-{os.getpid()}-{time.monotonic_ns()}"
    watched = ProcessSet(re.escape(marker))
    before = watched.cpu_by_pid()
    child = subprocess.Popen([sys.executable, "-c", _BUSY, marker])
    try:
        # When it has used 0.6 s of CPU
        after = _sampled_until(watched, child.pid, 0.55)

        # Then the set found it and only it, and counts all it used since it started
        assert before == {} and list(after) == [child.pid]
        assert percent_between(before, after, 1.0) >= 55.0
        assert percent_between(after, after, 1.0) == 0.0
    finally:
        child.kill()
        child.wait()


def _sampled_until(watched: ProcessSet, pid: int, cpu: float, timeout: float = 30.0) -> dict[int, float]:
    deadline = time.monotonic() + timeout
    seen = watched.cpu_by_pid()
    while seen.get(pid, 0.0) < cpu and time.monotonic() < deadline:
        time.sleep(0.05)
        seen = watched.cpu_by_pid()
    return seen
