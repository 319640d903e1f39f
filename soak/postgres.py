"""A throwaway PostgreSQL cluster for one soak run.

``initdb`` into a temporary directory, a free port on 127.0.0.1, the unix socket inside that
directory and trust authentication: the machine's own server (port 5432, /var/run/postgresql)
is never touched. initdb and the server refuse to run as root, so under root both run as an
unprivileged account that owns the directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

import psycopg

DATABASE = "highseas"
# Accounts that may run the server when we are root, in order of preference.
_UNPRIVILEGED = ("postgres", "nobody")
_PG_CTL_WAIT_SECONDS = 60


class ClusterError(RuntimeError):
    """initdb or pg_ctl failed; the message carries their output."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgresql.log"
        self.port = free_port()
        self._owner = _server_account()
        self._command_prefix: list[str] = []
        if self._owner is not None:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise ClusterError("running as root and runuser(1) is missing")
            self._command_prefix = [runuser, "-u", self._owner.pw_name, "--"]
            os.chown(root, self._owner.pw_uid, self._owner.pw_gid)

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create(self) -> None:
        """initdb, start, and create the service's database."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')

    def start(self) -> None:
        self._pg_ctl("start", "-l", str(self.log), "-o", self._server_options())

    def restart(self, mode: str) -> None:
        """Stop (``fast`` or ``immediate``: a crash, recovered from the WAL) and start again."""
        self._pg_ctl("restart", "-m", mode, "-l", str(self.log), "-o", self._server_options())

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate")

    def _server_options(self) -> str:
        settings = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            # A restart kills the server, not the machine: the OS keeps what was written, so
            # fsync buys nothing here and costs the shared machine's disk.
            "fsync": "off",
            "full_page_writes": "off",
            # The recount compares when a customer's row committed with when a batch was
            # accepted (soak/verify.py).
            "track_commit_timestamp": "on",
            "max_connections": "300",
        }
        return " ".join(f"-c {name}={value}" for name, value in settings.items())

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", str(_PG_CTL_WAIT_SECONDS), *args)

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._command_prefix, program, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"{program} {args[0]} failed: {done.stdout}{done.stderr}")


def _server_account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in _UNPRIVILEGED:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterError("running as root and no unprivileged account to run PostgreSQL as")
