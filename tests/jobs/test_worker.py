"""The worker in-process, on a real database: outcomes, atomic completion, fencing, shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.clock import utcnow
from highseas.db import Database
from highseas.jobs import JobContext, LeaseLost, PermanentJobError, Queue, Registry, Worker, enqueue
from highseas.jobs import worker as worker_module
from highseas.jobs.queue import Claimed
from highseas.jobs.worker import pool_size
from highseas.models import Agent, Job, JobState


def make_worker(
    db: Database,
    registry: Registry,
    *,
    queues: list[str] | None = None,
    concurrency: int = 1,
    lease_seconds: float = 30.0,
    poll_seconds: float = 0.05,
    shutdown_grace_seconds: float = 5.0,
    worker_id: str | None = None,
) -> Worker:
    return Worker(
        db,
        registry=registry,
        queues=queues,
        concurrency=concurrency,
        lease_seconds=lease_seconds,
        poll_seconds=poll_seconds,
        shutdown_grace_seconds=shutdown_grace_seconds,
        worker_id=worker_id,
    )


def count_claims(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    claims: Counter[str] = Counter()
    claim = worker_module.claim

    async def counted(session: Any, *, queue: str, **kwargs: Any) -> Claimed | None:
        claims[queue] += 1
        return await claim(session, queue=queue, **kwargs)

    monkeypatch.setattr(worker_module, "claim", counted)
    return claims


async def _enqueue(db: Database, registry: Registry, kind: str, **payload: object) -> int:
    async with db.transaction() as session:
        return await enqueue(session, registry, kind, dict(payload))


async def _job(db: Database, job_id: int) -> Job:
    async with db.sessions() as session:
        return await session.get_one(Job, job_id)


async def _agent_names(db: Database) -> list[str]:
    async with db.sessions() as session:
        return sorted((await session.scalars(select(Agent.name))).all())


async def _wait_until(condition: asyncio.Event, seconds: float = 5.0) -> None:
    await asyncio.wait_for(condition.wait(), seconds)


async def test_enqueued_and_committed_job_runs_once(db: Database) -> None:
    registry = Registry()
    seen: list[tuple[int, dict[str, object]]] = []

    @registry.handler("tests.record", queue=Queue.CALLBACKS)
    async def record(context: JobContext) -> None:
        seen.append((context.attempt, context.payload))

    job_id = await _enqueue(db, registry, "tests.record", n=1)
    worker = make_worker(db, registry)
    assert await worker.run_one("callbacks")
    assert not await worker.run_one("callbacks")

    job = await _job(db, job_id)
    assert (job.state, job.attempts, job.locked_by) == (JobState.SUCCEEDED, 1, worker.worker_id)
    assert job.finished_at is not None
    assert seen == [(1, {"n": 1})]


async def test_a_rolled_back_enqueue_is_never_run(db: Database) -> None:
    registry = Registry()

    @registry.handler("tests.never", queue=Queue.CALLBACKS)
    async def never(_context: JobContext) -> None:
        raise AssertionError("a rolled-back job ran")

    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await enqueue(session, registry, "tests.never", {})
            raise RuntimeError("the request failed")
    assert not await make_worker(db, registry).run_one("callbacks")


async def test_handler_writes_commit_with_the_completion(db: Database) -> None:
    registry = Registry()

    @registry.handler("tests.effect", queue=Queue.CALLBACKS)
    async def effect(context: JobContext) -> None:
        context.session.add(Agent(name=f"job-{context.job_id}"))

    job_id = await _enqueue(db, registry, "tests.effect")
    await make_worker(db, registry).run_one("callbacks")
    assert await _agent_names(db) == [f"job-{job_id}"]
    assert (await _job(db, job_id)).state is JobState.SUCCEEDED


async def test_failure_rolls_back_its_writes_and_retries_then_fails(db: Database) -> None:
    registry = Registry()

    @registry.handler("tests.flaky", max_attempts=2, queue=Queue.CALLBACKS)
    async def flaky(context: JobContext) -> None:
        context.session.add(Agent(name="half-done"))
        await context.session.flush()
        raise RuntimeError(f"partner down on attempt {context.attempt}")

    job_id = await _enqueue(db, registry, "tests.flaky")
    worker = make_worker(db, registry)
    assert await worker.run_one("callbacks")
    job = await _job(db, job_id)
    assert (job.state, job.attempts) == (JobState.QUEUED, 1)
    assert job.run_at > utcnow() + timedelta(seconds=2)
    assert job.last_error == "RuntimeError: partner down on attempt 1"
    assert not await worker.run_one("callbacks")  # backing off

    async with db.transaction() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
    assert await worker.run_one("callbacks")
    job = await _job(db, job_id)
    assert (job.state, job.attempts) == (JobState.FAILED, 2)
    assert job.last_error == "RuntimeError: partner down on attempt 2"
    assert job.finished_at is not None
    assert await _agent_names(db) == []


async def test_permanent_error_fails_at_once(db: Database) -> None:
    registry = Registry()

    @registry.handler("tests.invalid", queue=Queue.CALLBACKS)
    async def invalid(_context: JobContext) -> None:
        raise PermanentJobError("the file is not a spreadsheet")

    job_id = await _enqueue(db, registry, "tests.invalid")
    await make_worker(db, registry).run_one("callbacks")
    job = await _job(db, job_id)
    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert job.last_error == "PermanentJobError: the file is not a spreadsheet"


async def test_failure_hook_runs_once_when_the_job_fails_for_good(db: Database) -> None:
    registry = Registry()
    reported: list[tuple[dict[str, object], str]] = []

    async def on_failure(session: AsyncSession, payload: dict[str, object], error: str) -> None:
        reported.append((payload, error))
        session.add(Agent(name="told"))  # in the transaction that fails the job

    @registry.handler("tests.doomed", max_attempts=2, on_failure=on_failure, queue=Queue.CALLBACKS)
    async def doomed(context: JobContext) -> None:
        raise RuntimeError(f"attempt {context.attempt}")

    job_id = await _enqueue(db, registry, "tests.doomed", batch="b1")
    worker = make_worker(db, registry)
    assert await worker.run_one("callbacks")
    assert reported == []  # a retry is not a failure
    async with db.transaction() as session:
        await session.execute(update(Job).where(Job.id == job_id).values(run_at=utcnow()))
    assert await worker.run_one("callbacks")
    assert reported == [({"batch": "b1"}, "RuntimeError: attempt 2")]
    assert await _agent_names(db) == ["told"]


async def test_failure_hook_runs_when_the_last_holder_died(db: Database) -> None:
    registry = Registry()
    reported: list[str] = []

    async def on_failure(_session: AsyncSession, _payload: dict[str, object], error: str) -> None:
        reported.append(error)

    @registry.handler("tests.orphan", max_attempts=1, on_failure=on_failure, queue=Queue.CALLBACKS)
    async def orphan(_context: JobContext) -> None:
        raise AssertionError("a job out of attempts must not run again")

    job_id = await _enqueue(db, registry, "tests.orphan")
    # Its only attempt was claimed by a worker that died: running, lease long expired.
    async with db.transaction() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                state=JobState.RUNNING,
                attempts=1,
                locked_by="dead",
                locked_until=utcnow() - timedelta(minutes=1),
            )
        )
    assert not await make_worker(db, registry).run_one("callbacks")
    assert (await _job(db, job_id)).state is JobState.FAILED
    assert len(reported) == 1 and "lease expired" in reported[0]


async def test_a_failing_failure_hook_still_fails_the_job(db: Database) -> None:
    registry = Registry()

    async def on_failure(session: AsyncSession, _payload: dict[str, object], _error: str) -> None:
        session.add(Agent(name="rolled back"))
        await session.flush()
        raise RuntimeError("hook broken")

    @registry.handler("tests.doomed", on_failure=on_failure, queue=Queue.CALLBACKS)
    async def doomed(_context: JobContext) -> None:
        raise PermanentJobError("no")

    job_id = await _enqueue(db, registry, "tests.doomed")
    await make_worker(db, registry).run_one("callbacks")
    assert (await _job(db, job_id)).state is JobState.FAILED
    assert await _agent_names(db) == []


async def test_a_worker_that_lost_its_lease_rolls_back_and_the_job_succeeds_once(
    db: Database,
) -> None:
    """Worker A's lease expires mid-job and B takes the job over; A's writes never commit."""
    registry_b = Registry()

    @registry_b.handler("tests.contended", queue=Queue.CALLBACKS)
    async def run_on_b(context: JobContext) -> None:
        context.session.add(Agent(name=f"by-b-{context.attempt}"))

    registry_a = Registry()

    @registry_a.handler("tests.contended", queue=Queue.CALLBACKS)
    async def run_on_a(context: JobContext) -> None:
        # Before A's session touches the database: on SQLite it would hold the write lock.
        async with db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id == context.job_id)
                .values(locked_until=utcnow() - timedelta(seconds=1))
            )
        assert await make_worker(db, registry_b, worker_id="b").run_one("callbacks")
        context.session.add(Agent(name=f"by-a-{context.attempt}"))

    job_id = await _enqueue(db, registry_a, "tests.contended")
    assert await make_worker(db, registry_a, worker_id="a").run_one("callbacks")

    job = await _job(db, job_id)
    assert (job.state, job.attempts, job.locked_by) == (JobState.SUCCEEDED, 2, "b")
    assert await _agent_names(db) == ["by-b-2"]


async def test_checkpoint_commits_progress_and_detects_a_takeover(db: Database) -> None:
    registry = Registry()

    @registry.handler("tests.long", queue=Queue.CALLBACKS)
    async def long(context: JobContext) -> None:
        context.session.add(Agent(name="step-1"))
        await context.checkpoint()
        async with db.transaction() as session:
            await session.execute(
                update(Job)
                .where(Job.id == context.job_id)
                .values(locked_by="thief", attempts=Job.attempts + 1)
            )
        context.session.add(Agent(name="step-2"))
        await context.checkpoint()
        raise AssertionError("checkpoint did not notice the takeover")

    job_id = await _enqueue(db, registry, "tests.long")
    await make_worker(db, registry).run_one("callbacks")
    assert await _agent_names(db) == ["step-1"]
    job = await _job(db, job_id)
    assert (job.state, job.locked_by, job.last_error) == (JobState.RUNNING, "thief", None)


async def test_a_request_waiting_for_the_connection_gets_it_at_the_next_checkpoint(
    db: Database,
) -> None:
    """SQLite gives a process one connection: a long job hands it over at each checkpoint
    instead of taking it straight back, so the API in the same process is not starved."""
    registry = Registry()
    steps: list[int] = []
    started = asyncio.Event()

    @registry.handler("tests.many_steps", queue=Queue.CALLBACKS)
    async def many_steps(context: JobContext) -> None:
        for step in range(100):
            context.session.add(Agent(name=f"step-{step}"))
            await context.checkpoint()
            steps.append(step)
            started.set()

    await _enqueue(db, registry, "tests.many_steps")
    job = asyncio.create_task(make_worker(db, registry).run_one("callbacks"))
    await _wait_until(started)
    async with db.sessions() as session:
        await session.execute(select(Agent.id).limit(1))
    steps_before_the_request_ran = len(steps)
    assert await job
    # Starved, it would run after all 100 (SQLite: after 1 or 2; PostgreSQL: a new connection).
    assert len(steps) == 100 and steps_before_the_request_ran < 50


async def test_checkpoint_raises_lease_lost_to_the_handler(db: Database) -> None:
    registry = Registry()
    raised: list[BaseException] = []

    @registry.handler("tests.stolen", queue=Queue.CALLBACKS)
    async def stolen(context: JobContext) -> None:
        async with db.transaction() as session:
            await session.execute(update(Job).values(locked_by="thief"))
        try:
            await context.checkpoint()
        except LeaseLost as exc:
            raised.append(exc)
            raise

    await _enqueue(db, registry, "tests.stolen")
    await make_worker(db, registry).run_one("callbacks")
    assert len(raised) == 1


async def test_a_worker_process_holds_a_connection_for_every_job_it_runs(
    db: Database, database_url: str
) -> None:
    """``--concurrency 8`` on the three queues runs 24 jobs at once, each in its own open
    transaction: the worker process's pool is sized for them (SQLAlchemy's default of 15
    left 9 waiting for a connection until they timed out)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one connection per process by design (ADR 0003)")
    registry = Registry()
    running = asyncio.Barrier(8 * len(Queue))
    passed: list[int] = []
    all_passed = asyncio.Event()

    async def hold(context: JobContext) -> None:
        await context.session.execute(select(1))  # its transaction holds a connection
        await asyncio.wait_for(running.wait(), 20)
        passed.append(context.job_id)
        if len(passed) == running.parties:
            all_passed.set()

    for queue in Queue:
        registry.handler(f"tests.hold.{queue}", queue=queue)(hold)
        for _ in range(8):
            await _enqueue(db, registry, f"tests.hold.{queue}")
    database = Database(database_url, pool_size=pool_size(8, len(Queue)))
    worker = make_worker(database, registry, concurrency=8)
    run = asyncio.create_task(worker.run())
    try:
        await _wait_until(all_passed, 25)
    finally:
        worker.stop()
        await run
        await database.dispose()


async def test_heartbeat_keeps_a_long_job_and_cancels_it_once_lost(db: Database) -> None:
    registry = Registry()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @registry.handler("tests.slow", queue=Queue.CALLBACKS)
    async def slow(context: JobContext) -> None:
        # Not flushed: on SQLite an open write would hold the one write lock, heartbeats too.
        context.session.add(Agent(name="never-committed"))
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job_id = await _enqueue(db, registry, "tests.slow")
    worker = make_worker(db, registry, lease_seconds=0.6)
    running = asyncio.create_task(worker.run_one("callbacks"))
    await _wait_until(started)
    await asyncio.sleep(1.0)  # longer than the lease: only heartbeats keep it
    job = await _job(db, job_id)
    assert job.state is JobState.RUNNING
    assert job.locked_until is not None and job.locked_until > utcnow()

    async with db.transaction() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(locked_by="thief", attempts=2)
        )
    await asyncio.wait_for(running, 5)
    assert cancelled.is_set()
    assert await _agent_names(db) == []
    assert (await _job(db, job_id)).locked_by == "thief"


async def test_stop_lets_a_running_job_finish_within_the_grace(db: Database) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry.handler("tests.short", queue=Queue.CALLBACKS)
    async def short(context: JobContext) -> None:
        started.set()
        await asyncio.sleep(0.3)
        context.session.add(Agent(name="finished"))

    job_id = await _enqueue(db, registry, "tests.short")
    worker = make_worker(db, registry, shutdown_grace_seconds=5.0)
    running = asyncio.create_task(worker.run())
    await _wait_until(started)
    worker.stop()
    worker.stop()
    await asyncio.wait_for(running, 5)
    assert (await _job(db, job_id)).state is JobState.SUCCEEDED
    assert await _agent_names(db) == ["finished"]


async def test_stop_releases_a_job_that_outlives_the_grace(db: Database) -> None:
    registry = Registry()
    started = asyncio.Event()

    @registry.handler("tests.endless", queue=Queue.CALLBACKS)
    async def endless(context: JobContext) -> None:
        context.session.add(Agent(name="interrupted"))
        await context.session.flush()
        started.set()
        await asyncio.sleep(60)

    job_id = await _enqueue(db, registry, "tests.endless")
    worker = make_worker(db, registry, shutdown_grace_seconds=0.2)
    running = asyncio.create_task(worker.run())
    await _wait_until(started)
    worker.stop()
    await asyncio.wait_for(running, 5)

    job = await _job(db, job_id)
    assert (job.state, job.attempts, job.locked_by) == (JobState.QUEUED, 0, None)
    assert job.run_at <= utcnow()
    assert await _agent_names(db) == []


async def test_queues_run_side_by_side_with_their_own_slots(db: Database) -> None:
    """A long import occupying every import slot does not hold up a callback."""
    registry = Registry()
    import_started = asyncio.Event()
    release_import = asyncio.Event()
    callback_done = asyncio.Event()

    @registry.handler("tests.import", queue=Queue.IMPORTS)
    async def long_import(_context: JobContext) -> None:
        import_started.set()
        await release_import.wait()

    @registry.handler("tests.callback", queue=Queue.CALLBACKS)
    async def callback(_context: JobContext) -> None:
        callback_done.set()

    await _enqueue(db, registry, "tests.import")
    await _enqueue(db, registry, "tests.import")
    worker = make_worker(db, registry, queues=["imports", "callbacks"], concurrency=1)
    running = asyncio.create_task(worker.run())
    try:
        await _wait_until(import_started)
        await _enqueue(db, registry, "tests.callback")
        await _wait_until(callback_done)
        async with db.sessions() as session:
            states = (await session.scalars(select(Job.state).where(Job.queue == "imports"))).all()
        assert sorted(states) == [JobState.QUEUED, JobState.RUNNING]  # one import slot
    finally:
        release_import.set()
        worker.stop()
        await asyncio.wait_for(running, 5)


async def test_the_worker_survives_a_database_outage(db: Database, database_url: str) -> None:
    registry = Registry()
    done = asyncio.Event()

    @registry.handler("tests.after-outage", queue=Queue.CALLBACKS)
    async def after_outage(_context: JobContext) -> None:
        done.set()

    broken = Database("postgresql://nobody@127.0.0.1:1/nowhere")
    worker = make_worker(broken, registry, poll_seconds=0.01)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.3)  # several failed claims, logged and backed off
        assert not running.done()
        # The database comes back: the worker is pointed at a working engine.
        worker.database = db
        await _enqueue(db, registry, "tests.after-outage")
        await _wait_until(done, seconds=10)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 5)
        await broken.dispose()


async def test_a_job_committed_in_this_process_wakes_the_worker(db: Database) -> None:
    registry = Registry()
    ran = asyncio.Event()

    @registry.handler("tests.prompt", queue=Queue.CALLBACKS)
    async def prompt(_context: JobContext) -> None:
        ran.set()

    worker = make_worker(db, registry, poll_seconds=30.0)  # only a wake-up can be this quick
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.2)  # the worker found nothing and waits
    async with db.transaction() as session:
        await enqueue(session, registry, "tests.prompt", {})
    await _wait_until(ran, seconds=3.0)
    # A rolled-back enqueue wakes nobody and leaves nothing behind.
    ran.clear()
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await enqueue(session, registry, "tests.prompt", {})
            raise RuntimeError("changed my mind")
    await asyncio.sleep(0.3)
    assert not ran.is_set()
    worker.stop()
    await running


async def test_the_last_job_of_a_queue_costs_no_empty_claim(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim says whether more is due: after the last job the loop waits for a wake-up."""
    claims = count_claims(monkeypatch)
    registry = Registry()
    ran = asyncio.Event()

    @registry.handler("tests.last", queue=Queue.CALLBACKS)
    async def last(_context: JobContext) -> None:
        ran.set()

    worker = make_worker(db, registry, queues=["callbacks"], concurrency=2, poll_seconds=30.0)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.3)  # the first poll found nothing
        await _enqueue(db, registry, "tests.last")  # the wake-up
        await _wait_until(ran)
        await asyncio.sleep(0.3)
    finally:
        worker.stop()
        await asyncio.wait_for(running, 5)
    assert claims["callbacks"] == 2  # the first poll and the job's claim, nothing after it
