"""A sampling profile of the broker process during a measured window (py-spy, when installed).

py-spy samples the node from outside (``--nonblocking``: the node is not paused; ``--gil``: only
the thread holding the GIL, i.e. the Python work of the node's one effective core), so the profile
shows where the node's CPU goes under the benchmark's load without changing its code. The summary
lists the busiest threads and the functions with the most samples, on their own (self) and with
what they call (total).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["Profiler", "summarize"]

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


class Profiler:
    def __init__(self, pid: int, out_dir: Path, *, step: int = 0, rate: int = 100) -> None:
        self.pid = pid
        self.step = step
        self.rate = rate
        self.output = out_dir / f"profile-{pid}.txt"
        self._proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None

    @staticmethod
    def binary() -> str | None:
        local = Path(sys.executable).with_name("py-spy")
        return str(local) if local.exists() else shutil.which("py-spy")

    def start(self, step: int, seconds: float) -> None:
        """Called when a step's measured window opens; profiles the chosen step only."""
        if step == self.step and self._proc is None:
            self._record(["--duration", str(max(1, int(seconds)))])

    def start_open(self) -> None:
        """Profile until ``stop`` (the connect phase)."""
        if self._proc is None:
            self._record([])

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # py-spy writes what it has and exits

    def _record(self, extra: list[str]) -> None:
        binary = self.binary()
        if binary is None:
            self.error = "py-spy is not installed (.venv/bin/pip install py-spy)"
            return
        argv = [binary, "record", "--pid", str(self.pid), "--subprocesses", *extra]
        argv += ["--rate", str(self.rate), "--format", "raw", "--threads", "--nonblocking", "--gil"]
        argv += ["--output", str(self.output)]
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self, top: int = 25) -> str:
        if self._proc is None:
            return self.error or "no profile was taken"
        try:
            _, err = self._proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return "py-spy did not finish"
        if not self.output.exists():
            return f"py-spy failed: {err.decode(errors='replace').strip()[-400:]}"
        return summarize(self.output.read_text(), top=top)


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['name']} ({path})"


def summarize(raw: str, *, top: int = 25) -> str:
    """Collapsed stacks (``frame;frame;... count``) -> threads, self and total time per function."""
    threads: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        threads[frames[0]] += count
        calls = [_short(f) for f in frames[1:]]
        if calls:
            own[calls[-1]] += count
        for name in set(calls):
            total[name] += count
    if not samples:
        return "the profile is empty"

    def pct(n: int) -> str:
        return f"{100 * n / samples:5.1f}%"

    lines = [f"{samples} samples of busy threads"]
    lines += ["threads:"] + [f"  {pct(n)}  {name}" for name, n in threads.most_common(8)]
    lines += ["self (the function itself):"] + [f"  {pct(n)}  {name}" for name, n in own.most_common(top)]
    lines += ["total (with what it calls):"] + [f"  {pct(n)}  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)
