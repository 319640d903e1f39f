"""highseas.sqlite_driver: statements on the event loop, waits and bulk work on a thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from highseas.db import Database
from highseas.sqlite_driver import BULK_ROWS, offloaded


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'driver.db'}")
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    try:
        yield database
    finally:
        await database.dispose()


async def _thread_of_statement(database: Database) -> int:
    async with database.transaction() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        raw.driver_connection._conn.create_function("thread", 0, threading.get_ident)
        return int((await session.execute(text("SELECT thread()"))).scalar_one())


async def test_a_statement_runs_on_the_event_loop_and_bulk_work_on_a_thread(
    database: Database,
) -> None:
    loop_thread = threading.get_ident()
    assert await _thread_of_statement(database) == loop_thread
    with offloaded():
        assert await _thread_of_statement(database) != loop_thread
    assert await _thread_of_statement(database) == loop_thread


class _RecordingCommits:
    """The driver's sqlite3 connection, noting the thread each commit runs on."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.commits: list[int] = []

    def commit(self) -> None:
        self.commits.append(threading.get_ident())
        self.connection.commit()

    def __getattr__(self, name: str) -> object:
        return getattr(self.connection, name)


async def test_a_transaction_that_changed_many_rows_commits_on_a_thread(
    database: Database,
) -> None:
    loop_thread = threading.get_ident()
    async with database.transaction() as session:
        raw = await (await session.connection()).get_raw_connection()
        driver = raw.driver_connection
        recording = _RecordingCommits(driver._conn)
        driver._conn = recording
        many = [{"v": f"row {i}"} for i in range(BULK_ROWS + 1)]
        await session.execute(text("INSERT INTO t (v) VALUES (:v)"), many)
    async with database.transaction() as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('one more')"))
    driver._conn = recording.connection
    assert len(recording.commits) == 2
    assert recording.commits[0] != loop_thread  # its pages (and a checkpoint) off the loop
    assert recording.commits[1] == loop_thread


async def test_waiting_for_another_process_lock_keeps_the_event_loop_free(
    database: Database, tmp_path: Path
) -> None:
    """Another connection (as another process would) holds the write lock for 0.5 s: the
    transaction waits for it on a thread instead of failing or freezing the event loop."""
    holder = sqlite3.connect(tmp_path / "driver.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t (v) VALUES ('first')")
    released = threading.Timer(0.5, holder.commit)
    released.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('second')"))
    finally:
        ticking.cancel()
        released.join()
        holder.close()
    assert time.monotonic() - started >= 0.4
    assert ticks >= 20  # the loop ran on while the transaction waited
    async with database.transaction() as session:
        values = (await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
    assert values == ["first", "second"]


async def test_errors_and_rollbacks_behave_as_with_any_driver(database: Database) -> None:
    async with database.transaction() as session:
        await session.execute(text("INSERT INTO t (v) VALUES ('x')"))
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            await session.execute(text("INSERT INTO t (v) VALUES ('y')"))
            await session.execute(text("INSERT INTO t (v) VALUES ('x')"))
    async with database.transaction() as session:
        values = (await session.execute(text("SELECT v FROM t ORDER BY id"))).scalars().all()
        many = await session.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": "a"}, {"v": "b"}]
        )
    assert values == ["x"]  # 'y' went with the failed transaction
    assert many.rowcount == 2
