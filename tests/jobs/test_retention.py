"""Retention: `highseas jobs prune` deletes old finished jobs; `jobs failed` lists failures."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from highseas.clock import utcnow
from highseas.db import Database
from highseas.jobs import Queue, Registry, enqueue
from highseas.jobs.queue import prune_finished
from highseas.models import IdempotencyKey, Job, JobState
from tests.fixtures.factories import make_agent
from tests.test_cli import HIGHSEAS, cli, env  # noqa: F401  (the env fixture)


async def _jobs(db: Database, states: list[tuple[JobState, int]]) -> list[int]:
    """One job per (state, days since it finished)."""
    registry = Registry(default_max_attempts=3)
    registry.handler("tests.noop", queue=Queue.CALLBACKS)(lambda _context: None)
    ids = []
    async with db.transaction() as session:
        for state, days in states:
            job_id = await enqueue(session, registry, "tests.noop", {})
            finished = utcnow() - timedelta(days=days) if state != JobState.QUEUED else None
            await session.execute(
                update(Job).where(Job.id == job_id).values(state=state, finished_at=finished)
            )
            ids.append(job_id)
    return ids


async def _left(db: Database) -> set[int]:
    async with db.transaction() as session:
        return set((await session.execute(select(Job.id))).scalars())


async def _prune_week_old(db: Database, *, limit: int) -> int:
    async with db.transaction() as session:
        return await prune_finished(
            session,
            states=[JobState.SUCCEEDED],
            finished_before=utcnow() - timedelta(days=7),
            limit=limit,
        )


async def test_prune_takes_old_succeeded_jobs_in_batches_and_keeps_the_rest(
    db: Database,
) -> None:
    old = await _jobs(db, [(JobState.SUCCEEDED, 10)] * 5)
    kept = await _jobs(
        db,
        [(JobState.SUCCEEDED, 1), (JobState.FAILED, 10), (JobState.QUEUED, 0)],
    )
    assert [await _prune_week_old(db, limit=3) for _ in range(3)] == [3, 2, 0]
    assert await _left(db) == set(kept)
    assert not set(old) & await _left(db)


async def _keys(db: Database, hours_ago: list[int]) -> list[str]:
    """One Idempotency-Key per age, of a fresh agent."""
    agent = await make_agent(db)
    keys = [f"key-{hours}h" for hours in hours_ago]
    async with db.transaction() as session:
        session.add_all(
            IdempotencyKey(
                agent_id=uuid.UUID(agent.agent_id),
                key=key,
                request_hash="0" * 64,
                batch_id=uuid.uuid4(),
                created_at=utcnow() - timedelta(hours=hours),
            )
            for key, hours in zip(keys, hours_ago, strict=True)
        )
    return keys


async def _keys_left(db: Database) -> set[str]:
    async with db.transaction() as session:
        return set((await session.execute(select(IdempotencyKey.key))).scalars())


async def test_prune_and_failed_commands(env: dict[str, str], db: Database) -> None:  # noqa: F811
    succeeded_old, failed_old, succeeded_new = await _jobs(
        db, [(JobState.SUCCEEDED, 30), (JobState.FAILED, 30), (JobState.SUCCEEDED, 0)]
    )
    expired, live = await _keys(db, [25, 23])
    async with db.transaction() as session:
        await session.execute(
            update(Job).where(Job.id == failed_old).values(last_error="RuntimeError: boom")
        )

    listed = await asyncio.to_thread(_lines, env, "jobs", "failed")
    assert [(job["id"], job["last_error"]) for job in listed] == [
        (failed_old, "RuntimeError: boom")
    ]
    assert await asyncio.to_thread(cli, env, "jobs", "prune", "--older-than-days", "7") == {
        "deleted": 1,
        "idempotency_keys": 1,  # past its 24 hours; the other one still counts
    }
    assert await _left(db) == {failed_old, succeeded_new}
    assert await _keys_left(db) == {live} and expired != live
    pruned = await asyncio.to_thread(
        cli, env, "jobs", "prune", "--older-than-days", "7", "--failed"
    )
    assert pruned == {"deleted": 1, "idempotency_keys": 0}
    assert await _left(db) == {succeeded_new}
    assert succeeded_old not in await _left(db)


def _lines(environment: dict[str, str], *args: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [*HIGHSEAS, *args], check=True, env=environment, capture_output=True, text=True, timeout=60
    )
    return [json.loads(line) for line in done.stdout.splitlines()]
