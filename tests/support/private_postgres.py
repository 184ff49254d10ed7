"""A PostgreSQL cluster of a test's own, for faults that act on the server itself (a crash restart): initdb into
a temporary folder, on a free port, run as the `postgres` OS user when the tests run as root (PostgreSQL refuses
to run as root). The shared server on 5432 is never touched."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.support.receivers import free_port

BIN = Path(os.environ.get("JIFEN_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> str | None:
    """Why a private cluster cannot be made here, or None."""
    if not (BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {BIN} (set JIFEN_TEST_PG_BIN)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser to start PostgreSQL as another user"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no `postgres` OS user to run PostgreSQL as"
    return None


class Cluster:
    def __init__(self, root: Path):
        self.root, self.data, self.port = root, root / "data", free_port()
        self.log = root / "server.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/jifen"
        self.restarts: list[float] = []  # seconds each `restart` took until the server accepted connections

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*as_postgres, *args], check=check, capture_output=True, text=True, timeout=120)

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *args,
                         check=check)

    def init(self) -> None:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")
        # Its own socket folder and port; small, because the machine is shared.
        options = (f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   "-c max_connections=60 -c shared_buffers=32MB -c fsync=on")
        self._ctl("-o", options, "start")
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE jifen")

    def restart(self, mode: str) -> None:
        """`pg_ctl restart -m immediate` is a crash (no checkpoint: recovery from the WAL at start); `-m fast`
        rolls back what is in flight and shuts down cleanly."""
        began = time.monotonic()
        self._ctl("-m", mode, "restart")
        self.restarts.append(time.monotonic() - began)

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop", check=False)


@contextlib.contextmanager
def private_postgres() -> Iterator[Cluster]:
    """A running cluster with an empty database `jifen` (Cluster.url); stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="jifen-pg-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(root)
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
