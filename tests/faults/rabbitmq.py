"""A RabbitMQ server of the fault suite's own, so that it can be stopped and started at will.

It is the machine's rabbitmq-server, run as a separate Erlang node: its own node name, data folder
(kept across restarts, as a real server keeps its disk), configuration, no plugins, and free ports
on the loopback interface only. The machine's own RabbitMQ (port 5672) is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from benchmarks.targets import free_port
from tests.cluster import _reachable

__all__ = ["PrivateRabbit", "rabbitmq_server"]

_PACKAGED = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
"""Debian's real start script; /usr/sbin/rabbitmq-server would switch to the rabbitmq user."""


def rabbitmq_server() -> str | None:
    """The rabbitmq-server start script of this machine, if there is one."""
    if _PACKAGED.is_file():
        return str(_PACKAGED)
    return shutil.which("rabbitmq-server")


class PrivateRabbit:
    """``start``, ``stop`` (clean, as a service stop does) and ``restart``; ``url`` for Dramatiq."""

    def __init__(self, root: Path) -> None:
        script = rabbitmq_server()
        assert script is not None, "rabbitmq-server is not installed"
        self._script = script
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq.conf").write_text("log.console = true\nlog.file = false\n")
        (root / "rabbitmq-env.conf").write_text("")
        node = f"mqchat-faults-{uuid.uuid4().hex[:8]}@localhost"
        self.env = {
            **os.environ,
            "HOME": str(root),  # its Erlang cookie lives here
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_PID_FILE": str(root / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self._process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def start(self, timeout: float = 90.0) -> None:
        assert self._process is None, "already running"
        log = (self.root / "server.log").open("ab")
        with log:
            self._process = subprocess.Popen(
                [self._script], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not _reachable(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"RabbitMQ did not start:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop it cleanly (SIGTERM to the Erlang VM: what a service stop does)."""
        process = self._process
        if process is None:
            return
        pid_file = self.root / "rabbit.pid"
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._process = None
        pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1

    def kill(self) -> None:
        """The last resort: the whole process group, at once."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
