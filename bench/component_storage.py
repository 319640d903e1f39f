"""Benchmark: how to store per-user custom component values of customers.

Measures, on SQLite and PostgreSQL, with raw SQL (stdlib sqlite3, psycopg 3):

  base  customers only, no component values (reference for the write cost)
  A     values table (EAV): customer_values(component_id, value_key, customer_id), one text
        column for every type; numbers as an order-preserving 16-hex-char key, dates ISO
  B0    JSON column, no index on it (SQLite; the same database as B2, index use suppressed)
  B1    JSONB column + GIN (jsonb_path_ops), equality through @> (PostgreSQL only)
  B2    JSON column + one expression index per component (DDL per component)
  C     typed values table (value_text / value_num / value_date) + partial indexes

For each size: load time (+ PostgreSQL VACUUM ANALYZE), size on disk, the time to update one
component of 10k customers, for B2 the CREATE INDEX a new component needs, then the filters:
page queries (newest 50) and counts, cold-ish (fresh connection, a key not queried before)
and warm (same connection, same key), median of --runs, with the plan of each query. A and C
are queried in two forms, ``customers.id IN (SELECT ...)`` and a JOIN; SQLite databases are
queried before and after ANALYZE (planner statistics change the plans there).
Results: bench/results/component_storage.md.

    .venv/bin/python bench/component_storage.py [--sizes 100000,1000000] [--postgres-url URL]
"""

# ruff: noqa: S608, PLR0911, PLR0915, E501

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
CHUNK = 50_000
PAGE = 50
UPDATES = 10_000
LOAD_AT_START = ["?"]
SLOW_S = 0.25  # a query slower than this (a scan) gets --scan-runs runs instead of --runs

USER_A = uuid.UUID("0b5e6c4e-2f3a-4a53-9a6b-000000000001")  # the tenant we query
USER_B = uuid.UUID("0b5e6c4e-2f3a-4a53-9a6b-000000000002")  # another tenant (n/10 rows)
# component ids: (text, number, date) per tenant; ids are global, so unique across tenants
COMP_A = (101, 102, 103)
COMP_B = (201, 202, 203)
NEW_COMP = 104  # a component added after the load (B2 needs an index for it)

DAY0 = dt.date(2024, 1, 1)
DATES = [(DAY0 + dt.timedelta(days=d)).isoformat() for d in range(366)]
TS0 = dt.datetime(2024, 1, 1)


# --------------------------------------------------------------------------------------------
# order-preserving key for numbers


def number_key(x: float) -> str:
    """16 hex chars whose byte order is the numeric order of the double ``x``.

    Positive doubles: flip the sign bit; negative: invert every bit. -0.0 becomes 0.0; NaN is
    refused (a filter value of NaN is meaningless)."""
    x = float(x)
    if math.isnan(x):
        raise ValueError("NaN has no order")
    if x == 0.0:
        x = 0.0
    (u,) = struct.unpack(">Q", struct.pack(">d", x))
    u = u ^ 0xFFFF_FFFF_FFFF_FFFF if u >> 63 else u | 0x8000_0000_0000_0000
    return f"{u:016x}"


def _check_number_key() -> None:
    xs = [-math_inf, -1e300, -2.5, -1.0, -1e-300, 0.0, 1e-300, 1.0, 2.5, 99999.0, 1e300, math_inf]
    keys = [number_key(x) for x in xs]
    assert keys == sorted(keys), keys
    assert number_key(-0.0) == number_key(0.0)
    rng = random.Random(1)
    sample = [rng.uniform(-1e6, 1e6) for _ in range(10_000)] + list(range(-50, 50))
    assert sorted(sample) == sorted(sample, key=number_key)


math_inf = float("inf")


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Dataset:
    n: int  # customers of the queried tenant
    rows: list[tuple[int, bool, str, str, int, int, str, int, str]] = field(default_factory=list)
    # (id, is_tenant_a, phone, name, operator, created_offset_s, text, number, date)
    expected: dict[tuple[str, Any], list[int]] = field(default_factory=dict)  # memo of matches

    def chunks(self) -> Iterator[list[tuple[int, bool, str, str, int, int, str, int, str]]]:
        for i in range(0, len(self.rows), CHUNK):
            yield self.rows[i : i + CHUNK]


def make_dataset(n: int, seed: int = 42) -> Dataset:
    rng = random.Random(seed)
    total = n + n // 10
    rows = []
    for i in range(1, total + 1):
        rows.append(
            (
                i,
                i % 11 != 0,  # every 11th customer belongs to the other tenant
                f"13{i:09d}",
                f"客户{i}",
                rng.randrange(4),
                i * 30,
                f"label-{rng.randrange(1000):04d}",
                rng.randrange(100_000),
                DATES[rng.randrange(366)],
            )
        )
    return Dataset(n=n, rows=rows)


def comps(row: tuple[Any, ...]) -> tuple[int, int, int]:
    return COMP_A if row[1] else COMP_B


# --------------------------------------------------------------------------------------------
# queries

# (name, kind, warm param, cold params); kinds: eq, range, day, prefix, contains
TEXT_WARM = "label-0042"
TEXT_COLD = [f"label-{k:04d}" for k in (101, 202, 303, 404, 505, 606, 707)]
NUM_WARM = (50_000, 50_099)
NUM_COLD = [(k, k + 99) for k in (10_300, 20_700, 31_100, 41_500, 61_900, 72_300, 82_700)]
DAY_WARM = "2024-07-01"
DAY_COLD = [
    "2024-02-03",
    "2024-03-05",
    "2024-04-07",
    "2024-05-09",
    "2024-08-11",
    "2024-09-13",
    "2024-10-15",
]
PREFIX_WARM = "label-004"
PREFIX_COLD = [f"label-{k:03d}" for k in (11, 22, 33, 44, 55, 66, 77)]
CONTAINS_WARM = "042"
CONTAINS_COLD = ["013", "024", "035", "046", "057", "068", "079"]  # 11 labels each, like "042"


@dataclass(frozen=True)
class Query:
    name: str
    kind: str  # eq | range | day | prefix | contains
    count: bool  # count(*) instead of the newest page
    with_operator: bool = False
    warm: Any = None
    cold: Sequence[Any] = ()


QUERIES = [
    Query("text_eq", "eq", False, warm=TEXT_WARM, cold=TEXT_COLD),
    Query("text_eq+operator", "eq", False, True, warm=TEXT_WARM, cold=TEXT_COLD),
    Query("num_range", "range", False, warm=NUM_WARM, cold=NUM_COLD),
    Query("date_day", "day", False, warm=DAY_WARM, cold=DAY_COLD),
    Query("text_prefix", "prefix", False, warm=PREFIX_WARM, cold=PREFIX_COLD),
    Query("count(text_eq)", "eq", True, warm=TEXT_WARM, cold=TEXT_COLD),
    Query("count(num_range)", "range", True, warm=NUM_WARM, cold=NUM_COLD),
    Query("text_contains", "contains", False, warm=CONTAINS_WARM, cold=CONTAINS_COLD),
]


def prefix_upper(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def matches(row: tuple[Any, ...], q: Query, param: Any) -> bool:
    if not row[1]:
        return False
    if q.with_operator and row[4] != 1:
        return False
    if q.kind == "eq":
        return bool(row[6] == param)
    if q.kind == "range":
        return bool(param[0] <= row[7] <= param[1])
    if q.kind == "day":
        return bool(row[8] == param)
    if q.kind == "prefix":
        return bool(row[6].startswith(param))
    return bool(param in row[6])


def expected(ds: Dataset, q: Query, param: Any) -> Any:
    key = (q.name, param)
    if key not in ds.expected:
        ds.expected[key] = [r[0] for r in ds.rows if matches(r, q, param)]
    ids = ds.expected[key]
    if q.count:
        return len(ids)
    return sorted(ids, reverse=True)[:PAGE], len(ids)


# A predicate builder: (kind, dialect, param) -> (join clause, where fragment, params)
Pred = Callable[[str, str, Any], tuple[str, str, list[Any]]]


def pred_values(typed: bool, join: bool) -> Pred:
    """Values table (A: one text key column; C: typed columns), as IN (subquery) or JOIN."""
    table = "customer_values_typed" if typed else "customer_values"

    def pred(kind: str, dialect: str, p: Any) -> tuple[str, str, list[Any]]:
        text, num, day = COMP_A
        tcol = "v.value_text" if typed else "v.value_key"
        if kind == "eq":
            comp, cond, params = text, f"{tcol} = ?", [p]
        elif kind == "range":
            comp = num
            if typed:
                cond, params = "v.value_num BETWEEN ? AND ?", [float(p[0]), float(p[1])]
            else:
                cond, params = "v.value_key BETWEEN ? AND ?", [number_key(p[0]), number_key(p[1])]
        elif kind == "day":
            col = "v.value_date" if typed else "v.value_key"
            cast = "CAST(? AS date)" if typed and dialect == "pg" else "?"
            comp, cond, params = day, f"{col} = {cast}", [p]
        elif kind == "prefix":
            comp, cond, params = text, f"{tcol} >= ? AND {tcol} < ?", [p, prefix_upper(p)]
        else:
            comp, cond, params = text, f"{tcol} LIKE ?", [f"%{p}%"]
        if join:
            return (
                f" JOIN {table} v ON v.customer_id = c.id",
                f"v.component_id = ? AND {cond}",
                [comp, *params],
            )
        sub = f"c.id IN (SELECT v.customer_id FROM {table} v WHERE v.component_id = ? AND {cond})"
        return "", sub, [comp, *params]

    return pred


def json_expr(dialect: str, comp: int, typ: str, plain: bool = False) -> str:
    """The exact expression the B2 expression index is built on (queries must repeat it)."""
    if dialect == "sqlite":
        e = f"json_extract(c.components, '$.\"{comp}\"')"
        return "+" + e if plain else e  # unary + : same value, no index match
    if typ == "num":
        return f"((c.components ->> '{comp}')::float8)"
    return f"(c.components ->> '{comp}')"


def pred_json(plain: bool, gin: bool) -> Pred:
    def pred(kind: str, dialect: str, p: Any) -> tuple[str, str, list[Any]]:
        text, num, day = COMP_A
        if gin and kind in ("eq", "day"):
            comp = text if kind == "eq" else day
            return "", "c.components @> CAST(? AS jsonb)", [json.dumps({str(comp): p})]
        t = json_expr(dialect, text, "text", plain)
        if kind == "eq":
            return "", f"{t} = ?", [p]
        if kind == "range":
            return "", f"{json_expr(dialect, num, 'num', plain)} BETWEEN ? AND ?", [p[0], p[1]]
        if kind == "day":
            return "", f"{json_expr(dialect, day, 'date', plain)} = ?", [p]
        if kind == "prefix":
            return "", f"{t} >= ? AND {t} < ?", [p, prefix_upper(p)]
        return "", f"{t} LIKE ?", [f"%{p}%"]

    return pred


def build_sql(q: Query, pred: Pred, dialect: str, param: Any, user: Any) -> tuple[str, list[Any]]:
    join, frag, params = pred(q.kind, dialect, param)
    where = "c.user_id = ?"
    args: list[Any] = [user]
    if q.with_operator:
        where += " AND c.operator = ?"
        args.append(1)
    where += " AND " + frag
    args += params
    if q.count:
        sql = f"SELECT count(*) FROM customers c{join} WHERE {where}"
    else:
        sql = f"SELECT c.id, c.phone, c.name FROM customers c{join} WHERE {where} ORDER BY c.id DESC LIMIT {PAGE}"
    if dialect == "pg":
        sql = sql.replace("?", "%s")
    return sql, args


# --------------------------------------------------------------------------------------------
# engines


class Engine:
    dialect = ""

    def connect(self) -> Any:
        raise NotImplementedError

    def user(self, u: uuid.UUID) -> Any:
        raise NotImplementedError

    def explain(self, conn: Any, sql: str, args: list[Any]) -> str:
        raise NotImplementedError


class SqliteEngine(Engine):
    dialect = "sqlite"

    def __init__(self, path: str, cache_mib: int = 0) -> None:
        self.path = path
        self.cache_mib = cache_mib

    def connect(self) -> sqlite3.Connection:
        # the application's settings (src/highseas/db.py), default cache size
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if self.cache_mib:
            conn.execute(f"PRAGMA cache_size=-{self.cache_mib * 1024}")
        return conn

    def user(self, u: uuid.UUID) -> str:
        return u.hex  # what SQLAlchemy's Uuid stores on SQLite

    def explain(self, conn: Any, sql: str, args: list[Any]) -> str:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
        depth: dict[int, int] = {0: -1}
        out = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            out.append("  " * depth[node] + detail)
        return "\n".join(out)

    def size(self) -> int:
        return sum(
            os.path.getsize(self.path + s) for s in ("", "-wal") if os.path.exists(self.path + s)
        )


class PgEngine(Engine):
    dialect = "pg"

    def __init__(self, url: str) -> None:
        self.url = url

    def connect(self) -> psycopg.Connection[Any]:
        # prepare_threshold=None: every execution planned with its own parameters
        return psycopg.connect(self.url, prepare_threshold=None)

    def user(self, u: uuid.UUID) -> uuid.UUID:
        return u

    def explain(self, conn: Any, sql: str, args: list[Any]) -> str:
        rows = conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql, args
        ).fetchall()
        return "\n".join(r[0] for r in rows)


# --------------------------------------------------------------------------------------------
# designs


@dataclass
class Design:
    name: str
    dialect: str
    ddl: list[str]
    variants: list[Variant]  # query forms measured on this database; none: load only
    json_col: bool = False
    values: str = ""  # "", "eav", "typed"
    update_sql: str = ""
    add_component_ddl: str = ""


@dataclass(frozen=True)
class Variant:
    label: str
    pred: Pred
    fresh_only: bool = False  # SQLite: measure only before ANALYZE (a full scan either way)


SQLITE_CUSTOMERS = """CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    name TEXT NOT NULL,
    operator INTEGER NOT NULL,
    created_at TEXT NOT NULL{json}
)"""
PG_CUSTOMERS = """CREATE TABLE customers (
    id integer PRIMARY KEY,
    user_id uuid NOT NULL,
    phone text NOT NULL,
    name text NOT NULL,
    operator smallint NOT NULL,
    created_at timestamptz NOT NULL{json}
)"""
CUSTOMER_INDEXES = [
    "CREATE UNIQUE INDEX ux_customers_user_phone ON customers (user_id, phone)",
    "CREATE INDEX ix_customers_user_created ON customers (user_id, created_at)",
]


def designs(dialect: str) -> list[Design]:
    sqlite = dialect == "sqlite"
    cust = SQLITE_CUSTOMERS if sqlite else PG_CUSTOMERS
    jtype = "TEXT" if sqlite else "jsonb"
    plain = [cust.format(json=""), *CUSTOMER_INDEXES]
    with_json = [cust.format(json=f",\n    components {jtype} NOT NULL"), *CUSTOMER_INDEXES]
    out = [Design("base", dialect, plain, [])]
    if sqlite:
        eav = """CREATE TABLE customer_values (
    component_id INTEGER NOT NULL,
    value_key TEXT NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    PRIMARY KEY (component_id, value_key, customer_id)
) WITHOUT ROWID"""
        typed = """CREATE TABLE customer_values_typed (
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    component_id INTEGER NOT NULL,
    value_text TEXT,
    value_num REAL,
    value_date TEXT,
    PRIMARY KEY (customer_id, component_id)
) WITHOUT ROWID"""
        typed_idx = [
            f"CREATE INDEX ix_vt_{c} ON customer_values_typed (component_id, value_{c}) WHERE value_{c} IS NOT NULL"
            for c in ("text", "num", "date")
        ]
    else:
        eav = """CREATE TABLE customer_values (
    component_id integer NOT NULL,
    value_key text COLLATE "C" NOT NULL,
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    PRIMARY KEY (component_id, value_key, customer_id)
)"""
        typed = """CREATE TABLE customer_values_typed (
    customer_id integer NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    component_id integer NOT NULL,
    value_text text COLLATE "C",
    value_num float8,
    value_date date,
    PRIMARY KEY (customer_id, component_id)
)"""
        typed_idx = [
            f"CREATE INDEX ix_vt_{c} ON customer_values_typed (component_id, value_{c}, customer_id) WHERE value_{c} IS NOT NULL"
            for c in ("text", "num", "date")
        ]
    p = "?" if sqlite else "%s"
    out.append(
        Design(
            "A",
            dialect,
            [
                *plain,
                eav,
                "CREATE UNIQUE INDEX ux_values_customer ON customer_values (customer_id, component_id)",
            ],
            [
                Variant("A in", pred_values(typed=False, join=False)),
                Variant("A join", pred_values(typed=False, join=True)),
            ],
            values="eav",
            update_sql=f"UPDATE customer_values SET value_key = {p} WHERE customer_id = {p} AND component_id = {p}",
        )
    )
    expr_idx = []
    for comps_ in (COMP_A, COMP_B):
        for comp, typ in zip(comps_, ("text", "num", "date"), strict=True):
            e = json_expr(dialect, comp, typ).replace("c.components", "components")
            expr_idx.append(f"CREATE INDEX ix_comp_{comp} ON customers ({e})")
    if sqlite:
        json_update = f"UPDATE customers SET components = json_set(components, '$.\"{COMP_A[1]}\"', {p}) WHERE id = {p}"
    else:
        json_update = f"UPDATE customers SET components = jsonb_set(components, '{{{COMP_A[1]}}}', to_jsonb({p}::float8)) WHERE id = {p}"
    if not sqlite:
        out.append(
            Design(
                "B1",
                dialect,
                [
                    *with_json,
                    "CREATE INDEX ix_customers_components ON customers USING gin (components jsonb_path_ops)",
                ],
                [Variant("B1", pred_json(plain=False, gin=True))],
                json_col=True,
                update_sql=json_update,
            )
        )
    new_e = json_expr(dialect, NEW_COMP, "text").replace("c.components", "components")
    out.append(
        Design(
            "B2",
            dialect,
            [*with_json, *expr_idx],
            [
                Variant("B2", pred_json(plain=False, gin=False)),
                *(
                    [Variant("B0 (no index)", pred_json(plain=True, gin=False), fresh_only=True)]
                    if sqlite
                    else []
                ),
            ],
            json_col=True,
            update_sql=json_update,
            add_component_ddl=f"CREATE INDEX ix_comp_{NEW_COMP} ON customers ({new_e})",
        )
    )
    out.append(
        Design(
            "C",
            dialect,
            [*plain, typed, *typed_idx],
            [
                Variant("C in", pred_values(typed=True, join=False)),
                Variant("C join", pred_values(typed=True, join=True)),
            ],
            values="typed",
            update_sql=f"UPDATE customer_values_typed SET value_num = {p} WHERE customer_id = {p} AND component_id = {p}",
        )
    )
    return out


# --------------------------------------------------------------------------------------------
# loading


def json_doc(row: tuple[Any, ...]) -> str:
    t, n, d = comps(row)
    return f'{{"{t}": "{row[6]}", "{n}": {row[7]}, "{d}": "{row[8]}"}}'


def sqlite_customer(row: tuple[Any, ...], with_json: bool) -> tuple[Any, ...]:
    created = (TS0 + dt.timedelta(seconds=row[5])).isoformat(" ") + ".000000"
    base = (row[0], (USER_A if row[1] else USER_B).hex, row[2], row[3], row[4], created)
    return (*base, json_doc(row)) if with_json else base


def load_sqlite(eng: SqliteEngine, d: Design, ds: Dataset) -> None:
    conn = eng.connect()
    for stmt in d.ddl:
        conn.execute(stmt)
    cols = "id, user_id, phone, name, operator, created_at" + (", components" if d.json_col else "")
    marks = ", ".join("?" * (7 if d.json_col else 6))
    ins_c = f"INSERT INTO customers ({cols}) VALUES ({marks})"
    for chunk in ds.chunks():
        conn.execute("BEGIN")
        conn.executemany(ins_c, (sqlite_customer(r, d.json_col) for r in chunk))
        if d.values == "eav":
            conn.executemany(
                "INSERT INTO customer_values (component_id, value_key, customer_id) VALUES (?, ?, ?)",
                (
                    v
                    for r in chunk
                    for v in (
                        (comps(r)[0], r[6], r[0]),
                        (comps(r)[1], number_key(r[7]), r[0]),
                        (comps(r)[2], r[8], r[0]),
                    )
                ),
            )
        elif d.values == "typed":
            conn.executemany(
                "INSERT INTO customer_values_typed (customer_id, component_id, value_text, value_num, value_date) VALUES (?, ?, ?, ?, ?)",
                (
                    v
                    for r in chunk
                    for v in (
                        (r[0], comps(r)[0], r[6], None, None),
                        (r[0], comps(r)[1], None, float(r[7]), None),
                        (r[0], comps(r)[2], None, None, r[8]),
                    )
                ),
            )
        conn.execute("COMMIT")
    conn.close()


def copy_text(rows: Iterator[tuple[Any, ...]]) -> str:
    # COPY text format; none of our values holds a tab, newline or backslash
    return "".join("\t".join("\\N" if v is None else str(v) for v in r) + "\n" for r in rows)


def load_pg(eng: PgEngine, d: Design, ds: Dataset) -> None:
    with eng.connect() as conn:
        for stmt in d.ddl:
            conn.execute(stmt)
        conn.commit()
        cols = "id, user_id, phone, name, operator, created_at" + (
            ", components" if d.json_col else ""
        )
        for chunk in ds.chunks():
            with conn.cursor() as cur:
                with cur.copy(f"COPY customers ({cols}) FROM STDIN") as cp:
                    cp.write(
                        copy_text(
                            (
                                r[0],
                                USER_A if r[1] else USER_B,
                                r[2],
                                r[3],
                                r[4],
                                (TS0 + dt.timedelta(seconds=r[5])).isoformat(" ") + "+00",
                                *((json_doc(r),) if d.json_col else ()),
                            )
                            for r in chunk
                        )
                    )
                if d.values == "eav":
                    with cur.copy(
                        "COPY customer_values (component_id, value_key, customer_id) FROM STDIN"
                    ) as cp:
                        cp.write(
                            copy_text(
                                v
                                for r in chunk
                                for v in (
                                    (comps(r)[0], r[6], r[0]),
                                    (comps(r)[1], number_key(r[7]), r[0]),
                                    (comps(r)[2], r[8], r[0]),
                                )
                            )
                        )
                elif d.values == "typed":
                    with cur.copy(
                        "COPY customer_values_typed (customer_id, component_id, value_text, value_num, value_date) FROM STDIN"
                    ) as cp:
                        cp.write(
                            copy_text(
                                v
                                for r in chunk
                                for v in (
                                    (r[0], comps(r)[0], r[6], None, None),
                                    (r[0], comps(r)[1], None, float(r[7]), None),
                                    (r[0], comps(r)[2], None, None, r[8]),
                                )
                            )
                        )
            conn.commit()


def pg_size(eng: PgEngine) -> int:
    with eng.connect() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchone()
        return int(row[0]) if row else 0


def pg_drop_all(eng: PgEngine) -> None:
    with eng.connect() as conn:
        conn.execute(
            "DROP TABLE IF EXISTS customer_values, customer_values_typed, customers CASCADE"
        )
        conn.commit()


def run_updates(eng: Engine, d: Design, ds: Dataset) -> float:
    rng = random.Random(7)
    pool = [r[0] for r in ds.rows if r[1]]
    ids = rng.sample(pool, min(UPDATES, len(pool) // 2))
    vals = [rng.randrange(100_000) for _ in ids]
    if d.values == "eav":
        args: list[tuple[Any, ...]] = [
            (number_key(v), i, COMP_A[1]) for i, v in zip(ids, vals, strict=True)
        ]
    elif d.values == "typed":
        args = [(float(v), i, COMP_A[1]) for i, v in zip(ids, vals, strict=True)]
    else:
        args = [(v, i) for i, v in zip(ids, vals, strict=True)]
    conn = eng.connect()
    try:
        t0 = time.perf_counter()
        if isinstance(eng, SqliteEngine):
            conn.execute("BEGIN")
            conn.executemany(d.update_sql, args)
            conn.execute("COMMIT")
        else:
            with conn.cursor() as cur:
                cur.executemany(d.update_sql, args)
            conn.commit()
        elapsed = time.perf_counter() - t0
        # put the values back, so every design is queried on the same data
        wanted = set(ids)
        orig = {r[0]: r[7] for r in ds.rows if r[0] in wanted}
        if d.values == "eav":
            back: list[tuple[Any, ...]] = [(number_key(orig[i]), i, COMP_A[1]) for i in ids]
        elif d.values == "typed":
            back = [(float(orig[i]), i, COMP_A[1]) for i in ids]
        else:
            back = [(orig[i], i) for i in ids]
        if isinstance(eng, SqliteEngine):
            conn.execute("BEGIN")
            conn.executemany(d.update_sql, back)
            conn.execute("COMMIT")
        else:
            with conn.cursor() as cur:
                cur.executemany(d.update_sql, back)
            conn.commit()
    finally:
        conn.close()
    return elapsed


# --------------------------------------------------------------------------------------------
# measuring queries


@dataclass
class QResult:
    dialect: str
    design: str
    stats: str
    n: int
    query: str
    rows: int  # matches of the warm key (count, or all matches for a page query)
    cold_ms: float
    warm_ms: float
    runs: int
    sql: str
    access: str
    plan: str
    ok: bool


def access_path(dialect: str, plan: str) -> str:
    """A one-line summary of the plan: what is scanned, which indexes are searched."""
    parts: list[str] = []
    if dialect == "sqlite":
        for line in plan.splitlines():
            s = line.strip()
            m = re.match(
                r"(SCAN|SEARCH) (\w+)(?: USING (?:COVERING )?(INDEX \w+|PRIMARY KEY|INTEGER PRIMARY KEY|ROWID))?",
                s,
            )
            if m:
                what = m.group(3) or ""
                what = what.replace("INDEX ", "").replace("INTEGER PRIMARY KEY", "rowid")
                parts.append(
                    f"{m.group(1).lower()} {m.group(2)}" + (f" via {what}" if what else "")
                )
            elif s.startswith("USE TEMP B-TREE"):
                parts.append("temp b-tree for " + s.split(" FOR ", 1)[-1].lower())
    else:
        for line in plan.splitlines():
            s = line.strip().lstrip("-> ").strip()
            m = re.match(r"(Parallel )?(Seq Scan) on (\w+)", s)
            if m:
                parts.append(f"seq scan {m.group(3)}")
                continue
            m = re.match(
                r"(Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)",
                s,
            )
            if m:
                kind = {
                    "Index Only Scan": "index-only",
                    "Index Scan": "index",
                    "Bitmap Index Scan": "bitmap",
                }[m.group(1)]
                parts.append(f"{kind} {m.group(2)}")
    return "; ".join(parts)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def execute(conn: Any, sql: str, args: list[Any]) -> list[Any]:
    return list(conn.execute(sql, args).fetchall())


def measure(
    eng: Engine, v: Variant, stats: str, ds: Dataset, *, runs: int, scan_runs: int
) -> list[QResult]:
    user = eng.user(USER_A)
    out = []
    for q in QUERIES:
        sql, args = build_sql(q, v.pred, eng.dialect, q.warm, user)
        conn = eng.connect()
        try:
            plan = eng.explain(conn, sql, args)
            t0 = time.perf_counter()
            execute(conn, sql, args)
            probe = time.perf_counter() - t0
        finally:
            conn.close()
        access = access_path(eng.dialect, plan)
        n_runs = scan_runs if probe > SLOW_S else runs
        # cold-ish: a fresh connection each run (empty SQLite page cache, new PostgreSQL
        # backend), a key not queried before; the OS page cache and shared_buffers stay warm
        cold = []
        for param in q.cold[:n_runs]:
            c_sql, c_args = build_sql(q, v.pred, eng.dialect, param, user)
            conn = eng.connect()
            try:
                conn.execute("SELECT 1 FROM customers LIMIT 0").fetchall()  # catalog loaded
                t0 = time.perf_counter()
                execute(conn, c_sql, c_args)
                cold.append(time.perf_counter() - t0)
            finally:
                conn.close()
        warm = []
        conn = eng.connect()
        try:
            result = execute(conn, sql, args)
            for _ in range(n_runs):
                t0 = time.perf_counter()
                result = execute(conn, sql, args)
                warm.append(time.perf_counter() - t0)
        finally:
            conn.close()
        exp = expected(ds, q, q.warm)
        if q.count:
            ok = result[0][0] == exp
            nrows = exp
        else:
            ok = [r[0] for r in result] == exp[0]
            nrows = exp[1]
        if not ok:
            print(f"  !! {eng.dialect} {v.label} {q.name}: wrong result", file=sys.stderr)
        r = QResult(
            eng.dialect,
            v.label,
            stats,
            ds.n,
            q.name,
            nrows,
            median(cold) * 1e3,
            median(warm) * 1e3,
            n_runs,
            sql,
            access,
            plan,
            ok,
        )
        out.append(r)
        print(
            f"  {eng.dialect:6} {v.label:14} {stats:8} n={ds.n:>8} {q.name:18} rows={nrows:>6} cold={r.cold_ms:9.2f} ms "
            f"warm={r.warm_ms:9.2f} ms (x{n_runs}) [{access}]{'' if ok else '  WRONG'}",
            flush=True,
        )
    return out


# --------------------------------------------------------------------------------------------
# main


@dataclass
class LoadResult:
    dialect: str
    design: str
    n: int
    rows_written: int
    load_s: float
    analyze_s: float
    size_bytes: int
    update_s: float
    add_component_s: float | None


def rows_written(d: Design, ds: Dataset) -> int:
    return len(ds.rows) * (4 if d.values else 1)


def bench_sqlite(
    workdir: str, ds: Dataset, *, runs: int, scan_runs: int, only: set[str], cache_mib: int
) -> tuple[list[LoadResult], list[QResult]]:
    loads, queries = [], []
    for d in designs("sqlite"):
        if only and d.name not in only:
            continue
        path = os.path.join(workdir, f"{d.name}_{ds.n}.sqlite")
        eng = SqliteEngine(path, cache_mib)
        try:
            t0 = time.perf_counter()
            load_sqlite(eng, d, ds)
            load_s = time.perf_counter() - t0
            conn = eng.connect()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            size = eng.size()
            upd = run_updates(eng, d, ds) if d.update_sql else float("nan")
            add_s = None
            if d.add_component_ddl:
                conn = eng.connect()
                t0 = time.perf_counter()
                conn.execute(d.add_component_ddl)
                add_s = time.perf_counter() - t0
                conn.execute(f"DROP INDEX ix_comp_{NEW_COMP}")
                conn.close()
            # first as a fresh application database has it: no sqlite_stat1
            for v in d.variants:
                queries += measure(eng, v, "none", ds, runs=runs, scan_runs=scan_runs)
            conn = eng.connect()
            t0 = time.perf_counter()
            conn.execute("ANALYZE")
            analyze_s = time.perf_counter() - t0
            conn.close()
            for v in d.variants:
                if not v.fresh_only:
                    queries += measure(eng, v, "ANALYZE", ds, runs=runs, scan_runs=scan_runs)
            loads.append(
                LoadResult(
                    "sqlite", d.name, ds.n, rows_written(d, ds), load_s, analyze_s, size, upd, add_s
                )
            )
            print(
                f"  sqlite {d.name:4} n={ds.n:>8} load={load_s:7.2f} s analyze={analyze_s:5.2f} s size={size / 2**20:8.1f} MiB "
                f"update10k={upd:6.2f} s add_component={add_s}",
                flush=True,
            )
        finally:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
    return loads, queries


def bench_pg(
    url: str, ds: Dataset, runs: int, scan_runs: int, only: set[str]
) -> tuple[list[LoadResult], list[QResult]]:
    loads, queries = [], []
    eng = PgEngine(url)
    for d in designs("pg"):
        if only and d.name not in only:
            continue
        pg_drop_all(eng)
        t0 = time.perf_counter()
        load_pg(eng, d, ds)
        load_s = time.perf_counter() - t0
        with psycopg.connect(url, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute("VACUUM ANALYZE")
            analyze_s = time.perf_counter() - t0
        size = pg_size(eng)
        upd = run_updates(eng, d, ds) if d.update_sql else float("nan")
        add_s = None
        if d.add_component_ddl:
            with eng.connect() as conn:
                t0 = time.perf_counter()
                conn.execute(d.add_component_ddl)
                conn.commit()
                add_s = time.perf_counter() - t0
                conn.execute(f"DROP INDEX ix_comp_{NEW_COMP}")
                conn.commit()
        if d.update_sql:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")  # what autovacuum would do after the updates
        loads.append(
            LoadResult("pg", d.name, ds.n, rows_written(d, ds), load_s, analyze_s, size, upd, add_s)
        )
        print(
            f"  pg     {d.name:4} n={ds.n:>8} load={load_s:7.2f} s vacuum_analyze={analyze_s:5.2f} s size={size / 2**20:8.1f} MiB "
            f"update10k={upd:6.2f} s add_component={add_s}",
            flush=True,
        )
        for v in d.variants:
            queries += measure(eng, v, "VACUUM ANALYZE", ds, runs=runs, scan_runs=scan_runs)
    pg_drop_all(eng)
    return loads, queries


def bench_extras(
    workdir: str, pg_url: str | None, big: Dataset, small: Dataset, *, sqlite: bool
) -> list[LoadResult]:
    """Load-only variants: what the write cost of A depends on, and B2 with many components."""
    out: list[LoadResult] = []

    def sqlite_load(label: str, d: Design, ds: Dataset, cache_mib: int = 0) -> None:
        path = os.path.join(workdir, f"extra_{ds.n}.sqlite")
        eng = SqliteEngine(path, cache_mib)
        try:
            t0 = time.perf_counter()
            load_sqlite(eng, d, ds)
            load_s = time.perf_counter() - t0
            conn = eng.connect()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            out.append(
                LoadResult(
                    "sqlite",
                    label,
                    ds.n,
                    rows_written(d, ds),
                    load_s,
                    float("nan"),
                    eng.size(),
                    float("nan"),
                    None,
                )
            )
            print(f"  sqlite {label:30} n={ds.n:>8} load={load_s:7.2f} s", flush=True)
        finally:
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)

    def pg_load(label: str, d: Design, ds: Dataset) -> None:
        assert pg_url is not None
        eng = PgEngine(pg_url)
        pg_drop_all(eng)
        t0 = time.perf_counter()
        load_pg(eng, d, ds)
        load_s = time.perf_counter() - t0
        out.append(
            LoadResult(
                "pg",
                label,
                ds.n,
                rows_written(d, ds),
                load_s,
                float("nan"),
                pg_size(eng),
                float("nan"),
                None,
            )
        )
        print(f"  pg     {label:30} n={ds.n:>8} load={load_s:7.2f} s", flush=True)
        pg_drop_all(eng)

    many = [(t * 100 + 1, t * 100 + 2, t * 100 + 3) for t in range(1, 21)]  # 20 tenants x 3

    def many_indexes(dialect: str) -> Design:
        b2 = next(d for d in designs(dialect) if d.name == "B2")
        ddl = [x for x in b2.ddl if "ix_comp_" not in x]
        for comps_ in many:
            for comp, typ in zip(comps_, ("text", "num", "date"), strict=True):
                e = json_expr(dialect, comp, typ).replace("c.components", "components")
                ddl.append(f"CREATE INDEX ix_comp_{comp} ON customers ({e})")
        return Design("B2", dialect, ddl, [], json_col=True)

    def a_with_json(dialect: str) -> Design:
        """A plus the values as given in a JSON column of customers (a copy for reads)."""
        by_name = {d.name: d for d in designs(dialect)}
        ddl = [by_name["B2"].ddl[0], *by_name["A"].ddl[1:]]
        return Design("A", dialect, ddl, [], json_col=True, values="eav")

    if sqlite:
        sqlite_a = next(d for d in designs("sqlite") if d.name == "A")
        sqlite_load("A, cache_size 64 MiB", sqlite_a, big, cache_mib=64)
        sqlite_load("A + JSON copy on customers", a_with_json("sqlite"), big)
        sqlite_load("B2, 60 component indexes", many_indexes("sqlite"), small)
    if pg_url:
        pg_load("A + JSON copy on customers", a_with_json("pg"), big)
        pg_a = next(d for d in designs("pg") if d.name == "A")
        no_fk = [x.replace(" REFERENCES customers (id) ON DELETE CASCADE", "") for x in pg_a.ddl]
        pg_load("A, no foreign key", Design("A", "pg", no_fk, [], values="eav"), big)
        pg_load("B2, 60 component indexes", many_indexes("pg"), small)
    return out


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def machine_info(pg_url: str | None) -> list[str]:
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f"{kb / 2**20:.1f} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
            )
    except OSError:
        pass
    lines = [
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {os.cpu_count()} CPUs (`nproc`), {cpu}, RAM {mem}, {platform.platform()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, psycopg {psycopg.__version__} (libpq {psycopg.pq.version()})",
    ]
    if pg_url:
        with psycopg.connect(pg_url) as conn:
            v = conn.execute("SELECT version()").fetchone()
            settings = conn.execute(
                "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings "
                "WHERE name IN ('shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', 'random_page_cost', 'jit', 'synchronous_commit', 'fsync')"
            ).fetchone()
        lines.append(f"- {v[0] if v else '?'}")
        lines.append(f"- PostgreSQL settings: {settings[0] if settings else '?'}")
    try:
        tmp = tempfile.gettempdir()
        du = shutil.disk_usage(tmp)
        lines.append(f"- disk ({tmp}): {du.total / 2**30:.0f} GiB, {du.free / 2**30:.0f} GiB free")
    except (OSError, IndexError):
        pass
    return lines


def fmt_ms(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def report(
    loads: list[LoadResult],
    queries: list[QResult],
    sizes: list[int],
    info: list[str],
    elapsed: float,
) -> str:
    out = [
        "## Machine",
        "",
        *info,
        f"- bench wall time: {elapsed:.0f} s; load average at start {LOAD_AT_START[0]}, at end {loadavg()}",
        "",
    ]
    out += [
        "## Load (write cost)",
        "",
        "N = customers of the queried tenant; another tenant adds N/10 customers, so rows = 1.1 N customers "
        "(+ 3 values each for A and C). SQLite: executemany, commit every 50k customers. "
        "PostgreSQL: COPY (text format), commit every 50k customers; then VACUUM ANALYZE. SQLite: ANALYZE after the "
        "first round of queries. Sizes: SQLite file after a WAL checkpoint; PostgreSQL pg_total_relation_size of the tables. "
        "update 10k = set the number component of 10k random customers in one transaction.",
        "",
        "| db | design | N | rows written | load s | rows/s | (VACUUM) ANALYZE s | size MiB | update 10k s | add component (DDL) s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in loads:
        add = "" if r.add_component_s is None else f"{r.add_component_s:.2f}"
        upd = "" if math.isnan(r.update_s) else f"{r.update_s:.2f}"
        an = "" if math.isnan(r.analyze_s) else f"{r.analyze_s:.2f}"
        out.append(
            f"| {r.dialect} | {r.design} | {r.n:,} | {r.rows_written:,} | {r.load_s:.2f} | {r.rows_written / r.load_s:,.0f} | "
            f"{an} | {r.size_bytes / 2**20:.1f} | {upd} | {add} |"
        )
    out += [
        "",
        "## Filters",
        "",
        "Page = newest 50 (`ORDER BY id DESC LIMIT 50`) of tenant A; ms, median; "
        "cold-ish = fresh connection and a key not queried before; warm = same connection, same key. "
        "`matches` = all matching customers of the warm key.",
        "",
    ]
    big = max(sizes)
    small = min(sizes)
    head = "| db | design | stats | query | matches @N | " + " | ".join(
        f"cold {s:,} | warm {s:,}" for s in sizes
    )
    head += (
        f" | warm {big:,}/{small:,} | access path @{big:,} |"
        if len(sizes) > 1
        else f" | access path @{big:,} |"
    )
    out += [head, "|" + "---|" * (head.count("|") - 1)]
    keyed = {(q.dialect, q.design, q.stats, q.query, q.n): q for q in queries}
    seen: list[tuple[str, str, str, str]] = []
    for q in queries:
        k = (q.dialect, q.design, q.stats, q.query)
        if k not in seen:
            seen.append(k)
    for dialect, design, stats, name in seen:
        cells = []
        for s in sizes:
            r = keyed.get((dialect, design, stats, name, s))
            cells.append(f"{fmt_ms(r.cold_ms)} | {fmt_ms(r.warm_ms)}" if r else " | ")
        rb = keyed.get((dialect, design, stats, name, big))
        rs = keyed.get((dialect, design, stats, name, small))
        ratio = f" | {rb.warm_ms / rs.warm_ms:.1f}x" if len(sizes) > 1 and rb and rs else ""
        m = f"{rb.rows:,}" + ("" if rb.ok else " WRONG") if rb else ""
        out.append(
            f"| {dialect} | {design} | {stats} | {name} | {m} | "
            + " | ".join(cells)
            + ratio
            + f" | {rb.access if rb else ''} |"
        )
    out += ["", f"## Plans at N = {big:,}", ""]
    blocks: dict[tuple[str, str, str], list[QResult]] = {}
    for q in queries:
        if q.n == big:
            blocks.setdefault((q.dialect, q.design, q.stats), []).append(q)
    for (dialect, design, stats), qs in blocks.items():
        label = (
            "EXPLAIN QUERY PLAN"
            if dialect == "sqlite"
            else "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)"
        )
        out += [
            f"### {dialect} {design}, stats: {stats}",
            "",
            f"{label}; the text_eq query was:",
            "",
            "```sql",
            qs[0].sql,
            "```",
            "",
            "```",
        ]
        for q in qs:
            out += [f"-- {q.query}", q.plan]
        out += ["```", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes", default="100000,1000000", help="customers of the queried tenant, comma-separated"
    )
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("HIGHSEAS_BENCH_POSTGRES_URL", DEFAULT_PG_URL),
        help="server to create a scratch database on; 'none' to skip PostgreSQL",
    )
    ap.add_argument("--runs", type=int, default=5, help="timed runs per query (median)")
    ap.add_argument(
        "--scan-runs", type=int, default=3, help="timed runs for queries that scan all customers"
    )
    ap.add_argument("--designs", default="", help="only these designs, e.g. A,B2")
    ap.add_argument("--dbs", default="sqlite,pg")
    ap.add_argument(
        "--sqlite-cache-mib",
        type=int,
        default=0,
        help="PRAGMA cache_size; 0: SQLite's default (2 MiB), as the application",
    )
    ap.add_argument(
        "--extras",
        action="store_true",
        help="also load A with a 64 MiB SQLite cache, without its foreign key, and with a JSON copy "
        "of the values on customers (largest size), "
        "and B2 with 60 component indexes (smallest size)",
    )
    ap.add_argument(
        "--workdir", default=None, help="where the SQLite files go (default: a temp dir)"
    )
    ap.add_argument(
        "--markdown", default=None, help="also write the report (tables + plans) to this file"
    )
    args = ap.parse_args(argv)

    _check_number_key()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    only = {s.strip() for s in args.designs.split(",") if s.strip()}
    dbs = {s.strip() for s in args.dbs.split(",")}
    if args.postgres_url.lower() == "none":
        dbs.discard("pg")
    started = time.perf_counter()
    LOAD_AT_START[0] = loadavg()

    scratch_url = None
    admin_url = args.postgres_url
    scratch = f"bench_storage_{uuid.uuid4().hex[:8]}"
    if "pg" in dbs:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
        scratch_url = psycopg.conninfo.make_conninfo(admin_url, dbname=scratch)
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_storage_")
    loads: list[LoadResult] = []
    queries: list[QResult] = []
    built: dict[int, Dataset] = {}
    try:
        for n in sizes:
            t0 = time.perf_counter()
            ds = make_dataset(n)
            print(
                f"dataset n={ds.n} ({len(ds.rows)} customers in all) built in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            if "sqlite" in dbs:
                lr, qr = bench_sqlite(
                    workdir,
                    ds,
                    runs=args.runs,
                    scan_runs=args.scan_runs,
                    only=only,
                    cache_mib=args.sqlite_cache_mib,
                )
                loads += lr
                queries += qr
            if scratch_url:
                lr, qr = bench_pg(scratch_url, ds, args.runs, args.scan_runs, only)
                loads += lr
                queries += qr
            built[n] = ds
        if args.extras:
            print("extras", flush=True)
            loads += bench_extras(
                workdir,
                scratch_url,
                built[max(sizes)],
                built[min(sizes)],
                sqlite="sqlite" in dbs,
            )
    finally:
        if scratch_url:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    text = report(
        loads,
        [q for q in queries],
        [s for s in sizes],
        machine_info(args.postgres_url if "pg" in dbs else None),
        elapsed,
    )
    print()
    print(text.split("\n## Plans")[0])
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 0 if all(q.ok for q in queries) else 1


if __name__ == "__main__":
    sys.exit(main())
