"""The load generator's CPU and memory figures: a broker's child processes (a node's commands
process) count as the broker's, and the generator's own workers do not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks.procstat import ProcWatch

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
