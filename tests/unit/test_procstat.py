"""The load generator's CPU figures: a broker's child processes (a node's commands process) count as
the broker's, and the generator's own workers do not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.procstat import ProcWatch

_BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(60)"


def test_a_process_cpu_includes_its_children_unless_excluded() -> None:
    child = subprocess.Popen([sys.executable, "-c", _BUSY])
    try:
        deadline = time.monotonic() + 30
        watch = ProcWatch(os.getpid(), children=True)
        own = ProcWatch(os.getpid())
        while watch.cpu().cpu - own.cpu().cpu < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watch.cpu().cpu - own.cpu().cpu >= 0.5  # the child's busy 0.6 s counts
        excluding = ProcWatch(os.getpid(), children=True, exclude=frozenset({child.pid}))
        assert excluding.cpu().cpu - own.cpu().cpu < 0.5
    finally:
        child.kill()
        child.wait()
