"""What tens of thousands of loopback connections need from the machine: open files and source ports.

- **Open files.** Every connection is a file descriptor in the generator and another in the
  broker. ``raise_open_files`` lifts the soft limit to the hard one (allowed to anyone), and the hard
  one too where the process may (root, or ``CAP_SYS_RESOURCE``), up to the kernel's ``nr_open``.
  Processes started afterwards (the broker under test, the generator's workers) inherit it.
  ``OpenFilesTooLow`` says what is missing and how to raise it when it cannot be done here.
- **Source ports.** A TCP connection from 127.0.0.1 to one port of 127.0.0.1 takes one of the
  kernel's ephemeral ports (``net.ipv4.ip_local_port_range``, about 28,000 by default), so one
  source address cannot open 50,000. Linux routes all of 127.0.0.0/8 to the loopback interface,
  so binding 127.0.0.2, 127.0.0.3... as source addresses needs no setup: ``source_addresses`` says
  which to use, each for at most ``PER_ADDRESS`` connections.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
from pathlib import Path

__all__ = ["PER_ADDRESS", "OpenFilesTooLow", "open_files_needed", "raise_open_files", "source_addresses"]

PER_ADDRESS = 20_000
"""Connections per loopback source address: well inside the default ephemeral range, with room for
the ports a previous run's connections still hold in TIME_WAIT."""

_SPARE_FILES = 1_000
"""Descriptors beyond one per connection: the store, logs, pipes, the listener, the event loop."""


class OpenFilesTooLow(Exception):
    """The open-file limit cannot be raised as far as the connections asked for need."""


def _read_int(path: str, default: int) -> int:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def open_files_needed(connections: int) -> int:
    return connections + _SPARE_FILES


def raise_open_files(needed: int = 0) -> int:
    """Raise this process's open-file limit (soft to hard; the hard one too up to ``needed`` when
    permitted) and return the soft limit now in force. ``OpenFilesTooLow`` when it stays below
    ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(needed, soft)
    if hard != resource.RLIM_INFINITY and want > hard:
        ceiling = _read_int("/proc/sys/fs/nr_open", 1_048_576)
        with contextlib.suppress(ValueError, OSError):  # not root: the hard limit is the limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, ceiling), min(want, ceiling)))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if needed and soft < needed:
        who = (
            "root without CAP_SYS_RESOURCE (a container's root, say)"
            if os.geteuid() == 0
            else "a user without CAP_SYS_RESOURCE"
        )
        raise OpenFilesTooLow(
            f"{needed} open files are needed (one per connection, in the generator and again in the "
            f"broker), and the hard limit is {hard}, which this process, {who}, may not raise. "
            f"Raise it before running: `ulimit -Hn {needed}` as a privileged root in the shell that "
            "starts the benchmark, `nofile` in /etc/security/limits.conf (then log in again), "
            f"LimitNOFILE={needed} for a systemd unit, or `docker run --ulimit nofile={needed}:{needed}` "
            "for a container."
        )
    return soft


def source_addresses(connections: int) -> list[str]:
    """The loopback source addresses to spread ``connections`` over (127.0.0.1 first)."""
    count = max(1, math.ceil(connections / PER_ADDRESS))
    if count > 254:
        raise ValueError(f"{connections} connections need more than 254 loopback source addresses")
    return [f"127.0.0.{n}" for n in range(1, count + 1)]
