"""An import's snapshot is the pool committed when it was accepted, also while pool writes of
the same user are in flight (contract §2; found by `make soak`, customers/snapshot_lock.py)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.config import Settings
from highseas.customers import service as customers
from highseas.customers.rows import RowInput
from highseas.customers.schemas import PoolFilterIn
from highseas.db import Database
from highseas.imports import repository as imports_repository
from highseas.imports import service as imports
from highseas.jobs import Registry
from highseas.models import CallbackType, TaskNumber, User
from tests.fixtures.receiver import Receiver
from tests.imports.scenario import Scenario, finish, make_scenario

IN_FLIGHT = ["13012120001", "13012120002"]
EARLIER = ["13012120003"]
LATER = ["13012120004"]
_ADVISORY_LOCKS_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
)


async def _write_pool(db: Database, user_id: str, phones: list[str]) -> None:
    async with db.transaction() as session:
        await _store(session, user_id, phones)


async def _store(session: AsyncSession, user_id: str, phones: list[str]) -> None:
    user = await session.get_one(User, uuid.UUID(user_id))
    checker = await customers.row_checker(session, user, label=lambda c: c.name)
    rows = [RowInput(i, {"phone": phone}, {}) for i, phone in enumerate(phones)]
    await customers.store_checked(
        session, user, customers.check_rows(checker, rows), customers.IngestResult()
    )


async def _accept(db: Database, app_registry: Registry, settings: Settings, s: Scenario) -> str:
    async with db.transaction() as session:
        return await _accept_in(session, app_registry, settings, s)


async def _accept_in(
    session: AsyncSession, app_registry: Registry, settings: Settings, s: Scenario
) -> str:
    user = await session.get_one(User, uuid.UUID(s.user_id))
    batch_id = await imports.accept(
        session,
        app_registry,
        user=user,
        task_id=s.task_id,
        given=PoolFilterIn(),
        idempotency_key=None,
        settings=settings,
    )
    return str(batch_id)


async def _numbers(db: Database, task_id: str) -> list[str]:
    async with db.sessions() as session:
        query = select(TaskNumber.phone).where(TaskNumber.task_id == uuid.UUID(task_id))
        return sorted((await session.scalars(query)).all())


async def test_an_import_accepted_during_a_pool_write_waits_for_its_commit(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
    app: FastAPI,
) -> None:
    registry: Registry = app.state.job_registry
    scenario = await make_scenario(client, db, receiver, tmp_path, rows=[])
    other = await make_scenario(client, db, receiver, tmp_path, rows=[])
    await _write_pool(db, scenario.user_id, EARLIER)
    # On PostgreSQL two connections: the write in flight and the acceptance (on SQLite the
    # acceptance waits for the database's write lock either way).
    second = Database(settings.database_url)
    try:
        async with db.transaction() as writing:
            await _store(writing, scenario.user_id, IN_FLIGHT)
            accepting = asyncio.create_task(_accept(second, registry, settings, scenario))
            await asyncio.sleep(1.0)
            # Without the lock it would be accepted now, with a bound above the ids the
            # write already holds, and the import would take customers committed after it.
            assert not accepting.done()
            if db.engine.dialect.name == "postgresql":
                # The lock is the user's: another user's import is accepted meanwhile.
                await asyncio.wait_for(_accept(second, registry, settings, other), 10)
        await asyncio.wait_for(accepting, 30)
    finally:
        await second.dispose()
    await finish(db, settings)
    # The write committed before the acceptance completed: its customers are in.
    assert await _numbers(db, scenario.task_id) == sorted(EARLIER + IN_FLIGHT)


async def test_a_pool_write_after_the_acceptance_neither_waits_for_its_commit_nor_joins(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
    app: FastAPI,
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: one writer, the write waits for the acceptance's commit anyway")
    registry: Registry = app.state.job_registry
    scenario = await make_scenario(client, db, receiver, tmp_path, rows=[])
    await _write_pool(db, scenario.user_id, EARLIER)
    second = Database(settings.database_url)
    try:
        async with second.transaction() as accepting:
            await _accept_in(accepting, registry, settings, scenario)
            # The lock was held for the bound's statement only, not to this commit.
            assert await accepting.scalar(_ADVISORY_LOCKS_HELD) == 0
            await asyncio.wait_for(_write_pool(db, scenario.user_id, LATER), 10)
    finally:
        await second.dispose()
    await finish(db, settings)
    # Its customers got ids above the bound: the import is the pool as accepted.
    assert await _numbers(db, scenario.task_id) == EARLIER


async def test_an_acceptance_that_times_out_waiting_leaves_no_lock_behind(
    client: httpx.AsyncClient, db: Database, settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no per-user lock")
    scenario = await make_scenario(client, db, receiver, tmp_path, rows=[])
    user_id = uuid.UUID(scenario.user_id)
    second = Database(settings.database_url)
    try:
        async with second.engine.connect() as connection:
            async with db.transaction() as writing:
                await _store(writing, scenario.user_id, IN_FLIGHT)
                await connection.execute(text("SET statement_timeout = 200"))
                with pytest.raises(DBAPIError, match="statement timeout"):
                    await imports_repository.accept_checks(
                        AsyncSession(connection),
                        user_id=user_id,
                        task_id=uuid.UUID(scenario.task_id),
                        agent_id=uuid.UUID(scenario.agent.agent_id),
                        type=CallbackType.API_CUSTOMER_TO_TASK,
                    )
                await connection.rollback()
            assert await connection.scalar(_ADVISORY_LOCKS_HELD) == 0
            # And the user's pool takes writes again (nothing waits on a leftover lock).
            await asyncio.wait_for(_write_pool(db, scenario.user_id, LATER), 10)
    finally:
        await second.dispose()
