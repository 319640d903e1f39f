"""The queue's statements on a real database: enqueue, claim, and the fenced lease updates."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from highseas.clock import utcnow
from highseas.db import Database
from highseas.jobs import JobContext, Queue, Registry, enqueue
from highseas.jobs.queue import (
    LAST_ERROR_LIMIT,
    Lease,
    claim,
    complete,
    heartbeat,
    holds_lease,
    release,
    retry_or_fail,
)
from highseas.models import Job, JobState

LEASE = 30.0


async def _noop(_context: JobContext) -> None:
    return None


def make_registry() -> Registry:
    registry = Registry(default_max_attempts=3)
    registry.handler("tests.noop", queue=Queue.CALLBACKS)(_noop)
    registry.handler("tests.import", queue=Queue.IMPORTS, max_attempts=5)(_noop)
    return registry


async def _enqueue(
    db: Database,
    kind: str = "tests.noop",
    *,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
) -> int:
    async with db.transaction() as session:
        return await enqueue(
            session, make_registry(), kind, {"n": 1}, run_at=run_at, max_attempts=max_attempts
        )


async def _claim(db: Database, worker_id: str, queue: str = "callbacks") -> Job | None:
    async with db.transaction() as session:
        claimed = await claim(
            session,
            queue=queue,
            kinds=make_registry().kinds(queue),
            worker_id=worker_id,
            lease_seconds=LEASE,
        )
    return None if claimed is None else claimed.job


async def _get(db: Database, job_id: int) -> Job:
    async with db.sessions() as session:
        return await session.get_one(Job, job_id)


async def _expire_lease(db: Database, job_id: int) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(locked_until=utcnow() - timedelta(seconds=1))
        )


def _lease(job: Job) -> Lease:
    assert job.locked_by is not None
    return Lease(job_id=job.id, worker_id=job.locked_by, attempt=job.attempts)


async def test_enqueue_fills_in_queue_and_attempts_from_the_registry(db: Database) -> None:
    async with db.transaction() as session:
        job_id = await enqueue(session, make_registry(), "tests.import", {"rows": (1, 2)})
    stored = await _get(db, job_id)
    assert stored.queue == "imports"
    assert stored.state is JobState.QUEUED
    assert stored.attempts == 0
    assert stored.max_attempts == 5
    assert stored.payload == {"rows": [1, 2]}
    assert stored.run_at <= utcnow()


async def test_enqueue_in_a_rolled_back_transaction_leaves_no_job(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await enqueue(session, make_registry(), "tests.noop", {})
            raise RuntimeError("the batch insert failed")
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 0


async def test_enqueue_refuses_unknown_kinds_and_unserialisable_payloads(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(ValueError, match="unknown job kind"):
            await enqueue(session, make_registry(), "tests.nope", {})
        with pytest.raises(ValueError, match="JSON"):
            await enqueue(session, make_registry(), "tests.noop", {"at": utcnow()})
        with pytest.raises(ValueError, match="JSON"):
            await enqueue(session, make_registry(), "tests.noop", {"x": float("nan")})


async def test_claim_takes_due_jobs_oldest_first_and_only_once(db: Database) -> None:
    now = utcnow()
    later = await _enqueue(db, run_at=now + timedelta(hours=1))
    second = await _enqueue(db, run_at=now - timedelta(seconds=5))
    first = await _enqueue(db, run_at=now - timedelta(seconds=10))

    claimed = [await _claim(db, "w1"), await _claim(db, "w2"), await _claim(db, "w3")]

    assert [job.id if job else None for job in claimed] == [first, second, None]
    job = claimed[0]
    assert job is not None
    assert job.state is JobState.RUNNING
    assert job.attempts == 1
    assert job.locked_by == "w1"
    assert job.locked_until is not None and job.locked_until > utcnow()
    assert (await _get(db, later)).state is JobState.QUEUED


async def test_a_claim_says_whether_another_job_of_its_queue_is_due(db: Database) -> None:
    now = utcnow()
    await _enqueue(db, run_at=now - timedelta(seconds=2))
    await _enqueue(db, run_at=now - timedelta(seconds=1))
    await _enqueue(db, run_at=now + timedelta(hours=1))  # not due
    await _enqueue(db, "tests.import")  # another queue

    async def more() -> bool | None:
        async with db.transaction() as session:
            claimed = await claim(
                session,
                queue="callbacks",
                kinds=make_registry().kinds("callbacks"),
                worker_id="w1",
                lease_seconds=LEASE,
            )
        return None if claimed is None else claimed.more

    assert [await more(), await more(), await more()] == [True, False, None]


async def test_claim_respects_queue_and_registered_kinds(db: Database) -> None:
    job_id = await _enqueue(db, "tests.import")
    assert await _claim(db, "w1", queue="callbacks") is None
    async with db.transaction() as session:
        # An older worker that does not know the kind yet leaves it to newer ones.
        taken = await claim(
            session, queue="imports", kinds=["tests.other"], worker_id="old", lease_seconds=LEASE
        )
        assert taken is None
        taken = await claim(session, queue="imports", kinds=[], worker_id="old", lease_seconds=1)
        assert taken is None
    job = await _claim(db, "w1", queue="imports")
    assert job is not None and job.id == job_id


async def test_an_expired_lease_is_taken_over_and_fences_the_first_holder(db: Database) -> None:
    job_id = await _enqueue(db)
    first = await _claim(db, "w1")
    assert first is not None
    assert await _claim(db, "w2") is None  # the lease still holds

    await _expire_lease(db, job_id)
    second = await _claim(db, "w2")
    assert second is not None
    assert (second.id, second.attempts, second.locked_by) == (job_id, 2, "w2")

    async with db.transaction() as session:
        assert not await heartbeat(session, _lease(first), lease_seconds=LEASE)
        assert not await holds_lease(session, _lease(first))
        assert not await complete(session, _lease(first))
        assert await retry_or_fail(session, _lease(first), "late") is None
        assert not await release(session, _lease(first))
        assert await holds_lease(session, _lease(second))
        assert await complete(session, _lease(second))
    job = await _get(db, job_id)
    assert (job.state, job.attempts, job.locked_by, job.last_error) == (
        JobState.SUCCEEDED,
        2,
        "w2",
        None,
    )
    assert job.finished_at is not None and job.locked_until is None


async def test_same_worker_reclaiming_its_expired_job_fences_the_old_attempt(db: Database) -> None:
    job_id = await _enqueue(db)
    old = await _claim(db, "w1")
    assert old is not None
    await _expire_lease(db, job_id)
    new = await _claim(db, "w1")
    assert new is not None and new.attempts == 2
    async with db.transaction() as session:
        assert not await complete(session, _lease(old))
        assert await complete(session, _lease(new))


async def test_heartbeat_extends_the_lease(db: Database) -> None:
    await _enqueue(db)
    job = await _claim(db, "w1")
    assert job is not None and job.locked_until is not None
    async with db.transaction() as session:
        assert await heartbeat(session, _lease(job), lease_seconds=LEASE * 10)
    renewed = await _get(db, job.id)
    assert renewed.locked_until is not None
    assert renewed.locked_until > job.locked_until + timedelta(seconds=LEASE)


async def test_retry_requeues_with_backoff_then_fails_on_the_last_attempt(db: Database) -> None:
    job_id = await _enqueue(db)  # max_attempts 3 (the registry default)
    for attempt in (1, 2):
        job = await _claim(db, "w1")
        assert job is not None and job.attempts == attempt
        async with db.transaction() as session:
            assert await retry_or_fail(session, _lease(job), f"boom {attempt}") is JobState.QUEUED
        stored = await _get(db, job_id)
        assert stored.state is JobState.QUEUED
        assert stored.run_at > utcnow() + timedelta(seconds=2)  # at least half of 5·2^(n-1) s
        assert stored.last_error == f"boom {attempt}"
        assert stored.locked_by is None and stored.finished_at is None
        assert await _claim(db, "w1") is None  # not due yet
        async with db.transaction() as session:
            await session.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))

    job = await _claim(db, "w1")
    assert job is not None and job.attempts == 3
    async with db.transaction() as session:
        assert await retry_or_fail(session, _lease(job), "boom 3") is JobState.FAILED
    stored = await _get(db, job_id)
    assert (stored.state, stored.attempts, stored.last_error) == (JobState.FAILED, 3, "boom 3")
    assert stored.finished_at is not None
    assert await _claim(db, "w1") is None


async def test_permanent_failure_fails_at_once_and_long_errors_are_truncated(
    db: Database,
) -> None:
    job_id = await _enqueue(db)
    job = await _claim(db, "w1")
    assert job is not None
    async with db.transaction() as session:
        state = await retry_or_fail(session, _lease(job), "x" * 10_000, permanent=True)
    assert state is JobState.FAILED
    stored = await _get(db, job_id)
    assert stored.attempts == 1
    assert stored.last_error is not None and len(stored.last_error) == LAST_ERROR_LIMIT


async def test_release_puts_the_job_back_without_counting_the_attempt(db: Database) -> None:
    job_id = await _enqueue(db, run_at=utcnow() - timedelta(minutes=5))
    job = await _claim(db, "w1")
    assert job is not None
    async with db.transaction() as session:
        assert await release(session, _lease(job))
    stored = await _get(db, job_id)
    assert (stored.state, stored.attempts, stored.locked_by) == (JobState.QUEUED, 0, None)
    assert stored.run_at > utcnow() - timedelta(minutes=1)
    again = await _claim(db, "w2")
    assert again is not None and again.attempts == 1


async def test_a_job_whose_holders_keep_dying_fails_instead_of_running_again(
    db: Database,
) -> None:
    doomed = await _enqueue(db, max_attempts=2, run_at=utcnow() - timedelta(seconds=1))
    healthy = await _enqueue(db)
    for worker_id in ("w1", "w2"):
        job = await _claim(db, worker_id)
        assert job is not None and job.id == doomed
        await _expire_lease(db, doomed)

    # The third claim fails the doomed job and hands out the next one instead.
    job = await _claim(db, "w3")
    assert job is not None and job.id == healthy
    stored = await _get(db, doomed)
    assert (stored.state, stored.attempts) == (JobState.FAILED, 2)
    assert stored.last_error is not None and "lease expired" in stored.last_error
    assert stored.finished_at is not None


def test_registry_rejects_duplicates_and_lists_kinds_per_queue() -> None:
    registry = make_registry()
    with pytest.raises(ValueError, match="already registered"):
        registry.handler("tests.noop", queue=Queue.CALLBACKS)(_noop)
    assert registry.kinds(Queue.CALLBACKS) == ["tests.noop"]
    assert registry.kinds(Queue.IMPORTS) == ["tests.import"]
    assert registry.max_attempts("tests.noop") == 3
    assert registry.max_attempts("tests.import") == 5
