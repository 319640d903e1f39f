"""Wake-ups across processes on PostgreSQL (LISTEN/NOTIFY), and their absence on SQLite."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import text

from highseas.clock import utcnow
from highseas.db import Database
from highseas.jobs import JobContext, Registry, enqueue
from highseas.jobs.notify import CHANNEL
from highseas.jobs.queue import insert_job
from tests.jobs.test_worker import make_worker


@pytest.fixture
def postgres(db: Database) -> Database:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite has no other process to wake")
    return db


def _conninfo(db: Database) -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _listening(db: Database, *, besides: frozenset[int] = frozenset()) -> int:
    """The pid of the worker's LISTEN connection (a new one, not in ``besides``)."""
    for _ in range(200):
        async with db.transaction() as session:
            pids = set(
                (
                    await session.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity"
                            " WHERE datname = current_database() AND query = :listen"
                        ),
                        {"listen": f"LISTEN {CHANNEL}"},
                    )
                ).scalars()
            )
        if pids - besides:
            return (pids - besides).pop()
        await asyncio.sleep(0.05)
    raise AssertionError("the worker is not listening")


async def _received(listener: psycopg.AsyncConnection[object], seconds: float) -> list[str]:
    return [n.payload async for n in listener.notifies(timeout=seconds)]


async def test_enqueue_notifies_when_it_commits_and_not_when_it_rolls_back(
    postgres: Database,
) -> None:
    registry = Registry()

    @registry.handler("tests.noop")
    async def noop(_context: JobContext) -> None:
        return

    async with await psycopg.AsyncConnection.connect(
        _conninfo(postgres), autocommit=True
    ) as listener:
        await listener.execute(f"LISTEN {CHANNEL}")
        with pytest.raises(RuntimeError):
            async with postgres.transaction() as session:
                await enqueue(session, registry, "tests.noop", {})
                raise RuntimeError("changed my mind")
        assert await _received(listener, 0.5) == []
        async with postgres.transaction() as session:
            await enqueue(session, registry, "tests.noop", {"n": 1})
            await enqueue(session, registry, "tests.noop", {"n": 2})
        # Two jobs of one queue in one transaction: one notification.
        assert await _received(listener, 1.0) == ["default"]


async def test_a_job_committed_by_another_process_wakes_the_worker(postgres: Database) -> None:
    registry = Registry()
    ran = asyncio.Event()

    @registry.handler("tests.prompt")
    async def prompt(_context: JobContext) -> None:
        ran.set()

    worker = make_worker(postgres, registry, poll_seconds=30.0)  # only a wake-up is this quick
    running = asyncio.create_task(worker.run())
    try:
        first = await _listening(postgres)

        async def commit_elsewhere() -> None:
            # What enqueue does in another process: the row (its trigger notifies), without
            # this process's own commit hook (jobs/wakeup.py).
            async with postgres.transaction() as session:
                await insert_job(
                    session,
                    queue="default",
                    kind="tests.prompt",
                    payload={},
                    max_attempts=1,
                    run_at=utcnow(),
                )

        await commit_elsewhere()
        await asyncio.wait_for(ran.wait(), 5.0)

        # The listener's connection dies (a database restart, a proxy): it reconnects.
        ran.clear()
        async with postgres.transaction() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await _listening(postgres, besides=frozenset({first}))
        await commit_elsewhere()
        await asyncio.wait_for(ran.wait(), 5.0)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 5)
