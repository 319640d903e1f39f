"""Wake-ups across processes on PostgreSQL (LISTEN/NOTIFY), and their absence on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from sqlalchemy import text

from highseas.clock import utcnow
from highseas.db import Database
from highseas.jobs import JobContext, Queue, Registry, enqueue, notify, wakeup
from highseas.jobs.notify import CHANNEL
from highseas.jobs.queue import NewJob, insert_job
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


@pytest.fixture
async def announcing(postgres: Database) -> AsyncIterator[None]:
    """This process's announcer, as ``highseas serve`` and ``highseas worker`` run it."""
    task = asyncio.create_task(notify.announce(postgres))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def listener(postgres: Database) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    """Another process's LISTEN connection."""
    async with await psycopg.AsyncConnection.connect(
        _conninfo(postgres), autocommit=True
    ) as connection:
        await connection.execute(f"LISTEN {CHANNEL}")
        yield connection


def _noop_registry() -> Registry:
    registry = Registry()

    @registry.handler("tests.noop", queue=Queue.CALLBACKS)
    async def noop(_context: JobContext) -> None:
        return

    return registry


async def test_a_committed_enqueue_notifies_after_its_commit_and_a_rolled_back_one_never(
    postgres: Database, announcing: None, listener: psycopg.AsyncConnection[object]
) -> None:
    registry = _noop_registry()
    with pytest.raises(RuntimeError):
        async with postgres.transaction() as session:
            await enqueue(session, registry, "tests.noop", {})
            raise RuntimeError("changed my mind")
    assert await _received(listener, 0.5) == []
    async with postgres.transaction() as session:
        await enqueue(session, registry, "tests.noop", {"n": 1})
        await enqueue(session, registry, "tests.noop", {"n": 2})
        # Not from the enqueueing transaction: nothing before its commit.
        assert await _received(listener, 0.3) == []
    # Two jobs of one queue in one transaction: one notification.
    assert await _received(listener, 1.0) == ["callbacks"]


async def test_a_burst_of_commits_sends_a_few_notifications_not_one_each(
    postgres: Database, announcing: None, listener: psycopg.AsyncConnection[object]
) -> None:
    registry = _noop_registry()
    for n in range(40):
        async with postgres.transaction() as session:
            await enqueue(session, registry, "tests.noop", {"n": n})
    received = await _received(listener, 1.0)
    assert received and set(received) == {"callbacks"}
    assert len(received) < 20


async def test_a_notification_from_another_process_is_not_sent_on(
    announcing: None, listener: psycopg.AsyncConnection[object]
) -> None:
    # What this process's worker does with one: wakes its own loops, nothing more.
    wakeup.wake("callbacks")
    await listener.execute(f"NOTIFY {CHANNEL}, 'imports'")
    assert await _received(listener, 0.5) == ["imports"]


async def test_a_job_committed_by_another_process_wakes_the_worker(postgres: Database) -> None:
    registry = Registry()
    ran = asyncio.Event()

    @registry.handler("tests.prompt", queue=Queue.CALLBACKS)
    async def prompt(_context: JobContext) -> None:
        ran.set()

    worker = make_worker(postgres, registry, poll_seconds=30.0)  # only a wake-up is this quick
    running = asyncio.create_task(worker.run())
    try:
        first = await _listening(postgres)

        async def commit_elsewhere() -> None:
            # What another process does: the job's row, then its announcer's notification;
            # without this process's own commit hook (jobs/wakeup.py).
            async with postgres.transaction() as session:
                await insert_job(
                    session,
                    NewJob(
                        queue="callbacks",
                        kind="tests.prompt",
                        payload={},
                        max_attempts=1,
                        run_at=utcnow(),
                    ),
                )
            async with postgres.transaction() as session:
                await session.execute(text(f"NOTIFY {CHANNEL}, 'callbacks'"))

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


async def test_a_send_that_fails_is_logged_and_tried_again(
    db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An announcer whose database is unreachable, hearing of a job this process commits.
    monkeypatch.setattr(notify, "RECONNECT_BASE_SECONDS", 0.05)
    unreachable = Database("postgresql://highseas@127.0.0.1:1/none")
    try:
        async with notify.announcing(unreachable):
            async with db.transaction() as session:
                await enqueue(session, _noop_registry(), "tests.noop", {})
            for _ in range(100):
                failed = [r for r in caplog.records if "job notification not sent" in r.message]
                if len(failed) >= 2:
                    break
                await asyncio.sleep(0.05)
    finally:
        await unreachable.dispose()
    assert len(failed) >= 2


async def test_on_sqlite_nothing_is_announced(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the SQLite case")
    async with notify.announcing(db):
        async with db.transaction() as session:
            await enqueue(session, _noop_registry(), "tests.noop", {})
        await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if r.name == notify.__name__]
