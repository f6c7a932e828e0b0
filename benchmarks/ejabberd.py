"""The chat peer: ejabberd (Debian's package), XMPP, archiving every message on PostgreSQL.

Set up as a WhatsApp-like XMPP service would be, and as close to mqchat's guarantees as XMPP goes:
``mod_mam`` archives every message for both parties on the same PostgreSQL server mqchat is
measured on (a fresh database, ejabberd's own schema), ``mod_offline`` keeps messages for users
who are away, ``mod_stream_mgmt`` acknowledges what the server took (XEP-0198), and recipients
answer delivery receipts (XEP-0184). Users authenticate against SQL with plain passwords (the
benchmark's one token), so provisioning thousands of users is one COPY instead of a command each.
No shaper and no stanza queue limit: the benchmark measures capacity, as it lifts mqchat's rate
limits.

ejabberd runs as its own system user: started by root, the benchmark runs ``ejabberdctl`` as that
user itself (ejabberdctl's own switch, through ``su``, would cap it at 1,024 open files), in a
folder of its own that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from benchmarks.databases import fresh_database, plain_url
from benchmarks.plan import Target
from benchmarks.targets import Launched, TargetError, _wait_ready, free_port

__all__ = ["DEFAULT_DATABASE", "MISSING", "installed", "launch_ejabberd"]

SCHEMA = Path("/usr/share/ejabberd/sql/pg.sql")
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"
DOMAIN = "localhost"
MISSING = "ejabberd is not installed: apt-get install ejabberd erlang-p1-pgsql (Debian's packages)"


def _ejabberdctl() -> str:
    return shutil.which("ejabberdctl") or "/usr/sbin/ejabberdctl"


PGSQL_DRIVER = "/usr/lib/erlang/lib/p1_pgsql-*"
"""Where Debian's erlang-p1-pgsql puts ejabberd's PostgreSQL driver: only suggested by the ejabberd
package, and without it ejabberd starts, then refuses every login once it asks the database."""


def installed() -> bool:
    """Debian's ejabberd, its PostgreSQL schema and driver are on this machine."""
    driver = glob.glob(PGSQL_DRIVER)
    return Path(_ejabberdctl()).exists() and SCHEMA.exists() and bool(driver)


def _config(port: int, url: str) -> str:
    from sqlalchemy.engine import make_url

    db = make_url(url)
    return f"""hosts:
  - {DOMAIN}
loglevel: warning
log_rotate_count: 0
listen:
  - port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    backlog: 4096
    max_stanza_size: 262144
    shaper: none
    access: all
    starttls_required: false
max_fsm_queue: 1000000
auth_method: sql
auth_password_format: plain
sql_type: pgsql
sql_server: "{db.host or "127.0.0.1"}"
sql_port: {db.port or 5432}
sql_database: "{db.database}"
sql_username: "{db.username or "postgres"}"
sql_password: "{db.password or ""}"
sql_pool_size: 10
default_db: sql
new_sql_schema: false
shaper_rules:
  c2s_shaper: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
modules:
  mod_mam:
    db_type: sql
    default: always
    assume_mam_usage: true
  mod_offline:
    db_type: sql
  mod_roster:
    db_type: sql
  mod_stream_mgmt: {{}}
  mod_disco: {{}}
  mod_ping: {{}}
"""


def _provision(url: str, users: Iterable[str], password: str) -> None:
    import psycopg

    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute(SCHEMA.read_text().encode())  # a script, without parameters: one simple query
        with conn.cursor().copy("COPY users (username, password) FROM STDIN") as copy:
            for user in users:
                copy.write_row((user, password))


def _give_to_ejabberd(folder: Path) -> None:
    """ejabberdctl runs the server as the ``ejabberd`` user: it must own its folder."""
    if os.geteuid() != 0:
        return
    try:
        owner = pwd.getpwnam("ejabberd")
    except KeyError:
        return
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, owner.pw_uid, owner.pw_gid)


class _Ejabberd(Launched):
    def stop(self, timeout: float = 60.0) -> None:
        """ejabberdctl's ``foreground`` is a shell and the Erlang VM (with ``su`` between them when
        it was started by root): stop every process under it, not only its process group."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            tree = []
        for member in tree:
            with contextlib.suppress(psutil.Error):
                member.terminate()
        _, alive = psutil.wait_procs(tree, timeout=timeout)
        for member in alive:
            with contextlib.suppress(psutil.Error):
                member.kill()
        proc.wait(10)


def _as_ejabberd() -> dict[str, Any]:
    """Run ejabberdctl as the ``ejabberd`` user from here when this is root: ejabberdctl would
    otherwise switch with ``su``, whose login limit of 1,024 open files refuses users past a
    thousand (this process's limit, raised for the load, is inherited instead)."""
    if os.geteuid() != 0:
        return {}
    try:
        owner = pwd.getpwnam("ejabberd")
    except KeyError:
        return {}
    env = {**os.environ, "HOME": owner.pw_dir, "USER": "ejabberd", "LOGNAME": "ejabberd"}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": [], "env": env}


@contextlib.contextmanager
def launch_ejabberd(workdir: Path, users: Iterable[str], database: str, password: str) -> Iterator[Launched]:
    """ejabberd on a free port with ``users`` (each with ``password``) in a fresh database."""
    if not installed():
        raise TargetError(MISSING)
    ctl = _ejabberdctl()
    # Its own folder under the system's temporary directory, not under ``workdir``: the server runs
    # as another user, who may not pass through the folders above ``workdir`` (pytest's are 0700).
    with tempfile.TemporaryDirectory(prefix="mqchat-bench-ejabberd-") as home:
        folder = Path(home)
        for sub in ("spool", "logs"):
            (folder / sub).mkdir()
        with _started(folder, workdir, users, database, password, ctl) as launched:
            yield launched


@contextlib.contextmanager
def _started(
    folder: Path, workdir: Path, users: Iterable[str], database: str, password: str, ctl: str
) -> Iterator[Launched]:
    with fresh_database(database, "bench_ejabberd") as url:
        _provision(url, users, password)
        port = free_port()
        (folder / "ejabberd.yml").write_text(_config(port, url))
        (folder / "ejabberdctl.cfg").write_text(
            'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\n'
            f"EJABBERD_CONFIG_PATH={folder / 'ejabberd.yml'}\n"
            f"EJABBERD_PID_PATH={folder / 'ejabberd.pid'}\n"
        )
        _give_to_ejabberd(folder)
        log = workdir / "ejabberd.log"
        argv = [ctl, "--ctl-config", str(folder / "ejabberdctl.cfg"), "--spool", str(folder / "spool")]
        argv += ["--logs", str(folder / "logs"), "--node", f"bench{port}@localhost", "foreground"]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=folder,
                **_as_ejabberd(),
            )
        launched = _Ejabberd(Target(name="ejabberd", host="127.0.0.1", port=port), proc, log)
        try:
            _wait_ready(proc, "127.0.0.1", port, log, 90)
            from sqlalchemy.engine import make_url

            launched.target = Target(
                name="ejabberd",
                host="127.0.0.1",
                port=port,
                pid=proc.pid,
                token=password,
                protocol="xmpp",
                domain=DOMAIN,
                database=make_url(url).database,
            )
            yield launched
        finally:
            launched.stop(30.0)
