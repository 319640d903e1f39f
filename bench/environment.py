"""What the benchmarks share: the machine they report, scratch PostgreSQL databases, ports and
the server processes they start."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


class Process:
    """A subprocess given a free port (for a server: ``{port}`` in its command), its output in
    a log file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        self._handle = log.open("w")
        self.process = subprocess.Popen(
            [part.replace("{port}", str(self.port)) for part in command],
            env={**env, "HIGHSEAS_PUBLIC_URL": f"http://127.0.0.1:{self.port}"},
            stdout=self._handle,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, path: str, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.log.stem} exited early; see {self.log}")
                try:
                    response = await client.get(f"http://127.0.0.1:{self.port}{path}")
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.log.stem} not ready in {within:.0f} s; see {self.log}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()  # a paused process would not see the SIGINT
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._handle.close()


def agent_token(env: dict[str, str]) -> str:
    """A new agent's token, through the CLI as an operator gets one."""
    created = subprocess.run(
        [sys.executable, "-m", "highseas", "agent", "create", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token: str = json.loads(created.stdout.strip().splitlines()[-1])["token"]
    return token
