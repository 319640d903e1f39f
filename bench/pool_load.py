"""Bulk load of the customer pool: `highseas pool import` against a plain executemany.

    .venv/bin/python bench/pool_load.py [--rows 1000000] [--database-url URL]

Generates a CSV of customers with three components (text, number, date), loads the first
10% and then the rest through the real CLI (a subprocess, as a user runs it), and in the
same run, on the same database, reads the same file with csv.reader and inserts the same rows
with a plain executemany into a bare table (no indexes, same 5000-row transactions): the
baseline. Prints both times and the ratio, then the time of a selective component filter
(0.1% of the rows, through the get_customer service) at 10% and at 100% of the pool.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text

from highseas import phones
from highseas.agents import service as agents
from highseas.clock import set_service_zone
from highseas.components import service as components
from highseas.components import values
from highseas.components.schemas import ComponentCreate
from highseas.config import Settings
from highseas.customers import service as customers
from highseas.customers.schemas import CustomerQuery
from highseas.db import Database
from highseas.migrate import upgrade
from highseas.models import User
from highseas.models.base import new_public_id
from highseas.users import service as users
from highseas.users.schemas import AccountCreate

BLOCKS = ["130", "133", "135", "138", "150", "153", "186", "189", "192"]
HEADER = ["phone", "name", "行业", "年龄", "签约日期"]
CHUNK = 5000


def write_csv(path: Path, rows: range, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in rows:
            writer.writerow(
                [
                    f"{BLOCKS[i % len(BLOCKS)]}{i:08d}",
                    f"客户{i}",
                    f"行业{rng.randrange(1000)}",  # 1000 values: one is 0.1% of the pool
                    rng.randrange(100_000),
                    f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                ]
            )


async def make_owner(database: Database) -> tuple[User, str]:
    async with database.transaction() as session:
        agent, _ = await agents.create_agent(session, "bench")
        user = await users.create_user(session, agent.id, AccountCreate(name="bench"))
        industry = await components.create(session, user, ComponentCreate(name="行业", type="text"))
        await components.create(session, user, ComponentCreate(name="年龄", type="number"))
        await components.create(session, user, ComponentCreate(name="签约日期", type="date"))
        return user, str(industry.public_id)


def cli_import(path: Path, user: User, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "highseas", "pool", "import", str(path), "--user", str(user.id)],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    elapsed = time.perf_counter() - started
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["rejected"] == 0 and summary["duplicates"] == 0, summary
    return elapsed


async def baseline(database: Database, paths: list[Path]) -> float:
    async with database.transaction() as session:
        await session.execute(text("DROP TABLE IF EXISTS bench_bare"))
        await session.execute(
            text("CREATE TABLE bench_bare (phone TEXT, name TEXT, c1 TEXT, c2 TEXT, c3 TEXT)")
        )
    insert = "INSERT INTO bench_bare VALUES (?, ?, ?, ?, ?)"
    started = time.perf_counter()
    for path in paths:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            chunk: list[list[str]] = []
            for row in reader:
                chunk.append(row)
                if len(chunk) == CHUNK:
                    await _insert_chunk(database, insert, chunk)
                    chunk = []
            if chunk:
                await _insert_chunk(database, insert, chunk)
    elapsed = time.perf_counter() - started
    async with database.transaction() as session:
        await session.execute(text("DROP TABLE bench_bare"))
    return elapsed


async def _insert_chunk(database: Database, insert: str, rows: list[list[str]]) -> None:
    async with database.transaction() as session:
        connection = await session.connection()
        postgresql = connection.dialect.name == "postgresql"
        statement = insert.replace("?", "%s") if postgresql else insert
        await connection.exec_driver_sql(statement, [tuple(r) for r in rows])


# The schema's own cost: the same rows, checked and encoded beforehand (not timed), written by
# executemany into copies of the real customers and customer_values tables (same columns,
# keys, indexes and foreign keys) in the same 5000-row transactions, ids given explicitly.
_FLOOR_NAMES = [(r"\bcustomer_values\b", "floor_values"), (r"\bcustomers\b", "floor_customers")]


async def storage_floor(database: Database, user: User, paths: list[Path]) -> float:
    async with database.transaction() as session:
        ddl = await session.execute(
            text(
                "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                " AND tbl_name IN ('customers', 'customer_values') ORDER BY type DESC"
            )
        )
        component_ids = (
            (
                await session.execute(
                    text("SELECT id FROM components WHERE user_id = :u ORDER BY id"),
                    {"u": user.id.hex},
                )
            )
            .scalars()
            .all()
        )
        for kind, name, real_sql in ddl.all():
            sql = real_sql
            for pattern, floor_name in _FLOOR_NAMES:
                sql = re.sub(pattern, floor_name, sql)
            if kind == "index":
                sql = sql.replace(f" {name} ", f" floor_{name} ", 1)
            await session.execute(text(sql))
    chunks = list(_prebuilt_chunks(paths, user.id.hex, component_ids))
    insert_customer = (
        "INSERT INTO floor_customers (id, public_id, user_id, phone, name, operator, province,"
        " city, components, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    insert_value = "INSERT INTO floor_values VALUES (?, ?, ?)"
    started = time.perf_counter()
    for customer_rows, value_rows in chunks:
        async with database.transaction() as session:
            connection = await session.connection()
            await connection.exec_driver_sql(insert_customer, customer_rows)
            await connection.exec_driver_sql(insert_value, value_rows)
    elapsed = time.perf_counter() - started
    async with database.transaction() as session:
        await session.execute(text("DROP TABLE floor_values"))
        await session.execute(text("DROP TABLE floor_customers"))
    return elapsed


def _prebuilt_chunks(
    paths: list[Path], user_id: str, component_ids: list[int]
) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[int, str, int]]]]:
    now = "2026-01-01 00:00:00.000000"
    customer_id = 0
    for path in paths:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            while chunk := list(itertools.islice(reader, CHUNK)):
                customer_rows: list[tuple[object, ...]] = []
                value_rows: list[tuple[int, str, int]] = []
                for phone, name, industry, age, day in chunk:
                    customer_id += 1
                    info = phones.parse(phone)
                    assert info is not None
                    shown = dict(zip(header[2:], (industry, int(age), day), strict=True))
                    customer_rows.append(
                        (customer_id, new_public_id().hex, user_id, phone, name,
                         int(info.operator), info.province, info.city,
                         json.dumps(shown, ensure_ascii=False), now, now)
                    )  # fmt: skip
                    keys = (industry, values.number_key(float(age)), day)
                    pairs = zip(component_ids, keys, strict=True)
                    value_rows += [(c, k, customer_id) for c, k in pairs]
                value_rows.sort()
                yield customer_rows, value_rows


async def filter_time(database: Database, user: User, component_id: str) -> tuple[float, int]:
    query = CustomerQuery.model_validate({"components": [{"id": component_id, "value": "行业7"}]})
    times = []
    total = 0
    for _ in range(7):
        async with database.transaction() as session:
            started = time.perf_counter()
            _, total, _ = await customers.list_customers(session, user, query, Settings())
            times.append(time.perf_counter() - started)
    return statistics.median(times), total


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="highseas-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    set_service_zone(Settings(database_url=url, data_dir=workdir).zone)
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    env = {**os.environ, "HIGHSEAS_DATABASE_URL": url, "HIGHSEAS_DATA_DIR": str(workdir)}
    first = max(1, args.rows // 10)
    paths = [workdir / "pool-first.csv", workdir / "pool-rest.csv"]
    write_csv(paths[0], range(first), seed=1)
    write_csv(paths[1], range(first, args.rows), seed=2)
    user, industry = await make_owner(database)
    dialect = database.engine.dialect.name
    print(f"highseas pool load bench: {args.rows:,} rows, 3 components, {dialect}")

    cli_first = cli_import(paths[0], user, env)
    small_filter, small_total = await filter_time(database, user, industry)
    cli_rest = cli_import(paths[1], user, env)
    large_filter, large_total = await filter_time(database, user, industry)
    floor = await baseline(database, paths)
    storage = await storage_floor(database, user, paths) if dialect == "sqlite" else None
    cli = cli_first + cli_rest
    print(f"  highseas pool import (CLI)     {cli:8.2f} s   ({args.rows / cli:,.0f} rows/s)")
    print(f"  baseline: csv + executemany    {floor:8.2f} s   ({args.rows / floor:,.0f} rows/s)")
    print(f"  ratio CLI / baseline           {cli / floor:8.2f}x   (goal: within 2x on SQLite)")
    if storage is not None:
        rate = args.rows / storage
        print(f"  storage floor (see README)     {storage:8.2f} s   ({rate:,.0f} rows/s)")
        print(f"  ratio storage floor / baseline {storage / floor:8.2f}x   (the schema's own cost)")
        print(f"  ratio CLI / storage floor      {cli / storage:8.2f}x   (checks, encoding)")
    print(
        f"  component filter (0.1%)  at {first:>9,} rows: {small_filter * 1000:7.1f} ms"
        f" ({small_total} matches)"
    )
    print(
        f"  component filter (0.1%)  at {args.rows:>9,} rows: {large_filter * 1000:7.1f} ms"
        f" ({large_total} matches)"
    )
    await database.dispose()


if __name__ == "__main__":
    asyncio.run(main())
