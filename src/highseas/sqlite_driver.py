"""SQLite statements run on the event loop: the connection behind highseas' SQLite engine.

aiosqlite runs every statement on a thread of its own and hands the result back to the event
loop, which costs about 300 µs of CPU per statement on this stack, while the statement itself
(a point lookup, one row inserted) takes 5–10 µs inside SQLite. This module gives SQLAlchemy's
aiosqlite dialect a connection with the same asynchronous interface that runs each statement
where it is issued: about 50 µs through the whole engine (ADR 0009). Two kinds of work still go
to a thread, so the event loop is never held for long:

- **waiting for the write lock.** The connection's busy timeout is 0. A statement started
  outside a transaction (``BEGIN IMMEDIATE`` above all) that finds the database locked by
  another process is retried on a thread, where SQLite's busy handler waits up to
  ``BUSY_TIMEOUT_MS``. A statement that failed that way did nothing, so the retry is exact.
- **bulk work** (an import chunk, a batch of a pool import, a large delete): code that runs
  such a statement wraps it in ``offloaded()``; and the COMMIT (or ROLLBACK) of a
  transaction that changed more than ``BULK_ROWS`` rows.

Only one coroutine uses a connection at a time (SQLAlchemy's pool hands it out, and its
adapter holds a lock per statement), so the thread and the event loop never use it at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

BUSY_TIMEOUT_MS = 30_000
BULK_ROWS = 1_000  # a transaction that changed more rows commits on a thread
# 64 MiB of page cache (allocated as used): a large pool's index pages stay in memory instead
# of being re-read on every random insert (the default is 2 MiB).
_SETUP = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-65536",
)

_offloaded: ContextVar[bool] = ContextVar("highseas_sqlite_offloaded", default=False)
T = TypeVar("T")


@contextmanager
def offloaded() -> Iterator[None]:
    """Statements issued inside the block run on a thread: for work that takes long enough
    (tens of milliseconds and more) to hold up every other request of the process."""
    token = _offloaded.set(True)
    try:
        yield
    finally:
        _offloaded.reset(token)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


class Connection:
    """What SQLAlchemy's aiosqlite adapter uses of ``aiosqlite.Connection``."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        # The adapter reads it to tell an open connection from a closed one.
        self._connection: sqlite3.Connection | None = connection
        self._changes = connection.total_changes  # rows changed until the last COMMIT

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        idle = not self._conn.in_transaction
        try:
            if _offloaded.get():
                return await asyncio.to_thread(function, *args)
            return function(*args)
        except sqlite3.OperationalError as error:
            if not (idle and _is_busy(error)):
                raise
        return await asyncio.to_thread(self._waiting, function, *args)

    def _waiting(self, function: Callable[..., T], *args: Any) -> T:
        """On a thread: ``function`` with SQLite's busy handler waiting for the lock."""
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            return function(*args)
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")

    def cursor(self) -> Cursor:
        return Cursor(self, self._conn.cursor())

    async def commit(self) -> None:
        await self._end(self._conn.commit)

    async def rollback(self) -> None:
        await self._end(self._conn.rollback)

    async def _end(self, function: Callable[[], None]) -> None:
        """A transaction that changed many rows ends on a thread: its commit writes out their
        pages, and the WAL checkpoint that may follow copies them into the database."""
        changed = self._conn.total_changes - self._changes
        try:
            if changed > BULK_ROWS:
                await asyncio.to_thread(function)
            else:
                await self.run(function)
        finally:
            self._changes = self._conn.total_changes

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Closes at once (SQLAlchemy's ``terminate``)."""
        self._connection = None
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level


class Cursor:
    """What SQLAlchemy's aiosqlite adapter uses of ``aiosqlite.Cursor``."""

    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        await self._connection.run(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Sequence[Sequence[Any]]) -> Cursor:
        await self._connection.run(self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return await self._connection.run(self._cursor.fetchone)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return await self._connection.run(self._cursor.fetchmany, size or self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return await self._connection.run(self._cursor.fetchall)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


async def connect(path: str) -> Connection:
    """A connection in autocommit mode (highseas emits ``BEGIN IMMEDIATE`` itself), WAL,
    ``synchronous=NORMAL``, foreign keys on; it waits for another process's lock on a thread
    (see the module docstring)."""
    connection = Connection(
        sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    )
    for pragma in _SETUP:
        await connection.run(connection._conn.execute, pragma)
    return connection
