"""The worker: per-queue claim loops, a heartbeat per running job, and graceful shutdown.

A job's database effects commit exactly once: the handler's session completes the job in its
own transaction, fenced on (worker, attempt), so a worker that lost its lease rolls its work
back instead of committing it next to the work of the worker that took over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractContextManager, suppress

from sqlalchemy.ext.asyncio import AsyncSession

from highseas import metrics
from highseas.clock import utcnow
from highseas.config import Settings
from highseas.db import Database
from highseas.jobs import handoff, notify, wakeup
from highseas.jobs.backoff import retry_delay
from highseas.jobs.queue import (
    Claimed,
    Lease,
    claim,
    complete,
    heartbeat,
    release,
    retry_or_fail,
)
from highseas.jobs.registry import (
    JobContext,
    LeaseLost,
    PermanentJobError,
    Queue,
    Registry,
)
from highseas.logs import log_context
from highseas.metrics import JobOutcome
from highseas.models import Job, JobState

logger = logging.getLogger(__name__)

# Claim failures (the database restarting) back off from poll_seconds up to this.
CLAIM_BACKOFF_CAP_SECONDS = 30.0


class Worker:
    """Runs jobs of the registry's kinds from ``queues`` until ``stop()``."""

    def __init__(
        self,
        database: Database,
        *,
        registry: Registry,
        queues: Sequence[str] | None = None,
        concurrency: int = 1,
        lease_seconds: float,
        poll_seconds: float,
        shutdown_grace_seconds: float,
        worker_id: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if lease_seconds <= 0 or poll_seconds <= 0 or shutdown_grace_seconds < 0:
            raise ValueError("lease and poll must be positive and the grace not negative")
        self.database = database
        self.registry = registry
        self.queues = polled_queues(registry, queues)
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.worker_id = worker_id or default_worker_id()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        # While run() runs: each polled queue's slots, and the kinds this worker takes over
        # when its own jobs queue them (jobs/handoff.py).
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._kinds_taken: frozenset[str] = frozenset()

    @classmethod
    def from_settings(
        cls,
        database: Database,
        settings: Settings,
        *,
        registry: Registry,
        queues: Sequence[str] | None = None,
        concurrency: int = 1,
    ) -> Worker:
        return cls(
            database,
            registry=registry,
            queues=queues,
            concurrency=concurrency,
            lease_seconds=settings.job_lease_seconds,
            poll_seconds=settings.job_poll_seconds,
            shutdown_grace_seconds=settings.job_shutdown_grace_seconds,
        )

    async def run(self) -> None:
        """Claim and run jobs until ``stop()``, then drain: returns when no job is left running.

        Cancelling ``run()`` instead of calling ``stop()`` also drains, but may abandon a claim
        in flight to its lease expiry.
        """
        polled = self.queues
        self._slots = {queue: asyncio.Semaphore(self.concurrency) for queue in polled}
        self._kinds_taken = frozenset(k for q in polled for k in self.registry.kinds(q))
        loops = [asyncio.create_task(self._claim_loop(q), name=f"claim:{q}") for q in polled]
        listening: list[asyncio.Task[None]] = []
        url = self.database.engine.url
        # Jobs committed by other processes wake this one at once; the loops still poll.
        if polled and notify.supported(url):
            listening.append(asyncio.create_task(notify.listen(url, wakeup.wake), name="listen"))
        logger.info(
            "worker %s started, polling queues: %s",
            self.worker_id,
            ", ".join(polled) or "none (no job kinds registered)",
        )
        try:
            await self._stopping.wait()
            await asyncio.gather(*loops)
        finally:
            self._stopping.set()
            for loop in [*loops, *listening]:
                loop.cancel()
            await asyncio.gather(*listening, return_exceptions=True)
            await self._drain()
            self._slots, self._kinds_taken = {}, frozenset()
            logger.info("worker %s stopped", self.worker_id)

    def stop(self) -> None:
        """Stop claiming and let ``run()`` drain. Idempotent; safe from a loop signal handler."""
        if not self._stopping.is_set():
            logger.info("worker %s stopping", self.worker_id)
            self._stopping.set()

    async def run_one(self, queue: str) -> bool:
        """Claim and run one job of ``queue`` to its end; False if none was ready."""
        claimed = await self._claim(queue)
        if claimed is None:
            return False
        await self._process(claimed.job)
        return True

    async def _claim_loop(self, queue: Queue) -> None:
        slots = self._slots[queue]
        failures = 0
        woken = wakeup.listen(queue)
        try:
            while await self._acquire_slot(slots):
                woken.clear()  # before the claim: a job committed after it ends the wait
                try:
                    claimed = await self._claim(queue)
                except Exception as exc:
                    slots.release()
                    failures += 1
                    delay = retry_delay(
                        failures, base=self.poll_seconds, cap=CLAIM_BACKOFF_CAP_SECONDS
                    )
                    # One traceback per outage, not one per retry.
                    logger.warning(
                        "claiming from queue %s failed (%s); retrying in %.1f s",
                        queue,
                        _error_text(exc),
                        delay,
                        exc_info=failures == 1,
                    )
                    await self._sleep(delay)
                    continue
                failures = 0
                if claimed is None:
                    slots.release()
                    await self._sleep(self.poll_seconds, until=woken)
                    continue
                task = self._start(self._process(claimed.job), claimed.job)
                task.add_done_callback(lambda _: slots.release())
                if not claimed.more:
                    # The queue is empty: wait as after an empty claim, without making one.
                    await self._sleep(self.poll_seconds, until=woken)
        finally:
            wakeup.forget(queue, woken)

    def _start(self, work: Coroutine[object, object, None], job: Job) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=f"job:{job.id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def _take(self, taker: handoff.Taker) -> None:
        """Start the jobs handed to this worker in the transaction that just committed."""
        for job in taker.committed():
            self._start(self._run_taken(job), job)

    def _has_room(self, queue: str) -> bool:
        slots = self._slots.get(queue)
        return slots is not None and not slots.locked()

    async def _run_taken(self, job: Job) -> None:
        """A handed-off job: already claimed; it takes a slot of its queue like a claim."""
        slots = self._slots.get(job.queue)
        if slots is None or not await self._acquire_slot(slots):
            # Stopping: back to the queue for whichever worker claims next (or, if the
            # database is away, to whichever claims it once its lease expires).
            with _logged_as(job):  # not as the job that handed it over
                try:
                    await self._release(job, _lease_of(job, self.worker_id))
                except Exception:
                    logger.warning("job %s (%s) attempt %s: not released", *_describe(job))
            return
        try:
            await self._process(job)
        finally:
            slots.release()

    async def _acquire_slot(self, slots: asyncio.Semaphore) -> bool:
        """A free slot of the queue, or False once stopping (all slots may stay busy)."""
        if self._stopping.is_set():
            return False
        acquiring = asyncio.ensure_future(slots.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            return False
        if self._stopping.is_set():
            slots.release()
            return False
        return True

    async def _sleep(self, seconds: float, *, until: asyncio.Event | None = None) -> None:
        """Wait ``seconds``, or less when stopping or ``until`` is set."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if until is not None:
            waits.append(asyncio.ensure_future(until.wait()))
        _, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()

    async def _claim(self, queue: str) -> Claimed | None:
        async with self.database.transaction() as session:
            return await claim(
                session,
                queue=queue,
                kinds=self.registry.kinds(queue),
                worker_id=self.worker_id,
                lease_seconds=self.lease_seconds,
                on_abandoned=self._report_failure,
            )

    async def _drain(self) -> None:
        deadline = time.monotonic() + self.shutdown_grace_seconds
        # Until none is left: a job that completes while draining may hand this worker
        # another (jobs/handoff.py), which then puts it back in the queue.
        while self._running:
            grace = max(deadline - time.monotonic(), 0.0)
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            await asyncio.sleep(0)  # the done callbacks that take them off the set

    async def _process(self, job: Job) -> None:
        with _logged_as(job):
            try:
                await self._run(job)
            except Exception:
                # Typically the database went away while recording the outcome: the lease
                # expires and the job is run again, which the fence makes safe.
                logger.exception("job %s (%s) attempt %s: outcome not recorded", *_describe(job))

    async def _run(self, job: Job) -> None:
        lease = _lease_of(job, self.worker_id)
        handler = self.registry.lookup(job.kind).handler
        # Clocks of other hosts may run ahead of this one's: never a negative wait.
        waited = max((utcnow() - job.run_at).total_seconds(), 0.0)
        metrics.JOB_WAIT_SECONDS.labels(job.queue, job.kind).observe(waited)
        started = time.monotonic()
        async with self.database.sessions() as session:
            taker = handoff.Taker(
                self.worker_id, self.lease_seconds, self._kinds_taken, self._has_room
            )
            if taker.kinds:
                handoff.offer(session.sync_session, taker)
            context = JobContext(
                session=session,
                job_id=job.id,
                attempt=job.attempts,
                payload=job.payload,
                worker_id=self.worker_id,
                on_commit=lambda: self._take(taker),
            )
            running = asyncio.ensure_future(handler(context))
            keeper = _LeaseKeeper(self.database, lease, self.lease_seconds, running.cancel)
            try:
                try:
                    await running
                finally:
                    keeper.stop()
                if await complete(session, lease):
                    await session.commit()
                    self._take(taker)
                    _observe_run(job, JobOutcome.SUCCEEDED, started)
                    logger.info("job %s (%s) attempt %s succeeded", *_describe(job))
                    return
                await session.rollback()
                _observe_run(job, JobOutcome.LEASE_LOST, started)
                logger.warning("job %s (%s) attempt %s: lease lost, rolled back", *_describe(job))
            except asyncio.CancelledError:
                await session.rollback()
                if keeper.lost and not _being_cancelled():
                    _observe_run(job, JobOutcome.LEASE_LOST, started)
                    logger.warning("job %s (%s) attempt %s: lease lost, cancelled", *_describe(job))
                    return
                await self._release(job, lease)
                raise
            except LeaseLost:
                await session.rollback()
                _observe_run(job, JobOutcome.LEASE_LOST, started)
                logger.warning("job %s (%s) attempt %s: lease lost, rolled back", *_describe(job))
            except Exception as exc:
                await session.rollback()
                await self._retry_or_fail(job, lease, exc, started)
            finally:
                await keeper.finished()

    async def _retry_or_fail(self, job: Job, lease: Lease, exc: Exception, started: float) -> None:
        permanent = isinstance(exc, PermanentJobError)
        async with self.database.transaction() as session:
            state = await retry_or_fail(session, lease, _error_text(exc), permanent=permanent)
            if state is JobState.FAILED:
                await self._report_failure(session, job, _error_text(exc))
        if state is None:
            _observe_run(job, JobOutcome.LEASE_LOST, started)
            outcome = "failed, but the job was no longer ours"
        elif state is JobState.FAILED:
            _observe_run(job, JobOutcome.FAILED, started)
            outcome = "failed for good"
        else:
            _observe_run(job, JobOutcome.RETRIED, started)
            outcome = "failed, will be retried"
        logger.error("job %s (%s) attempt %s %s", *_describe(job), outcome, exc_info=exc)

    async def _report_failure(self, session: AsyncSession, job: Job, error: str) -> None:
        """Tell the job's kind that it failed for good, in the transaction that fails it."""
        on_failure = self.registry.lookup(job.kind).on_failure
        if on_failure is None:
            return
        # In a savepoint: a failing hook is logged, and the job still ends failed.
        try:
            async with session.begin_nested():
                await on_failure(session, job.payload, error)
        except Exception:
            logger.exception("job %s (%s) attempt %s: failure hook failed", *_describe(job))

    async def _release(self, job: Job, lease: Lease) -> None:
        async with self.database.transaction() as session:
            released = await release(session, lease)
        if released:
            logger.info("job %s (%s) attempt %s interrupted, released", *_describe(job))


class _LeaseKeeper:
    """Renews a running job's lease every lease/3 on its own session; cancels it once lost."""

    def __init__(
        self,
        database: Database,
        lease: Lease,
        lease_seconds: float,
        on_lost: Callable[[], object],
    ) -> None:
        self.lost = False
        self._database = database
        self._lease = lease
        self._lease_seconds = lease_seconds
        self._on_lost = on_lost
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._beat(), name=f"heartbeat:{lease.job_id}")

    def stop(self) -> None:
        """No more renewals. A renewal in flight is not cancelled, only awaited by ``finished``:
        on SQLite it may be waiting for the write lock of the very transaction about to commit."""
        self._stopping.set()

    async def finished(self) -> None:
        self.stop()
        await self._task

    async def _beat(self) -> None:
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._lease_seconds / 3)
            if self._stopping.is_set():
                return
            try:
                async with self._database.transaction() as session:
                    held = await heartbeat(session, self._lease, lease_seconds=self._lease_seconds)
            except Exception:
                logger.warning("heartbeat of job %s failed", self._lease.job_id, exc_info=True)
                continue
            # A job that just completed is no longer "running": not a loss.
            if not held and not self._stopping.is_set():
                self.lost = True
                self._on_lost()
                return


def default_worker_id() -> str:
    # Host and pid tell an operator where a job ran; the random part tells restarts apart.
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(3)}"


def _observe_run(job: Job, outcome: JobOutcome, started: float) -> None:
    seconds = time.monotonic() - started
    metrics.JOB_RUN_SECONDS.labels(job.queue, job.kind, outcome).observe(seconds)


def _lease_of(job: Job, worker_id: str) -> Lease:
    return Lease(job_id=job.id, worker_id=worker_id, attempt=job.attempts)


def _describe(job: Job) -> tuple[int, str, int]:
    return job.id, job.kind, job.attempts


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _logged_as(job: Job) -> AbstractContextManager[None]:
    """Log records name the job and, for a job of a batch (named in its payload), the batch's
    unique_id."""
    return log_context(job_id=job.id, job_kind=job.kind, batch_id=job.payload.get("batch_id"))


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def polled_queues(registry: Registry, queues: Sequence[str] | None) -> list[Queue]:
    """The queues a worker polls: those named, or all, that have job kinds."""
    named = [Queue(q) for q in (queues if queues is not None else list(Queue))]
    return [queue for queue in named if registry.kinds(queue)]


def pool_size(concurrency: int, queues: int) -> int:
    """PostgreSQL connections a worker process keeps: one per job it may run at once
    (``concurrency`` per queue) and one per claim loop; heartbeats use the pool's overflow."""
    return concurrency * queues + queues


async def run_worker_process(
    settings: Settings,
    registry: Registry,
    *,
    concurrency: int,
    queues: Sequence[str] | None,
) -> None:
    """The ``highseas worker`` process: runs until SIGTERM or SIGINT, then drains and exits."""
    polled = len(polled_queues(registry, queues))
    database = Database(settings.database_url, pool_size=pool_size(concurrency, polled))
    worker = Worker.from_settings(
        database, settings, registry=registry, queues=queues, concurrency=concurrency
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    try:
        # The callbacks its imports queue may be for another worker process (--queue).
        async with notify.announcing(database):
            await worker.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await database.dispose()
