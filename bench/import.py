"""customer_to_task end to end: request → import → callback, against a raw INSERT … SELECT floor.

    .venv/bin/python bench/import.py [--rows 1000000] [--database sqlite|postgresql] [--both]
                                     [--diagnose]

Builds a pool of N customers for one user (phone, name and two components: 行业, text with
100 distinct values, and 年龄, number) through the real pool import (``import_file`` in this
process on SQLite; on PostgreSQL ``highseas pool import`` CLI processes, one per part of the
file, in parallel; loading is not what is measured), starts the real service as a subprocess
(``python -m highseas serve``: the API and its in-process worker, which runs the import and
sends the callback) and a callback receiver in this process, creates the user, components,
callback URL and tasks over HTTP, and then measures, on the database given:

(a) the whole pool: from sending ``customer_to_task`` with no filter to its callback
    arriving at the receiver. This includes the worker's queue polls (0–0.5 s each for the
    import job and for the callback job, with the default ``HIGHSEAS_JOB_POLL_SECONDS``);
(b) a 1% component filter (行业 = one of its 100 values): the same;
(d) a component filter matching half the pool (行业 in 50 of its 100 values), which walks
    the pool by phone and probes each customer's values (docs/adr/0008): the same;
(c) the floor, in the same run on the same database and driver: one raw
    ``INSERT INTO floor_numbers (task_id, phone, customer_id) SELECT … FROM floor_pool
    ON CONFLICT DO NOTHING`` of the same N phones between two plain tables (floor_pool has
    only the phones and ids, floor_numbers only its unique (task_id, phone)), timed alone
    with its commit, the service idle;
and the accept latency (the HTTP round trip of ``customer_to_task``): 20 separate accepts
into other tasks with a one-phone filter, each once the previous one's callback arrived (the
goal metric), and up to 20 more sent every 0.25 s while (a) runs (an import in progress).

Prints the times, rows/s, the ratios (a)/floor (goal ≤ 1.5x on both databases), (b)/(a)
(goal < 10% on PostgreSQL), (d)/(a) (no goal) and the accept p50/p95 (goal < 50 ms), where
(a)'s time went on the server (accepted → import job done → first callback attempt →
arrival) and the CPU seconds the serve process used. Every callback's counts are checked
against the data.

``--diagnose`` then takes (a) apart, in this process, each step timed alone with its commit
into a fresh task or table: the floor reading ``customers`` instead of ``floor_pool`` (as the
planner likes it: on SQLite through the (user_id, phone) index, so in phone order), and
``ORDER BY id`` (phones in random order); into a table shaped like ``task_numbers`` (its id,
columns and indexes, no foreign keys), in phone order like the product; the
product's own chunk statement (``imports.repository.import_chunk``) over the whole pool in
one transaction; and chunk by chunk as the job runs it (per-chunk statement and commit
times). On PostgreSQL it prints EXPLAIN (ANALYZE, BUFFERS) of the first chunk (rolled back),
on SQLite the query plans of its statements.

SQLite uses a temp file; PostgreSQL a scratch database created (and dropped) on the server of
``--postgres-url`` (default $HIGHSEAS_TEST_POSTGRES_URL or the local ``test`` database's).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from environment import (
    Process,
    agent_token,
    create_pg_database,
    drop_pg_database,
    loadavg,
    machine,
    verdict,
)
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from highseas.clock import set_service_zone, utcnow
from highseas.config import Settings
from highseas.customers import service as customers
from highseas.customers.files import PoolFile
from highseas.customers.filters import PoolFilter
from highseas.customers.pool_import import import_file
from highseas.db import Database
from highseas.imports import repository as imports
from highseas.migrate import upgrade

BLOCKS = ["130", "133", "135", "138", "150", "153", "186", "189", "192"]
HEADER = ["phone", "name", "行业", "年龄"]
INDUSTRIES = 100  # 行业 values: one of them is 1% of the pool
CHOSEN = "行业7"
WIDE = [f"行业{i}" for i in range(INDUSTRIES // 2)]  # half the pool
IDLE_ACCEPTS = 20
BUSY_ACCEPTS = 20
BUSY_EVERY = 0.25  # seconds between accepts sent while (a) runs
REFERENCE_REQUESTS = 20
CALLBACK_WAIT = 3600.0
DEFAULT_PG = os.environ.get(
    "HIGHSEAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def phone_of(i: int) -> str:
    # Unique for i < 10**8, and scattered: the task's unique (task_id, phone) index is filled
    # in random order, as with real pools (7_919_113 is coprime with 10**8).
    return f"{BLOCKS[i % len(BLOCKS)]}{(i * 7_919_113 + 12_345) % 100_000_000:08d}"


def write_csv(paths: list[Path], rows: int, seed: int = 1) -> tuple[int, int]:
    """The pool, split into len(paths) files of consecutive rows; how many have 行业 CHOSEN,
    and how many one of WIDE."""
    rng = random.Random(seed)
    chosen = wide = 0
    bounds = [rows * k // len(paths) for k in range(len(paths) + 1)]
    for path, start, end in zip(paths, bounds, bounds[1:], strict=False):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for i in range(start, end):
                industry = f"行业{rng.randrange(INDUSTRIES)}"
                chosen += industry == CHOSEN
                wide += industry in WIDE
                writer.writerow([phone_of(i), f"客户{i}", industry, rng.randrange(18, 80)])
    return chosen, wide


# --- the callback receiver -------------------------------------------------------------------


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that notes when each callback arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, tuple[float, dict[str, Any]]] = {}
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.perf_counter()
                message = json.loads(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with receiver._changed:
                    receiver.arrived.setdefault(message["unique_id"], (at, message))
                    receiver._changed.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, unique_id: str, timeout: float = CALLBACK_WAIT) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while unique_id not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no callback for {unique_id} in {timeout:.0f} s")
                self._changed.wait(left)
            return self.arrived[unique_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the service -----------------------------------------------------------------------------


class Service(Process):
    """``python -m highseas serve`` in a subprocess (API + in-process worker)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__([sys.executable, "-m", "highseas", "serve", "--port", "{port}"], env, log)
        self.base = f"http://127.0.0.1:{self.port}"


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"{base}/agent-api",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120.0,
        )

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.client.request(method, path, json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()["data"]

    async def timed(self, method: str, path: str, body: Any = None) -> tuple[Any, float]:
        started = time.perf_counter()
        data = await self.call(method, path, body)
        return data, (time.perf_counter() - started) * 1000

    async def to_task(self, user_id: str, task_id: str, body: dict[str, Any]) -> tuple[str, float]:
        """customer_to_task as documented (GET with a JSON body): (unique_id, round trip ms)."""
        data, ms = await self.timed("GET", f"/user/{user_id}/customer_to_task/{task_id}", body)
        return data["unique_id"], ms

    async def close(self) -> None:
        await self.client.aclose()


# --- the scratch database and the pool -------------------------------------------------------


async def load_pool(
    database: Database, kind: str, user_id: str, paths: list[Path], env: dict[str, str]
) -> int:
    """The pool through the real bulk import: ``import_file`` here (SQLite has one writer), or
    one ``highseas pool import`` process per file at once (PostgreSQL). Customers created."""
    if kind == "sqlite":
        created = 0
        for path in paths:
            summary = await import_file(database, user_id, PoolFile(path))
            assert summary.rejected == 0, summary
            created += summary.created
        return created
    command = [sys.executable, "-m", "highseas", "pool", "import"]
    processes = [
        await asyncio.create_subprocess_exec(
            *command,
            str(path),
            "--user",
            user_id,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for path in paths
    ]
    created = 0
    for process in processes:
        out, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"pool import exited {process.returncode}")
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["rejected"] == 0, summary
        created += summary["created"]
    await vacuum(database, "customers", "customer_values")
    return created


async def settle(database: Database) -> None:
    """SQLite: checkpoint the WAL into the database file before a timed step, so the step's
    commits pay for checkpointing their own pages only, not for what the setup or an earlier
    step wrote (a commit that finds the WAL over 1000 pages checkpoints it, synchronously)."""
    if database.engine.dialect.name != "sqlite":
        return

    def checkpoint() -> None:
        connection = sqlite3.connect(str(database.engine.url.database), timeout=30)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            connection.close()

    await asyncio.to_thread(checkpoint)


async def vacuum(database: Database, *tables: str) -> None:
    """PostgreSQL: hint bits set and statistics fresh, as a settled pool has them."""
    async with database.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            await autocommit.exec_driver_sql(f"VACUUM (ANALYZE) {table}")


# --- one run ---------------------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float
    accept_ms: float
    unique_id: str
    counts: dict[str, int]
    serve_cpu: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)


@dataclass
class Result:
    database: str
    version: str
    rows: int
    load_seconds: float
    whole: Timed
    filtered: Timed
    wide: Timed
    floor_seconds: float
    idle_accepts_ms: list[float]
    busy_accepts_ms: list[float]
    reference_ms: dict[str, list[float]]
    serve_pid: int
    worker_id: str
    chunk_rows: int
    load_before: str
    diagnosis: list[str] = field(default_factory=list)


@dataclass
class Bench:
    """One run's service, receiver, database and the objects created over HTTP."""

    kind: str
    args: argparse.Namespace
    settings: Settings
    service: Service
    receiver: Receiver
    api: Api
    database: Database
    user_id: str = ""
    industry_id: str = ""
    tasks: list[str] = field(default_factory=list)
    chosen: int = 0
    wide: int = 0
    load_seconds: float = 0.0
    # SQLite: a connection opened before the pool was loaded, as the serve process's are.
    early: sqlite3.Connection | None = None

    def task(self, name: str) -> str | list[str]:
        """whole, filtered, wide, diagnose (3), idle (IDLE_ACCEPTS), busy (BUSY_ACCEPTS)."""
        layout = {"whole": (0, 1), "filtered": (1, 2), "wide": (2, 3), "diagnose": (3, 6)}
        layout["idle"] = (6, 6 + IDLE_ACCEPTS)
        layout["busy"] = (6 + IDLE_ACCEPTS, 6 + IDLE_ACCEPTS + BUSY_ACCEPTS)
        first, end = layout[name]
        return self.tasks[first] if end == first + 1 else self.tasks[first:end]


async def run(kind: str, args: argparse.Namespace) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="highseas-bench-import-"))
    pg_name = None
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        url, pg_name = create_pg_database(args.postgres_url, "import")
    cleanup: list[Any] = []
    try:
        settings = Settings(database_url=url, data_dir=workdir / "data")
        set_service_zone(settings.zone)
        await asyncio.to_thread(upgrade, url)
        env = {
            **os.environ,
            "HIGHSEAS_DATABASE_URL": url,
            "HIGHSEAS_DATA_DIR": str(workdir / "data"),
            "HIGHSEAS_CALLBACK_ALLOW_PRIVATE": "true",
        }
        token = await asyncio.to_thread(agent_token, env)
        receiver = Receiver()
        cleanup.append(receiver.close)
        service = Service(env, workdir / "serve.log")
        cleanup.append(service.stop)
        await service.ready("/readyz")
        api = Api(service.base, token)
        cleanup.append(api.close)
        database = Database(url)
        cleanup.append(database.dispose)
        bench = Bench(kind, args, settings, service, receiver, api, database)
        cleanup.append(lambda: bench.early.close() if bench.early is not None else None)
        await prepare(bench, workdir, env)
        return await measure(bench)
    finally:
        for step in reversed(cleanup):
            done = step()
            if asyncio.iscoroutine(done):
                await done
        if pg_name is not None and not args.keep:
            drop_pg_database(args.postgres_url, pg_name)
        if args.keep:
            kept = f" and database {pg_name}" if pg_name else ""
            print(f"  [{kind}] kept {workdir}{kept}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def prepare(bench: Bench, workdir: Path, env: dict[str, str]) -> None:
    """The user, components, callback URL and tasks over HTTP, then the pool (not measured)."""
    api = bench.api
    bench.user_id = (await api.call("POST", "/user", {"name": "bench"}))["id"]
    base = f"/user/{bench.user_id}"
    industry = await api.call("POST", f"{base}/component", {"name": "行业", "type": "text"})
    bench.industry_id = industry["id"]
    await api.call("POST", f"{base}/component", {"name": "年龄", "type": "number"})
    await api.call("PUT", "/callback/api_customer_to_task", {"url": bench.receiver.url})
    bench.tasks = [
        (await api.call("POST", f"{base}/task", {"name": f"bench {i}"}))["id"]
        for i in range(6 + IDLE_ACCEPTS + BUSY_ACCEPTS)
    ]
    if bench.kind == "sqlite":
        path = make_url(bench.settings.database_url).database
        bench.early = sqlite3.connect(str(path))
        bench.early.execute("SELECT count(*) FROM customers").fetchall()
    parts = 1 if bench.kind == "sqlite" else max(1, bench.args.load_processes)
    paths = [workdir / f"pool-{k}.csv" for k in range(parts)]
    bench.chosen, bench.wide = write_csv(paths, bench.args.rows)
    started = time.perf_counter()
    created = await load_pool(bench.database, bench.kind, bench.user_id, paths, env)
    bench.load_seconds = time.perf_counter() - started
    assert created == bench.args.rows, (created, bench.args.rows)
    print(
        f"  [{bench.kind}] pool of {created:,} loaded in {bench.load_seconds:.1f} s",
        file=sys.stderr,
    )


async def measure(bench: Bench) -> Result:
    api, receiver, rows = bench.api, bench.receiver, bench.args.rows
    await asyncio.sleep(1.0)
    load_before = loadavg()
    reference = await reference_requests(bench)

    # Accept latency of the idle service: each accept once the previous callback arrived.
    rng = random.Random(2)
    idle_ms = []
    for task_id in bench.task("idle"):
        one = {"phone": phone_of(rng.randrange(rows))}
        unique_id, ms = await api.to_task(bench.user_id, task_id, one)
        idle_ms.append(ms)
        _, message = await asyncio.to_thread(receiver.wait, unique_id, 300.0)
        check(message, matched=1, imported=1)
    await asyncio.sleep(1.0)

    # (a) the whole pool, with accepts into other tasks while it runs.
    busy: list[asyncio.Task[tuple[list[float], list[str]]]] = []

    def while_running(unique_id: str) -> None:
        busy.append(asyncio.create_task(busy_accepts(bench, unique_id, rng)))

    whole = await request_to_callback(bench, "whole", {}, rows, while_running)
    busy_ms, busy_ids = await busy[0]
    for unique_id in busy_ids:  # drained: nothing else runs during (b) and the floor
        await asyncio.to_thread(receiver.wait, unique_id, 600.0)
    await asyncio.sleep(1.0)

    # (b) a 1% component filter.
    body = {"components": [{"id": bench.industry_id, "value": CHOSEN}]}
    filtered = await request_to_callback(bench, "filtered", body, bench.chosen)
    await asyncio.sleep(1.0)

    # (d) a component filter matching half the pool.
    body = {"components": [{"id": bench.industry_id, "value": WIDE}]}
    wide = await request_to_callback(bench, "wide", body, bench.wide)
    for timed in (whole, filtered, wide):
        timed.stages = await stages(bench.database, timed.unique_id)
    worker_id = await worker_of(bench.database, whole.unique_id)
    await asyncio.sleep(1.0)

    # (c) the floor, the service idle.
    whole_task = str(bench.task("whole"))
    floor_seconds = await floor(bench.database, bench.kind, bench.user_id, whole_task, rows)
    result = Result(
        database=bench.kind,
        version=await version(bench.database, bench.kind),
        rows=rows,
        load_seconds=bench.load_seconds,
        whole=whole,
        filtered=filtered,
        wide=wide,
        floor_seconds=floor_seconds,
        idle_accepts_ms=idle_ms,
        busy_accepts_ms=busy_ms,
        reference_ms=reference,
        serve_pid=bench.service.process.pid,
        worker_id=worker_id,
        chunk_rows=bench.settings.import_chunk_rows,
        load_before=load_before,
    )
    if bench.args.diagnose:
        result.diagnosis = await diagnose(
            bench.database,
            bench.kind,
            bench.user_id,
            rows,
            list(bench.task("diagnose")),
            batch_id=whole.unique_id,
            chunk_rows=bench.settings.import_chunk_rows,
            early=bench.early,
        )
    return result


async def reference_requests(bench: Bench) -> dict[str, list[float]]:
    """Round trips of the idle service: a probe, and an authenticated one-row read."""
    reference: dict[str, list[float]] = {"GET /healthz": [], "GET …/task/{id}": []}
    for _ in range(REFERENCE_REQUESTS):
        started = time.perf_counter()
        await bench.api.client.get(f"{bench.service.base}/healthz")
        reference["GET /healthz"].append((time.perf_counter() - started) * 1000)
        _, ms = await bench.api.timed("GET", f"/user/{bench.user_id}/task/{bench.task('whole')}")
        reference["GET …/task/{id}"].append(ms)
    return reference


async def request_to_callback(
    bench: Bench,
    task: str,
    body: dict[str, Any],
    expected: int,
    on_accepted: Any = None,
) -> Timed:
    """From sending customer_to_task to its callback arriving; the counts checked."""
    await settle(bench.database)
    cpu_before = bench.service.cpu_seconds()
    started = time.perf_counter()
    unique_id, accept_ms = await bench.api.to_task(bench.user_id, str(bench.task(task)), body)
    if on_accepted is not None:
        on_accepted(unique_id)
    arrived, message = await asyncio.to_thread(bench.receiver.wait, unique_id)
    timed = Timed(arrived - started, accept_ms, unique_id, check(message, expected, expected))
    timed.serve_cpu = bench.service.cpu_seconds() - cpu_before
    return timed


async def busy_accepts(
    bench: Bench, whole_id: str, rng: random.Random
) -> tuple[list[float], list[str]]:
    """One accept every BUSY_EVERY seconds until (a)'s callback arrives (at most BUSY_ACCEPTS)."""
    latencies, ids = [], []
    for task_id in bench.task("busy"):
        await asyncio.sleep(BUSY_EVERY)
        if whole_id in bench.receiver.arrived:
            break
        one = {"phone": phone_of(rng.randrange(bench.args.rows))}
        unique_id, ms = await bench.api.to_task(bench.user_id, task_id, one)
        latencies.append(ms)
        ids.append(unique_id)
    return latencies, ids


def check(message: dict[str, Any], matched: int, imported: int) -> dict[str, int]:
    data = message["data"]
    got = {k: data.get(k) for k in ("matched", "imported", "duplicates")}
    want = {"matched": matched, "imported": imported, "duplicates": matched - imported}
    if message["status"] != "success" or got != want:
        raise AssertionError(f"callback {message} ≠ expected {want}")
    return got


def _seconds(later: Any, earlier: Any) -> float | None:
    if later is None or earlier is None:
        return None
    if isinstance(later, str):
        later, earlier = datetime.fromisoformat(later), datetime.fromisoformat(earlier)
    return float((later - earlier).total_seconds())


def _uuid_param(kind: str, value: str) -> Any:
    """How a UUID column is bound in raw SQL: 32 hex characters on SQLite (SQLAlchemy's
    ``Uuid`` there), a uuid on PostgreSQL."""
    parsed = uuid.UUID(value)
    return parsed.hex if kind == "sqlite" else parsed


async def stages(database: Database, unique_id: str) -> dict[str, float]:
    """Server-side times of a batch: accepted → import job done → first callback attempt."""
    query = text(
        "SELECT b.accepted_at, b.finished_at, min(a.at) FROM batches b "
        "JOIN callback_messages m ON m.batch_id = b.id "
        "JOIN callback_attempts a ON a.message_id = m.id "
        "WHERE b.id = :id GROUP BY b.accepted_at, b.finished_at"
    )
    for _ in range(100):  # the attempt is logged just after the receiver answered
        async with database.transaction() as session:
            kind = session.get_bind().dialect.name
            row = (await session.execute(query, {"id": _uuid_param(kind, unique_id)})).first()
        if row is not None:
            break
        await asyncio.sleep(0.1)
    else:
        return {}
    accepted, finished, attempted = row
    out = {}
    if (s := _seconds(finished, accepted)) is not None:
        out["accepted → batch finished (queue wait + import)"] = s
    if (s := _seconds(attempted, finished)) is not None:
        out["batch finished → callback attempt (commit + callback queue)"] = s
    return out


async def worker_of(database: Database, unique_id: str) -> str:
    async with database.transaction() as session:
        rows = await session.execute(
            text("SELECT payload, locked_by FROM jobs WHERE kind = 'imports.customer_to_task'")
        )
        for payload, locked_by in rows:
            data = json.loads(payload) if isinstance(payload, str) else payload
            if data.get("batch_id") == unique_id:
                return str(locked_by)
    return "?"


# --- the floor and its neighbours ------------------------------------------------------------


def _types(kind: str) -> dict[str, str]:
    sqlite = kind == "sqlite"
    return {
        "uuid": "CHAR(32)" if sqlite else "UUID",
        "bigint": "INTEGER" if sqlite else "BIGINT",
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT"
        if sqlite
        else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "time": "DATETIME" if sqlite else "TIMESTAMP WITH TIME ZONE",
    }


async def _execute(database: Database, *statements: str) -> None:
    async with database.transaction() as session:
        connection = await session.connection()
        for statement in statements:
            await connection.exec_driver_sql(statement)


def _marks(kind: str, statement: str) -> str:
    """``?`` placeholders (SQLite's) as the driver wants them (psycopg: ``%s``)."""
    return statement if kind == "sqlite" else statement.replace("?", "%s")


async def _timed_insert(
    database: Database, kind: str, statement: str, parameters: tuple[Any, ...]
) -> tuple[float, int]:
    """One statement in its own transaction, timed from BEGIN to the end of COMMIT."""
    started = time.perf_counter()
    async with database.transaction() as session:
        connection = await session.connection()
        result = await connection.exec_driver_sql(_marks(kind, statement), parameters)
        inserted = result.rowcount
    return time.perf_counter() - started, int(inserted)


async def floor(database: Database, kind: str, user_id: str, task_id: str, rows: int) -> float:
    """One raw INSERT … SELECT … ON CONFLICT DO NOTHING of the pool's phones between two plain
    tables, timed alone with its commit, through the same engine and driver."""
    t = _types(kind)
    await _execute(
        database,
        "DROP TABLE IF EXISTS floor_numbers",
        "DROP TABLE IF EXISTS floor_pool",
        f"CREATE TABLE floor_pool (customer_id {t['bigint']} PRIMARY KEY, "
        "phone VARCHAR(11) NOT NULL)",
        f"CREATE TABLE floor_numbers (task_id {t['uuid']} NOT NULL, phone VARCHAR(11) NOT NULL, "
        f"customer_id {t['bigint']}, UNIQUE (task_id, phone))",
    )
    await _timed_insert(
        database,
        kind,
        "INSERT INTO floor_pool (customer_id, phone) "
        "SELECT id, phone FROM customers WHERE user_id = ? ORDER BY id",
        (_uuid_param(kind, user_id),),
    )
    if kind == "postgresql":
        await vacuum(database, "floor_pool")
    await settle(database)
    # SQLite needs a WHERE to tell the upsert's ON from a join's.
    seconds, inserted = await _timed_insert(
        database,
        kind,
        "INSERT INTO floor_numbers (task_id, phone, customer_id) "
        "SELECT ?, phone, customer_id FROM floor_pool WHERE true "
        "ON CONFLICT (task_id, phone) DO NOTHING",
        (_uuid_param(kind, task_id),),
    )
    assert inserted == rows, (inserted, rows)
    await _execute(database, "DROP TABLE floor_numbers", "DROP TABLE floor_pool")
    return seconds


class StatementClock:
    """Times each statement the engine sends (SQLAlchemy cursor events); keeps the last ones."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine.sync_engine
        self.seen: list[tuple[str, Any, float]] = []
        self._started = 0.0

    def __enter__(self) -> StatementClock:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.seen.append((statement, parameters, time.perf_counter() - self._started))

    def take(self) -> list[tuple[str, Any, float]]:
        seen, self.seen = self.seen, []
        return seen


def _label(statement: str) -> str:
    words = statement.split()
    if words[:2] == ["SELECT", "count(*)"]:
        return "count"
    if words[:1] == ["WITH"] and "INSERT INTO" in statement:
        return "insert with counts (CTE)"
    if "INSERT" in words[:12]:
        return "insert"
    return "other"


async def _import_chunk(
    database: Database,
    clock: StatementClock,
    *,
    user_id: str,
    task_id: str,
    batch_id: str,
    after_phone: str,
    rows: int,
    up_to_id: int,
) -> tuple[float, dict[str, float], float, imports.Chunk]:
    """The product's chunk (imports.repository.import_chunk) in its own transaction:
    (seconds with commit, seconds per statement kind, commit seconds, the chunk)."""
    started = time.perf_counter()
    async with database.transaction() as session:
        condition = await customers.pool_condition(session, PoolFilter(user_id=user_id))
        clock.take()
        chunk = await imports.import_chunk(
            session,
            task_id=uuid.UUID(task_id),
            batch_id=uuid.UUID(batch_id),
            condition=condition,
            after_phone=after_phone,
            rows=rows,
            up_to_id=up_to_id,
            now=utcnow(),
        )
        statements_done = time.perf_counter()
    done = time.perf_counter()
    per_kind: dict[str, float] = {}
    for statement, _, seconds in clock.take():
        per_kind[_label(statement)] = per_kind.get(_label(statement), 0.0) + seconds
    return done - started, per_kind, done - statements_done, chunk


async def diagnose(
    database: Database,
    kind: str,
    user_id: str,
    rows: int,
    tasks: list[str],
    *,
    batch_id: str,
    chunk_rows: int,
    early: sqlite3.Connection | None,
) -> list[str]:
    """(a) taken apart, each step alone: see the module docstring."""
    t = _types(kind)
    user, task = _uuid_param(kind, user_id), _uuid_param(kind, tasks[0])
    batch = _uuid_param(kind, batch_id)
    out: list[str] = []

    def line(label: str, seconds: float, note: str = "") -> None:
        out.append(f"    {label:<62} {seconds:7.2f} s  ({rows / seconds:>9,.0f} rows/s){note}")

    async with database.transaction() as session:
        last_id = int((await session.execute(text("SELECT max(id) FROM customers"))).scalar_one())

    # 1. The floor's insert, reading the wide customers table instead of floor_pool.
    await _execute(
        database,
        "DROP TABLE IF EXISTS floor_numbers",
        f"CREATE TABLE floor_numbers (task_id {t['uuid']} NOT NULL, phone VARCHAR(11) NOT NULL, "
        f"customer_id {t['bigint']}, UNIQUE (task_id, phone))",
    )
    await settle(database)
    seconds, _ = await _timed_insert(
        database,
        kind,
        "INSERT INTO floor_numbers (task_id, phone, customer_id) "
        "SELECT ?, phone, id FROM customers WHERE user_id = ? "
        "ON CONFLICT (task_id, phone) DO NOTHING",
        (task, user),
    )
    line("1 floor, reading customers instead of floor_pool", seconds)
    if kind == "sqlite":
        out.append("      (SQLite reads them through the (user_id, phone) index: in phone order)")
    await _execute(
        database,
        "DROP TABLE floor_numbers",
        f"CREATE TABLE floor_numbers (task_id {t['uuid']} NOT NULL, phone VARCHAR(11) NOT NULL, "
        f"customer_id {t['bigint']}, UNIQUE (task_id, phone))",
    )
    await settle(database)
    seconds, _ = await _timed_insert(
        database,
        kind,
        "INSERT INTO floor_numbers (task_id, phone, customer_id) "
        "SELECT ?, phone, id FROM customers WHERE user_id = ? ORDER BY id "
        "ON CONFLICT (task_id, phone) DO NOTHING",
        (task, user),
    )
    line("1b … reading customers ORDER BY id (phones in random order)", seconds)
    await settle(database)

    # 2. Into a table shaped like task_numbers: its id, columns and three indexes; no FKs.
    await _execute(
        database,
        "DROP TABLE IF EXISTS floor_numbers",
        "DROP TABLE IF EXISTS diag_numbers",
        f"CREATE TABLE diag_numbers (id {t['id']}, task_id {t['uuid']} NOT NULL, "
        f"phone VARCHAR(11) NOT NULL, customer_id {t['bigint']}, batch_id {t['uuid']}, "
        f"status SMALLINT NOT NULL, created_at {t['time']} NOT NULL, UNIQUE (task_id, phone))",
        "CREATE INDEX ix_diag_numbers_task_id_id ON diag_numbers (task_id, id)",
        "CREATE INDEX ix_diag_numbers_batch_id_phone ON diag_numbers (batch_id, phone)",
    )
    now = utcnow().replace(tzinfo=None) if kind == "sqlite" else utcnow()
    seconds, _ = await _timed_insert(
        database,
        kind,
        "INSERT INTO diag_numbers (task_id, phone, customer_id, batch_id, status, created_at) "
        "SELECT ?, phone, id, ?, 0, ? FROM customers "
        "WHERE user_id = ? AND id > 0 AND id <= ? ORDER BY phone "
        "ON CONFLICT (task_id, phone) DO NOTHING",
        (task, batch, now if kind == "postgresql" else str(now), user, last_id),
    )
    line("2 … into a table shaped like task_numbers (id, 3 indexes, no FK)", seconds)
    await _execute(database, "DROP TABLE diag_numbers")
    await settle(database)

    # 3. The product's statement over the whole pool, one transaction.
    with StatementClock(database) as clock:
        seconds, per_kind, commit, whole = await _import_chunk(
            database,
            clock,
            user_id=user_id,
            task_id=tasks[0],
            batch_id=batch_id,
            after_phone="",
            rows=rows + 1,
            up_to_id=last_id,
        )
        assert whole.imported == rows, (whole, rows)
        detail = ", ".join(f"{k} {v:.2f} s" for k, v in per_kind.items())
        line(
            "3 product import_chunk, whole pool in one transaction",
            seconds,
            f"; {detail}, commit {commit:.2f} s",
        )

        # 4. The product's chunks, each its own transaction, as the job runs them.
        await settle(database)
        chunks: list[tuple[float, dict[str, float], float]] = []
        after: str | None = ""
        while after is not None:
            seconds, per_kind, commit, chunk = await _import_chunk(
                database,
                clock,
                user_id=user_id,
                task_id=tasks[1],
                batch_id=batch_id,
                after_phone=after,
                rows=chunk_rows,
                up_to_id=last_id,
            )
            chunks.append((seconds, per_kind, commit))
            after = chunk.end
        total = sum(c[0] for c in chunks)
        kinds: dict[str, float] = {}
        for _, per_kind, _ in chunks:
            for k, v in per_kind.items():
                kinds[k] = kinds.get(k, 0.0) + v
        commits = sum(c[2] for c in chunks)
        detail = ", ".join(f"{k} {v:.2f} s" for k, v in kinds.items())
        line(
            f"4 product import_chunk, {len(chunks)} chunks of {chunk_rows:,} rows",
            total,
            f"; {detail}, commits {commits:.2f} s",
        )
        per_chunk = sorted(c[0] for c in chunks)
        median = per_chunk[len(per_chunk) // 2]
        out.append(
            f"      per chunk: min {per_chunk[0]:.3f} s, median {median:.3f} s, "
            f"max {per_chunk[-1]:.3f} s (the write lock / row locks are held this long)"
        )

        # The plan of the first chunk, into a fresh task, rolled back.
        out += await plan(
            early,
            database,
            kind,
            clock,
            user_id=user_id,
            task_id=tasks[2],
            batch_id=batch_id,
            chunk_rows=chunk_rows,
            up_to_id=last_id,
        )
    return out


async def plan(
    early: sqlite3.Connection | None,
    database: Database,
    kind: str,
    clock: StatementClock,
    *,
    user_id: str,
    task_id: str,
    batch_id: str,
    chunk_rows: int,
    up_to_id: int,
) -> list[str]:
    """The first chunk's statements as the product sends them, and their plans."""
    async with database.sessions() as session:
        condition = await customers.pool_condition(session, PoolFilter(user_id=user_id))
        clock.take()
        # Into an empty task, like (a)'s first chunk; rolled back, and so is the EXPLAIN.
        await imports.import_chunk(
            session,
            task_id=uuid.UUID(task_id),
            batch_id=uuid.UUID(batch_id),
            condition=condition,
            after_phone="",
            rows=chunk_rows,
            up_to_id=up_to_id,
            now=utcnow(),
        )
        captured = [(s, p) for s, p, _ in clock.take() if _label(s) != "other"]
        await session.rollback()
    out = []
    async with database.engine.connect() as connection:
        for statement, parameters in captured:
            if kind == "postgresql":
                explain = "EXPLAIN (ANALYZE, BUFFERS, WAL) " + statement
                rows = (await connection.exec_driver_sql(explain, parameters)).all()
                out.append(
                    f"    EXPLAIN ANALYZE of the first chunk ({chunk_rows:,} rows; rolled back):"
                )
            else:
                explain = "EXPLAIN QUERY PLAN " + statement
                rows = (await connection.exec_driver_sql(explain, parameters)).all()
                out.append(f"    query plan of the first chunk's {_label(statement)}:")
                rows = [(r[-1],) for r in rows]
            out += [f"      {r[0]}" for r in rows]
        await connection.rollback()
    if early is not None:
        out += early_plans(early, captured, database)
    return out


def early_plans(
    early: sqlite3.Connection, captured: list[tuple[str, Any]], database: Database
) -> list[str]:
    """SQLite: the same statements as planned by a connection that was opened before the pool
    was loaded (as the serve process's pooled connections were), and the chunk's count timed
    on it and on a fresh connection."""
    out = []
    for statement, parameters in captured:
        rows = early.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
        out.append(
            f"    query plan of the first chunk's {_label(statement)} on a connection opened "
            "before the pool was loaded:"
        )
        out += [f"      {r[-1]}" for r in rows]
        if _label(statement) == "count":
            fresh = sqlite3.connect(str(database.engine.url.database))
            timings = []
            for connection in (early, fresh):
                started = time.perf_counter()
                connection.execute(statement, parameters).fetchall()
                timings.append(time.perf_counter() - started)
            fresh.close()
            out.append(
                f"      the count of one chunk takes {timings[0] * 1000:.1f} ms there, "
                f"{timings[1] * 1000:.1f} ms on a fresh connection"
            )
    return out


async def version(database: Database, kind: str) -> str:
    if kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    async with database.transaction() as session:
        full = (await session.execute(text("SELECT version()"))).scalar_one()
    return " ".join(str(full).split()[:2])


# --- output ----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def report(r: Result) -> None:
    rows = r.rows
    share = r.filtered.counts["matched"] / rows * 100
    print(
        f"highseas customer_to_task bench: {rows:,} customers, {r.version}, "
        f"import chunks of {r.chunk_rows:,} rows (load average before: {r.load_before})"
    )
    print(
        f"  the work is done by the serve process's in-process worker (pid {r.serve_pid}, "
        f"worker {r.worker_id}); the bench process only sends requests and receives callbacks"
    )
    print(f"  pool load (not measured)                                  {r.load_seconds:8.1f} s")
    for label, timed in (
        ("(a) whole pool", r.whole),
        (f"(b) 1% filter ({share:.2f}%)", r.filtered),
        (f"(d) 50% filter ({r.wide.counts['matched'] / rows * 100:.1f}%)", r.wide),
    ):
        matched = timed.counts["matched"]
        speed = f"{rows / timed.seconds:>9,.0f} pool rows/s"
        print(
            f"  {label:<24} request → callback arrived     {timed.seconds:8.2f} s  ({speed}; "
            f"{matched:,} imported; serve CPU {timed.serve_cpu:.1f} s)"
        )
        for stage, seconds in timed.stages.items():
            print(f"      {stage:<60} {seconds:6.2f} s")
    print(
        f"  (c) floor: raw INSERT … SELECT … ON CONFLICT DO NOTHING  {r.floor_seconds:8.2f} s  "
        f"({rows / r.floor_seconds:>9,.0f} rows/s)"
    )
    ratio = r.whole.seconds / r.floor_seconds
    print(f"  ratio (a) / floor        {ratio:8.2f}x   goal ≤ 1.5x: {verdict(ratio <= 1.5)}")
    wide = r.wide.seconds / r.whole.seconds
    print(f"  ratio (d) / (a)          {wide:8.2f}x   (a component filter walking the pool)")
    part = r.filtered.seconds / r.whole.seconds * 100
    if r.database == "postgresql":
        print(f"  ratio (b) / (a)          {part:8.1f}%   goal < 10%: {verdict(part < 10)}")
    else:
        print(f"  ratio (b) / (a)          {part:8.1f}%   (the < 10% goal is PostgreSQL's)")
    series = [
        (f"accept, idle ({len(r.idle_accepts_ms)})", r.idle_accepts_ms, True),
        (f"accept, while (a) runs ({len(r.busy_accepts_ms)})", r.busy_accepts_ms, False),
        *((f"reference: {k}", v, False) for k, v in r.reference_ms.items()),
    ]
    for label, values, goal in series:
        if values:
            p50, p95 = percentile(values, 50), percentile(values, 95)
            tail = f"   goal < 50 ms: {verdict(p95 < 50)}" if goal else ""
            print(f"  {label:<34} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms{tail}")
    print(
        f"  accept of (a) itself {r.whole.accept_ms:.1f} ms, of (b) {r.filtered.accept_ms:.1f} ms"
    )
    if r.diagnosis:
        print("  where (a)'s time goes (in the bench process, each step alone, with its commit):")
        print(f"    {'0 floor (c)':<62} {r.floor_seconds:7.2f} s")
        for text_line in r.diagnosis:
            print(text_line)
    print(f"  load average after: {loadavg()}")


def summary_table(results: list[Result]) -> None:
    print()
    print(
        f"{'database':<18}{'(a) s':>9}{'floor s':>9}{'(a)/floor':>11}{'(b) s':>8}{'(b)/(a)':>9}"
        f"{'accept p50/p95 ms':>20}"
    )
    for r in results:
        p50, p95 = percentile(r.idle_accepts_ms, 50), percentile(r.idle_accepts_ms, 95)
        print(
            f"{r.version:<18}{r.whole.seconds:9.2f}{r.floor_seconds:9.2f}"
            f"{r.whole.seconds / r.floor_seconds:10.2f}x{r.filtered.seconds:8.2f}"
            f"{r.filtered.seconds / r.whole.seconds * 100:8.1f}%{p50:11.1f} / {p95:5.1f}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--both", action="store_true", help="SQLite, then PostgreSQL")
    parser.add_argument("--diagnose", action="store_true", help="take (a) apart afterwards")
    parser.add_argument("--postgres-url", default=DEFAULT_PG, help="server for the scratch DB")
    parser.add_argument(
        "--load-processes", type=int, default=2, help="PostgreSQL: pool import CLIs at once"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / scratch DB")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.both else [args.database]
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    results = []
    for kind in kinds:
        result = await run(kind, args)
        report(result)
        results.append(result)
    if len(results) > 1:
        summary_table(results)


if __name__ == "__main__":
    asyncio.run(main())
