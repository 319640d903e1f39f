"""What the benchmarks share: the machine they report, scratch PostgreSQL databases, ports."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_pg_database(base_url: str, bench: str) -> tuple[str, str]:
    """A fresh database for ``bench`` on the server of ``base_url``: (its URL, its name)."""
    name = f"highseas_bench_{bench}_{os.getpid()}"
    with psycopg.connect(libpq(base_url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(base_url).set(database=name).render_as_string(hide_password=False), name


def drop_pg_database(base_url: str, name: str) -> None:
    with psycopg.connect(libpq(base_url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine() -> str:
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} CPUs{memory}, Python {platform.python_version()}, {platform.system()}"
