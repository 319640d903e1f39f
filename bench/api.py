"""customer_to_task accept throughput and latency under load, against a bare FastAPI endpoint.

    .venv/bin/python bench/api.py [--database sqlite|postgresql] [--both] [--seconds 10]
                                  [--concurrency 16] [--rate 200] [--rounds 3]

Starts, as subprocesses, the real service and the bare endpoint (``bench/bare_app.py``: one
FastAPI route of the same path shape that returns the same envelope, no middleware,
dependency or database; served by ``uvicorn.run`` with the options ``highseas serve`` uses).
The API is one process, like the bare endpoint. The jobs the accepts queue run where a
deployment would run them (``--worker``): on SQLite in ``highseas serve``'s in-process worker
(the default, and with one writer the sensible deployment: a second process would wait for
the write lock in SQLite's busy handler); on PostgreSQL in one ``highseas worker`` process
beside ``highseas serve --no-worker`` (the scale-out deployment of docs/architecture.md, in
which API processes do no job work). This process is the load generator and the callback
receiver, nothing else: it creates the user, a pool of
``--pool-rows`` customers (``highseas pool import``, not measured), the tasks and the callback
URL, then in each of ``--rounds`` rounds measures, one after the other:

- closed loop: ``--concurrency`` clients, each on its own keep-alive connection, send the
  next request as soon as the previous one is answered, for ``--seconds`` (after 1 s of
  warm-up): the bare endpoint, the bare endpoint plus one INSERT and commit on the same
  database (context), and ``GET …/customer_to_task/{task_id}`` with a one-phone filter (each
  import job is one chunk and matches one customer);
- open loop: ``--rate`` requests/s for ``--seconds``, each sent at its scheduled time whether
  or not earlier ones were answered (a new connection when none is free), its latency
  counted from that scheduled time, so a server that falls behind shows it in the latency
  instead of slowing the sender down (no coordinated omission): the bare endpoint, then
  customer_to_task; with a separate worker, customer_to_task again with the worker stopped
  (SIGSTOP) for the load, so the API process has the machine to itself as on an API host of
  the scale-out deployment (the worker drains the backlog after); then customer_to_task at
  half the rate it reached in the closed loop (the latency of a load this server can carry).

After each customer_to_task phase the bench waits until every accepted ``unique_id``'s
callback arrived (the worker drained its backlog), so no phase runs against the previous
one's jobs. It prints every round, then the medians: the closed-loop ratio accept / bare
(goal ≥ 50%) and the open-loop p99 accept latency (goal < 50 ms at 200 requests/s), whether
the server kept up (every request answered, the last answer within 1 s of the last send) and
how far the worker got. CPU seconds of the serve process, the bare process and this one, and
how busy the machine's CPUs were, say who competed for the cores.

The client is a raw asyncio HTTP/1.1 client (pre-built requests, Content-Length responses):
httpx's own CPU per request would compete with the servers on a 2-core machine (see
bench/README.md). SQLite uses a temp file; PostgreSQL a scratch database created (and
dropped) on the server of ``--postgres-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from environment import (
    Process,
    agent_token,
    create_pg_database,
    drop_pg_database,
    libpq,
    loadavg,
    machine,
    verdict,
)

from highseas.migrate import upgrade

BLOCKS = ["130", "133", "135", "138", "150", "153", "186", "189", "192"]
TASKS = 20
WARM_UP = 1.0
KEPT_UP_WITHIN = 1.0  # seconds from the last send to the last answer
DRAIN_WAIT = 900.0
DEFAULT_PG = os.environ.get(
    "HIGHSEAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BENCH_DIR = Path(__file__).resolve().parent


def phone_of(i: int) -> str:
    return f"{BLOCKS[i % len(BLOCKS)]}{(i * 7_919_113 + 12_345) % 100_000_000:08d}"


# --- a raw HTTP/1.1 client and the callback receiver ----------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError(f"response without Content-Length: {head!r}")
        end = lowered.index(b"\r\n", at + 2)
        body = await self.reader.readexactly(int(lowered[at + 17 : end]))
        return status, body

    def close(self) -> None:
        self.writer.close()


def build_request(port: int, path: str, body: bytes, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Receiver:
    """Callbacks, answered 200 at once, on this process's event loop (asyncio streams)."""

    def __init__(self) -> None:
        self.arrived: dict[str, str] = {}  # unique_id → status
        self.changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lowered = head.lower()
                at = lowered.find(b"\r\ncontent-length:")
                end = lowered.index(b"\r\n", at + 2)
                body = await reader.readexactly(int(lowered[at + 17 : end]))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                message = json.loads(body)
                self.arrived.setdefault(message["unique_id"], message["status"])
                self.changed.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            self._writers.remove(writer)

    async def drained(self, ids: Sequence[str]) -> float:
        """Seconds until every id in ``ids`` has its callback (at most DRAIN_WAIT)."""
        started = time.perf_counter()
        missing = [i for i in ids if i not in self.arrived]
        try:
            async with asyncio.timeout(DRAIN_WAIT):
                while missing:
                    self.changed.clear()
                    await self.changed.wait()
                    missing = [i for i in missing if i not in self.arrived]
        except TimeoutError:
            raise TimeoutError(
                f"{len(missing)} callbacks missing after {DRAIN_WAIT:.0f} s"
            ) from None
        return time.perf_counter() - started

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            # Let open keep-alive handlers see the end of their stream and return.
            for writer in self._writers:
                writer.close()
            await asyncio.sleep(0.1)


# --- the processes -----------------------------------------------------------------------------


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Cpu:
    """CPU used during a phase: seconds per process, and the machine's busy share."""

    serve: float
    worker: float | None
    bare: float
    bench: float
    machine_busy: float


class CpuMeter:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    def _seconds(self) -> tuple[float, float, float, float, tuple[int, int]]:
        worker = self.setup.worker
        return (
            self.setup.serve.cpu_seconds(),
            worker.cpu_seconds() if worker is not None else 0.0,
            self.setup.bare.cpu_seconds(),
            time.process_time(),
            machine_ticks(),
        )

    def start(self) -> tuple[float, float, float, float, tuple[int, int]]:
        return self._seconds()

    def since(self, mark: tuple[float, float, float, float, tuple[int, int]]) -> Cpu:
        now = self._seconds()
        busy, total = now[4][0] - mark[4][0], now[4][1] - mark[4][1]
        return Cpu(
            serve=now[0] - mark[0],
            worker=now[1] - mark[1] if self.setup.worker is not None else None,
            bare=now[2] - mark[2],
            bench=now[3] - mark[3],
            machine_busy=busy / max(1, total),
        )


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Load:
    """One phase's answers: latencies (ms) in the window, the accepted unique_ids."""

    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    sent_at_s: list[float] = field(default_factory=list)  # open loop: each answer's send time
    unique_ids: list[str] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    sent: int = 0
    connections: int = 0
    target_rate: float = 0.0
    send_lag_ms: list[float] = field(default_factory=list)
    last_answer_after_last_send: float = 0.0
    cpu: Cpu | None = None
    callbacks_in_window: int = 0
    drain_seconds: float = 0.0
    # PostgreSQL during the phase: checkpoints started, buffers written by checkpoints
    checkpoints: tuple[int, int] | None = None

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def note(self, status: int, body: bytes) -> None:
        if status == 200:
            self.unique_ids.append(json.loads(body)["data"]["unique_id"])
            return
        self.errors += 1
        self.first_error = self.first_error or f"{status} {body[:200]!r}"


async def closed_loop(
    port: int, requests: Sequence[bytes], concurrency: int, seconds: float
) -> Load:
    """``concurrency`` clients back to back; answers in the window after WARM_UP count."""
    connections = [await Connection.open(port) for _ in range(concurrency)]
    load = Load(seconds=seconds, connections=concurrency)
    started = time.perf_counter()
    window = (started + WARM_UP, started + WARM_UP + seconds)

    async def client(connection: Connection, k: int) -> None:
        i = k
        while (sent_at := time.perf_counter()) < window[1]:
            status, body = await connection.send(requests[i % len(requests)])
            done = time.perf_counter()
            load.note(status, body)
            if window[0] <= sent_at and done <= window[1] and status == 200:
                load.latencies_ms.append((done - sent_at) * 1000)
            i += concurrency

    try:
        await asyncio.gather(*(client(c, k) for k, c in enumerate(connections)))
    finally:
        for connection in connections:
            connection.close()
    load.sent = len(load.unique_ids) + load.errors
    return load


async def open_loop(port: int, requests: Sequence[bytes], rate: float, seconds: float) -> Load:
    """``rate`` requests/s on schedule; latency from the scheduled send time."""
    idle = [await Connection.open(port) for _ in range(8)]
    every: list[Connection] = list(idle)
    load = Load(seconds=seconds, target_rate=rate)
    last_answer = 0.0

    async def one(request: bytes, scheduled: float) -> None:
        nonlocal last_answer
        if idle:
            connection = idle.pop()
            try:
                status, body = await connection.send(request)
            except (asyncio.IncompleteReadError, ConnectionError):
                # Closed by the server while idle (uvicorn's 5-s keep-alive timeout): as
                # any HTTP client does, send again on a new connection.
                connection.close()
                connection = await Connection.open(port)
                every.append(connection)
                status, body = await connection.send(request)
        else:
            connection = await Connection.open(port)
            every.append(connection)
            status, body = await connection.send(request)
        done = time.perf_counter()
        idle.append(connection)
        load.note(status, body)
        if status == 200:
            load.latencies_ms.append((done - scheduled) * 1000)
            load.sent_at_s.append(scheduled - start)
        last_answer = max(last_answer, done)

    count = round(rate * seconds)
    start = time.perf_counter() + 0.05
    pending = []
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        load.send_lag_ms.append((time.perf_counter() - scheduled) * 1000)
        pending.append(asyncio.create_task(one(requests[i % len(requests)], scheduled)))
    last_send = start + (count - 1) / rate
    try:
        await asyncio.gather(*pending)
    finally:
        for connection in every:
            connection.close()
    load.sent = count
    load.connections = len(every)
    load.last_answer_after_last_send = last_answer - last_send
    return load


# --- one run -------------------------------------------------------------------------------


@dataclass
class Round:
    closed: dict[str, Load]
    open: dict[str, Load]


@dataclass
class Setup:
    serve: Process
    worker: Process | None
    bare: Process
    receiver: Receiver
    pg_url: str | None = None
    accept: list[bytes] = field(default_factory=list)
    bare_requests: list[bytes] = field(default_factory=list)
    insert_requests: list[bytes] = field(default_factory=list)


def checkpointer(url: str) -> tuple[int, int]:
    """Checkpoints the server has started (timed or requested), and the buffers checkpoints
    have written, since its statistics were reset."""
    with psycopg.connect(libpq(url)) as connection:
        query = (
            "SELECT num_timed + num_requested, buffers_written FROM pg_stat_checkpointer"
            if connection.info.server_version >= 170000
            else "SELECT checkpoints_timed + checkpoints_req, buffers_checkpoint"
            " FROM pg_stat_bgwriter"
        )
        row = connection.execute(query).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def pg_version(url: str) -> str:
    with psycopg.connect(libpq(url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {str(row[0]).split()[0] if row else '?'}"


async def run(kind: str, args: argparse.Namespace) -> tuple[str, list[Round]]:
    workdir = Path(tempfile.mkdtemp(prefix="highseas-bench-api-"))
    pg_name = None
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        version = f"SQLite {sqlite3.sqlite_version}"
    else:
        url, pg_name = create_pg_database(args.postgres_url, "api")
        version = pg_version(url)
    print(
        f"highseas api bench, {version}: closed loop {args.concurrency} clients × "
        f"{args.seconds:g} s, open loop {args.rate:g} req/s × {args.seconds:g} s, "
        f"{args.rounds} rounds; pool {args.pool_rows:,} customers, one-phone filter "
        f"(load average before: {loadavg()})"
    )
    deployment = (
        "`highseas serve --no-worker` and one `highseas worker`"
        if args.worker == "separate"
        else "`highseas serve` (API + in-process worker)"
    )
    print(
        f"  servers: {deployment}; bench/bare_app.py, one process; the bench process is the "
        "load generator and callback receiver"
    )
    cleanup: list[Callable[[], Any]] = []
    try:
        await asyncio.to_thread(upgrade, url)
        env = {
            **os.environ,
            "HIGHSEAS_DATABASE_URL": url,
            "HIGHSEAS_DATA_DIR": str(workdir / "data"),
            "HIGHSEAS_CALLBACK_ALLOW_PRIVATE": "true",
        }
        receiver = Receiver()
        await receiver.start()
        cleanup.append(receiver.close)
        separate = args.worker == "separate"
        serve = Process(
            [sys.executable, "-m", "highseas", "serve", "--port", "{port}"]
            + (["--no-worker"] if separate else []),
            env,
            workdir / "serve.log",
        )
        cleanup.append(serve.stop)
        worker = None
        if separate:
            command = [sys.executable, "-m", "highseas", "worker"]
            worker = Process(command, env, workdir / "worker.log")
            cleanup.append(worker.stop)
        bare = Process(
            [
                sys.executable,
                str(BENCH_DIR / "bare_app.py"),
                "--port",
                "{port}",
                "--database-url",
                url,
            ],
            env,
            workdir / "bare.log",
        )
        cleanup.append(bare.stop)
        await asyncio.gather(
            serve.ready("/readyz"), bare.ready("/agent-api/user/u/customer_to_task/t")
        )
        setup = Setup(serve, worker, bare, receiver, None if kind == "sqlite" else url)
        await prepare(setup, workdir, env, args)
        rounds = []
        for number in range(1, args.rounds + 1):
            rounds.append(await one_round(setup, args))
            print_round(number, rounds[-1])
        return version, rounds
    finally:
        for step in reversed(cleanup):
            done = step()
            if asyncio.iscoroutine(done):
                await done
        if pg_name is not None:
            drop_pg_database(args.postgres_url, pg_name)
        shutil.rmtree(workdir, ignore_errors=True)


async def prepare(
    setup: Setup, workdir: Path, env: dict[str, str], args: argparse.Namespace
) -> None:
    """The agent, user, pool, tasks and callback URL; the requests the phases cycle through."""
    token = await asyncio.to_thread(agent_token, env)
    serve, bare = setup.serve, setup.bare
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{serve.port}/agent-api",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60.0,
    ) as client:

        async def call(method: str, path: str, body: Any) -> Any:
            response = await client.request(method, path, json=body)
            if response.status_code != 200:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
            return response.json()["data"]

        user_id = (await call("POST", "/user", {"name": "bench"}))["id"]
        await call("PUT", "/callback/api_customer_to_task", {"url": setup.receiver.url})
        tasks = [
            (await call("POST", f"/user/{user_id}/task", {"name": f"bench {i}"}))["id"]
            for i in range(TASKS)
        ]
    pool = workdir / "pool.csv"
    with pool.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone", "name"])
        writer.writerows([phone_of(i), f"客户{i}"] for i in range(args.pool_rows))
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "highseas", "pool", "import", str(pool), "--user", user_id],
        env=env,
        check=True,
        capture_output=True,
    )
    for i in range(max(args.pool_rows, TASKS)):
        path = f"/user/{user_id}/customer_to_task/{tasks[i % TASKS]}"
        body = json.dumps({"phone": phone_of(i % args.pool_rows)}).encode()
        setup.accept.append(build_request(serve.port, f"/agent-api{path}", body, token))
        setup.bare_requests.append(build_request(bare.port, f"/agent-api{path}", body, token))
        setup.insert_requests.append(build_request(bare.port, f"/bare-insert{path}", body, token))


async def one_round(setup: Setup, args: argparse.Namespace) -> Round:
    meter = CpuMeter(setup)
    closed: dict[str, Load] = {}
    opened: dict[str, Load] = {}

    async def phase(
        into: dict[str, Load],
        name: str,
        work: Awaitable[Load],
        accepts: bool = False,
        worker_paused: bool = False,
    ) -> None:
        await asyncio.sleep(0.5)
        if worker_paused and setup.worker is not None:
            setup.worker.pause()
        checkpoints = None if setup.pg_url is None else checkpointer(setup.pg_url)
        mark = meter.start()
        try:
            load = await work
        finally:
            if worker_paused and setup.worker is not None:
                setup.worker.resume()
        load.cpu = meter.since(mark)
        if checkpoints is not None and setup.pg_url is not None:
            started, written = checkpointer(setup.pg_url)
            load.checkpoints = (started - checkpoints[0], written - checkpoints[1])
        if accepts:
            load.callbacks_in_window = sum(i in setup.receiver.arrived for i in load.unique_ids)
            load.drain_seconds = await setup.receiver.drained(load.unique_ids)
            failed = [i for i in load.unique_ids if setup.receiver.arrived[i] != "success"]
            if failed:
                raise RuntimeError(f"{len(failed)} imports did not succeed, e.g. {failed[0]}")
        into[name] = load

    n, t, rate = args.concurrency, args.seconds, args.rate
    await phase(closed, "bare", closed_loop(setup.bare.port, setup.bare_requests, n, t))
    await phase(closed, "insert", closed_loop(setup.bare.port, setup.insert_requests, n, t))
    await phase(closed, "accept", closed_loop(setup.serve.port, setup.accept, n, t), True)
    await phase(opened, "bare", open_loop(setup.bare.port, setup.bare_requests, rate, t))
    await phase(opened, "accept", open_loop(setup.serve.port, setup.accept, rate, t), True)
    if setup.worker is not None:
        # The API process alone on the machine, as on an API host of the scale-out deployment
        # (workers on other hosts): the worker is stopped (SIGSTOP) for the load and drains
        # the backlog after it.
        paused = open_loop(setup.serve.port, setup.accept, rate, t)
        await phase(opened, "accept-api", paused, True, worker_paused=True)
    # The latency at a load this server can carry, for comparison with the goal's.
    half = max(1.0, closed["accept"].rate / 2)
    await phase(opened, "accept-half", open_loop(setup.serve.port, setup.accept, half, t), True)
    return Round(closed, opened)


# --- output --------------------------------------------------------------------------------

LABELS = {
    "bare": "bare FastAPI endpoint",
    "insert": "bare + one INSERT and commit",
    "accept": "customer_to_task accept",
    "accept-half": "customer_to_task accept",
    "accept-api": "accept, worker paused",
}


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def kept_up(load: Load) -> bool:
    return load.errors == 0 and load.last_answer_after_last_send <= KEPT_UP_WITHIN


def cpu_text(cpu: Cpu | None) -> str:
    if cpu is None:
        return ""
    worker = f" worker {cpu.worker:4.1f}" if cpu.worker is not None else ""
    return (
        f"CPU s: serve {cpu.serve:5.1f}{worker} bare {cpu.bare:4.1f} bench {cpu.bench:4.1f}; "
        f"machine {cpu.machine_busy * 100:3.0f}% busy"
    )


def print_round(number: int, r: Round) -> None:
    print(f"  round {number}")
    for name, load in r.closed.items():
        lat = load.latencies_ms
        print(
            f"    closed  {LABELS[name]:<30} {load.rate:7,.0f} req/s  "
            f"p50 {percentile(lat, 50):6.1f}  p99 {percentile(lat, 99):6.1f} ms  "
            f"{cpu_text(load.cpu)}{errors_text(load)}"
        )
        if name == "accept":
            print(f"            {worker_text(load)}")
    for name, load in r.open.items():
        lat = load.latencies_ms
        print(
            f"    open {load.target_rate:5.0f}/s {LABELS[name]:<24} {len(lat):5}/{load.sent} "
            f"answered  p50 {percentile(lat, 50):6.1f}  p95 {percentile(lat, 95):6.1f}  "
            f"p99 {percentile(lat, 99):6.1f}  max {max(lat, default=0):7.1f} ms  "
            f"{'kept up' if kept_up(load) else 'FELL BEHIND'} ({load.connections} connections, "
            f"send lag p99 {percentile(load.send_lag_ms, 99):.1f} ms)  {cpu_text(load.cpu)}"
            f"{errors_text(load)}"
        )
        print(f"            {spread_text(load)}")
        if name.startswith("accept"):
            print(f"            {worker_text(load)}")


def spread_text(load: Load) -> str:
    """Where in the phase the slow answers were: the worst one-second window by its p99; and
    whether PostgreSQL checkpointed meanwhile (a lead for rounds far slower than others)."""
    by_second: dict[int, list[float]] = {}
    for at, latency in zip(load.sent_at_s, load.latencies_ms, strict=True):
        by_second.setdefault(int(at), []).append(latency)
    parts = []
    if by_second:
        second, latencies = max(by_second.items(), key=lambda item: percentile(item[1], 99))
        parts.append(
            f"worst second: p99 {percentile(latencies, 99):.1f} ms at {second} s of "
            f"{len(by_second)}"
        )
    if load.checkpoints is not None:
        started, written = load.checkpoints
        parts.append(
            f"PostgreSQL during the phase: {started} checkpoints started, {written:,} buffers "
            "written by checkpoints"
        )
    return "; ".join(parts)


def errors_text(load: Load) -> str:
    return f"; {load.errors} errors, first: {load.first_error}" if load.errors else ""


def worker_text(load: Load) -> str:
    accepted = len(load.unique_ids)
    return (
        f"worker: {load.callbacks_in_window:,} of {accepted:,} callbacks by the end of the "
        f"load, the rest {load.drain_seconds:.1f} s later "
        f"({accepted / (load.seconds + WARM_UP + load.drain_seconds):.0f} imports/s overall)"
    )


def report(version: str, args: argparse.Namespace, rounds: list[Round]) -> Summary:
    def median(pick: Callable[[Round], float]) -> float:
        return statistics.median(pick(r) for r in rounds)

    bare = median(lambda r: r.closed["bare"].rate)
    insert = median(lambda r: r.closed["insert"].rate)
    accept = median(lambda r: r.closed["accept"].rate)
    ratio = accept / bare
    p99 = median(lambda r: percentile(r.open["accept"].latencies_ms, 99))
    p50 = median(lambda r: percentile(r.open["accept"].latencies_ms, 50))
    bare_p99 = median(lambda r: percentile(r.open["bare"].latencies_ms, 99))
    all_kept_up = all(kept_up(r.open["accept"]) for r in rounds)
    print(f"  medians of {len(rounds)} rounds:")
    print(f"    closed loop, {args.concurrency} clients: bare {bare:,.0f} req/s, bare + INSERT")
    print(f"      {insert:,.0f} req/s, customer_to_task {accept:,.0f} req/s")
    print(
        f"    ratio accept / bare         {ratio * 100:6.1f}%   goal ≥ 50%: {verdict(ratio >= 0.5)}"
    )
    print(f"    ratio accept / bare+INSERT  {accept / insert * 100:6.1f}%   (context)")
    print(
        f"    open loop {args.rate:g} req/s: accept p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"(bare p99 {bare_p99:.1f} ms); server kept up in "
        f"{sum(kept_up(r.open['accept']) for r in rounds)} of {len(rounds)} rounds"
    )
    goal = p99 < 50 and all_kept_up
    print(f"    accept p99 at {args.rate:g} req/s   {p99:6.1f} ms   goal < 50 ms: {verdict(goal)}")
    api_p99 = None
    if "accept-api" in rounds[0].open:
        api_p99 = median(lambda r: percentile(r.open["accept-api"].latencies_ms, 99))
        api_kept_up = all(kept_up(r.open["accept-api"]) for r in rounds)
        print(
            f"    the same with the worker paused (an API host of the scale-out deployment, "
            f"workers elsewhere):\n    accept p99 at {args.rate:g} req/s   {api_p99:6.1f} ms   "
            f"goal < 50 ms: {verdict(api_p99 < 50 and api_kept_up)}"
        )
    half_rate = median(lambda r: r.open["accept-half"].target_rate)
    half_p50 = median(lambda r: percentile(r.open["accept-half"].latencies_ms, 50))
    half_p99 = median(lambda r: percentile(r.open["accept-half"].latencies_ms, 99))
    print(
        f"    open loop at half the closed-loop accept rate ({half_rate:.0f} req/s): accept p50 "
        f"{half_p50:.1f} ms, p99 {half_p99:.1f} ms; kept up in "
        f"{sum(kept_up(r.open['accept-half']) for r in rounds)} of {len(rounds)} rounds"
    )
    print(f"  load average after: {loadavg()}")
    return Summary(
        version, bare, insert, accept, ratio, p50, p99, all_kept_up, half_rate, half_p99, api_p99
    )


@dataclass
class Summary:
    version: str
    bare: float
    insert: float
    accept: float
    ratio: float
    p50: float
    p99: float
    kept_up: bool
    half_rate: float
    half_p99: float
    api_p99: float | None


def summary_table(summaries: list[Summary], args: argparse.Namespace) -> None:
    print()
    print(
        f"{'database':<18}{'bare req/s':>11}{'+INSERT':>9}{'accept':>8}{'ratio':>8}"
        f"{f'  accept p50/p99 ms at {args.rate:g}/s':>30}{'kept up':>9}"
        f"{'  p99 at ½ accept rate':>24}{'  p99, worker paused':>21}"
    )
    for s in summaries:
        paused = f"{s.api_p99:.1f}" if s.api_p99 is not None else "–"
        print(
            f"{s.version:<18}{s.bare:11,.0f}{s.insert:9,.0f}{s.accept:8,.0f}{s.ratio * 100:7.1f}%"
            f"{s.p50:21.1f} / {s.p99:6.1f}{'yes' if s.kept_up else 'NO':>9}"
            f"{f'{s.half_p99:.1f} ms at {s.half_rate:.0f}/s':>24}{paused:>21}"
        )


def uvicorn_stack() -> str:
    """What uvicorn's "auto" picks in this interpreter (the servers run the same one): the
    first of each pair that imports."""
    picked = []
    for wanted, fallback in (("uvloop", "asyncio"), ("httptools", "h11")):
        try:
            importlib.import_module(wanted)
            picked.append(wanted)
        except ImportError:
            picked.append(fallback)
    return f"uvicorn loop {picked[0]}, http {picked[1]}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--both", action="store_true", help="SQLite, then PostgreSQL")
    parser.add_argument("--seconds", type=float, default=10.0, help="each phase's window")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s")
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many")
    parser.add_argument("--pool-rows", type=int, default=1000, help="customers in the pool")
    parser.add_argument("--postgres-url", default=DEFAULT_PG, help="server for the scratch DB")
    parser.add_argument(
        "--worker",
        choices=["in-process", "separate"],
        help="where the jobs run (default: in-process on SQLite, separate on PostgreSQL)",
    )
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.both else [args.database]
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M %Z')}; {uvicorn_stack()}")
    summaries = []
    chosen = args.worker
    for kind in kinds:
        args.worker = chosen or ("in-process" if kind == "sqlite" else "separate")
        version, rounds = await run(kind, args)
        summaries.append(report(version, args, rounds))
    if len(summaries) > 1:
        summary_table(summaries, args)


if __name__ == "__main__":
    asyncio.run(main())
