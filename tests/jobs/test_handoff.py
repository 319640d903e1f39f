"""A job queued by a job whose worker runs its kind: claimed at insert, run after the commit."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from highseas.db import Database
from highseas.jobs import JobContext, PermanentJobError, Queue, Registry, enqueue, worker
from highseas.logs import ContextFilter
from highseas.models import Job, JobState
from tests.jobs.test_worker import _enqueue, _job, _wait_until, count_claims, make_worker

PARENT, CHILD = "tests.parent", "tests.child"


def parent_and_child(
    *, fail_after_enqueue: bool = False, child_started: asyncio.Event | None = None
) -> tuple[Registry, asyncio.Event]:
    """An imports-queue job that queues a callbacks-queue job, as an import queues its callback."""
    registry = Registry()
    child_done = asyncio.Event()

    @registry.handler(PARENT, queue=Queue.IMPORTS)
    async def parent(context: JobContext) -> None:
        await enqueue(context.session, registry, CHILD, {"of": context.job_id})
        if fail_after_enqueue:
            raise PermanentJobError("the parent failed after queueing its child")

    @registry.handler(CHILD, queue=Queue.CALLBACKS)
    async def child(_context: JobContext) -> None:
        if child_started is not None:
            child_started.set()
        child_done.set()

    return registry, child_done


async def idle(runner: worker.Worker) -> None:
    """Until the worker's first polls are over: a poll holds a slot of its queue, and a
    child is only taken when its queue has a free one."""
    await asyncio.sleep(0.3)
    assert runner._has_room("callbacks")


async def _settled(db: Database, job_id: int, state: JobState) -> None:
    """Until the job reaches ``state`` (5 s at most), then a moment for what would follow."""
    for _ in range(100):
        if (await _job(db, job_id)).state is state:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)


async def _children(db: Database) -> list[Job]:
    async with db.sessions() as session:
        return list((await session.scalars(select(Job).where(Job.kind == CHILD))).all())


async def _child_queued(db: Database) -> list[Job]:
    """The children, once the parent has committed one (at most 5 s)."""
    for _ in range(100):
        if children := await _children(db):
            return children
        await asyncio.sleep(0.05)
    raise AssertionError("the parent queued no child")


async def test_a_job_queued_by_a_job_runs_in_its_worker_without_a_claim(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claims = count_claims(monkeypatch)
    registry, child_done = parent_and_child()
    # Polling every 30 s: the child can only be this quick if nobody has to find it.
    runner = make_worker(db, registry, poll_seconds=30.0)
    running = asyncio.create_task(runner.run())
    try:
        await idle(runner)
        parent_id = await _enqueue(db, registry, PARENT)  # wakes the imports loop
        await _wait_until(child_done, seconds=3.0)
    finally:
        runner.stop()
        await asyncio.wait_for(running, 5)
    [child] = await _children(db)
    assert child.payload == {"of": parent_id}
    assert (child.state, child.attempts, child.locked_by) == (
        JobState.SUCCEEDED,
        1,
        runner.worker_id,
    )
    assert claims["callbacks"] == 1  # the first poll, which found nothing


async def test_a_child_of_a_rolled_back_transaction_neither_exists_nor_runs(
    db: Database,
) -> None:
    registry, child_done = parent_and_child(fail_after_enqueue=True)
    parent_id = await _enqueue(db, registry, PARENT)
    runner = make_worker(db, registry)
    running = asyncio.create_task(runner.run())
    try:
        await _settled(db, parent_id, JobState.FAILED)
    finally:
        runner.stop()
        await asyncio.wait_for(running, 5)
    assert (await _job(db, parent_id)).state is JobState.FAILED
    assert await _children(db) == []
    assert not child_done.is_set()


async def test_a_child_of_a_rolled_back_savepoint_is_not_run(db: Database) -> None:
    registry = Registry()
    child_ran = asyncio.Event()

    @registry.handler(PARENT, queue=Queue.IMPORTS)
    async def parent(context: JobContext) -> None:
        with pytest.raises(RuntimeError):
            async with context.session.begin_nested():
                await enqueue(context.session, registry, CHILD, {})
                raise RuntimeError("this part of the job changed its mind")

    @registry.handler(CHILD, queue=Queue.CALLBACKS)
    async def child(_context: JobContext) -> None:
        child_ran.set()

    runner = make_worker(db, registry, poll_seconds=30.0)
    running = asyncio.create_task(runner.run())
    try:
        await idle(runner)
        parent_id = await _enqueue(db, registry, PARENT)
        await _settled(db, parent_id, JobState.SUCCEEDED)
    finally:
        runner.stop()
        await asyncio.wait_for(running, 5)
    assert (await _job(db, parent_id)).state is JobState.SUCCEEDED
    assert await _children(db) == []
    assert not child_ran.is_set()


async def test_a_worker_leaves_kinds_it_does_not_run_queued(db: Database) -> None:
    registry, child_done = parent_and_child()
    await _enqueue(db, registry, PARENT)
    runner = make_worker(db, registry, queues=["imports"])
    running = asyncio.create_task(runner.run())
    try:
        await _child_queued(db)
    finally:
        runner.stop()
        await asyncio.wait_for(running, 5)
    [child] = await _children(db)
    assert (child.state, child.attempts, child.locked_by) == (JobState.QUEUED, 0, None)
    assert not child_done.is_set()


async def test_run_one_leaves_a_child_queued(db: Database) -> None:
    """Outside ``run()`` the worker takes nothing: a test steps through the queues itself."""
    registry, _ = parent_and_child()
    await _enqueue(db, registry, PARENT)
    assert await make_worker(db, registry).run_one("imports")
    [child] = await _children(db)
    assert child.state is JobState.QUEUED


async def test_a_child_whose_queue_has_no_free_slot_is_left_to_the_queue(db: Database) -> None:
    registry, child_done = parent_and_child()
    busy = asyncio.Event()
    release = asyncio.Event()

    @registry.handler("tests.slow-callback", queue=Queue.CALLBACKS)
    async def slow(_context: JobContext) -> None:
        busy.set()
        await release.wait()

    await _enqueue(db, registry, "tests.slow-callback")
    runner = make_worker(db, registry, concurrency=1)
    running = asyncio.create_task(runner.run())
    try:
        await _wait_until(busy)
        await _enqueue(db, registry, PARENT)
        children = await _child_queued(db)
        # The callbacks queue's one slot is taken: queued, not claimed and left waiting.
        assert [(c.state, c.attempts, c.locked_by) for c in children] == [
            (JobState.QUEUED, 0, None)
        ]
        release.set()
        await _wait_until(child_done)
    finally:
        release.set()
        runner.stop()
        await asyncio.wait_for(running, 5)
    [child] = await _children(db)
    assert (child.state, child.attempts, child.locked_by) == (
        JobState.SUCCEEDED,
        1,
        runner.worker_id,
    )


async def test_a_worker_stopping_puts_a_child_it_took_back_in_the_queue(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry()
    runners: list[worker.Worker] = []

    @registry.handler(PARENT, queue=Queue.IMPORTS)
    async def parent(context: JobContext) -> None:
        await enqueue(context.session, registry, CHILD, {})
        runners[0].stop()  # before the commit that hands the child over

    @registry.handler(CHILD, queue=Queue.CALLBACKS)
    async def child(_context: JobContext) -> None:
        raise AssertionError("a stopping worker started a job")

    runners.append(make_worker(db, registry, poll_seconds=30.0))
    running = asyncio.create_task(runners[0].run())
    await idle(runners[0])
    await _enqueue(db, registry, PARENT)
    caplog.handler.addFilter(ContextFilter())  # the fields JSON logs carry
    with caplog.at_level(logging.INFO, logger="highseas.jobs.worker"):
        await asyncio.wait_for(running, 5)
    [taken] = await _children(db)
    assert (taken.state, taken.attempts, taken.locked_by) == (JobState.QUEUED, 0, None)
    message = f"job {taken.id} ({CHILD}) attempt 1 interrupted, released"
    [record] = [r for r in caplog.records if r.getMessage() == message]
    # Logged as the child, not as the parent that handed it over.
    assert (getattr(record, "job_id", None), getattr(record, "job_kind", None)) == (
        taken.id,
        CHILD,
    )


async def test_a_child_left_by_a_worker_that_died_is_taken_over_after_its_lease(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, child_done = parent_and_child()
    dead = make_worker(db, registry, lease_seconds=0.3, poll_seconds=30.0, worker_id="dead")
    # It committed the parent, then died before starting the child.
    monkeypatch.setattr(dead, "_take", lambda _taker: None)
    running = asyncio.create_task(dead.run())
    try:
        await idle(dead)
        await _enqueue(db, registry, PARENT)
        await _child_queued(db)
    finally:
        dead.stop()
        await asyncio.wait_for(running, 5)
    [child] = await _children(db)
    assert (child.state, child.locked_by) == (JobState.RUNNING, "dead")

    heir = make_worker(db, registry, worker_id="heir")
    running = asyncio.create_task(heir.run())
    try:
        await _wait_until(child_done, seconds=5.0)
    finally:
        heir.stop()
        await asyncio.wait_for(running, 5)
    [child] = await _children(db)
    assert (child.state, child.attempts, child.locked_by) == (JobState.SUCCEEDED, 2, "heir")
