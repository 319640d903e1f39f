"""Every statement of the job queue: insert, claim, and the fenced lease updates.

A claimed job is held through a ``Lease``: the worker's id and the attempt number the claim
gave it. Every later update is fenced on both, so a worker whose lease expired and whose job
another worker took over changes nothing, even if it comes back (a long GC pause, a network
partition). All statements use RETURNING rather than rowcount, which psycopg does not always
report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.clock import utcnow
from highseas.jobs.backoff import retry_delay
from highseas.models import Job, JobState
from highseas.models.base import UTCDateTime

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

# Enough for an exception's type and message; the full traceback goes to the worker's log.
LAST_ERROR_LIMIT = 4000


@dataclass(frozen=True)
class Lease:
    """The fence token of one claimed attempt."""

    job_id: int
    worker_id: str
    attempt: int


_JOBS: Table = Job.__table__  # type: ignore[assignment]
# A plain INSERT, not an ORM flush: the unit of work cost more than the statement (an
# accept's profile, bench/README.md), and a queued job is not read back by who queued it.
# State, attempts and timestamps are the columns' defaults.
_INSERT_QUEUED = insert(_JOBS).returning(_JOBS.c.id)


@dataclass(frozen=True)
class NewJob:
    queue: str
    kind: str
    payload: dict[str, Any]
    max_attempts: int
    run_at: datetime


async def insert_job(session: AsyncSession, new: NewJob) -> int:
    """Add a queued job in the caller's transaction (never committed here); its id."""
    return int((await session.execute(_INSERT_QUEUED, vars(new))).scalar_one())


async def insert_claimed(
    session: AsyncSession, new: NewJob, *, worker_id: str, locked_until: datetime
) -> Job:
    """Add a job already claimed by ``worker_id`` (running, attempt 1) until ``locked_until``,
    flushed through the session: the object says afterwards whether a savepoint rollback took
    the row back (jobs/handoff.py)."""
    job = Job(
        **vars(new),
        state=JobState.RUNNING,
        attempts=1,
        locked_by=worker_id,
        locked_until=locked_until,
    )
    session.add(job)
    await session.flush()
    return job


_candidate = _JOBS.alias("candidate").c


def _oldest(*conditions: ColumnElement[bool]) -> Any:
    return (
        select(_candidate.id)
        .where(
            _candidate.queue == bindparam("of_queue"),
            _candidate.kind.in_(bindparam("of_kinds", expanding=True)),
            *conditions,
        )
        .order_by(_candidate.run_at, _candidate.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


# Whether the queue holds another due job: the claim loop then claims again at once, and
# otherwise waits for a wake-up instead of spending a claim to find the queue empty. Text,
# because SQLAlchemy renders a subquery in SQLite's RETURNING without its table qualifiers.
_MORE = (
    text(
        "EXISTS (SELECT 1 FROM jobs AS other WHERE other.queue = :of_queue"
        " AND other.kind IN :of_kinds AND other.state = :queued AND other.run_at <= :now"
        " AND other.id <> jobs.id)"
    )
    .bindparams(
        bindparam("of_kinds", expanding=True),
        bindparam("queued", JobState.QUEUED.value),
        bindparam("now", type_=UTCDateTime()),
    )
    .columns(column("more", Boolean()))
)

# Built once (a claim runs for every job), on the table rather than the mapped class: the
# ORM copies such a statement at every execution, which then needs a new cache key. One OR
# of both states made SQLite read every job of the queue, finished ones included, and sort
# them, at each claim (bench/README.md).
_CLAIM = (
    update(_JOBS)
    .where(
        _JOBS.c.id
        == func.coalesce(
            _oldest(
                _candidate.state == JobState.RUNNING,
                _candidate.locked_until < bindparam("now", type_=UTCDateTime()),
            ),
            _oldest(
                _candidate.state == JobState.QUEUED,
                _candidate.run_at <= bindparam("now", type_=UTCDateTime()),
            ),
        )
    )
    .values(
        state=JobState.RUNNING,
        attempts=_JOBS.c.attempts + 1,
        locked_by=bindparam("claimer"),
        locked_until=bindparam("until", type_=UTCDateTime()),
    )
    .returning(*_JOBS.c, _MORE.scalar_subquery().label("more"))
)


@dataclass(frozen=True)
class Claimed:
    job: Job
    # Another job of the queue was due when this one was claimed (another worker may take it).
    more: bool


async def claim(
    session: AsyncSession,
    *,
    queue: str,
    kinds: Sequence[str],
    worker_id: str,
    lease_seconds: float,
    on_abandoned: Callable[[AsyncSession, Job, str], Awaitable[None]] | None = None,
) -> Claimed | None:
    """Take the next ready job of ``queue`` among ``kinds`` (oldest ``run_at`` first), or None.

    Ready means running with an expired lease (its worker died), taken first, or queued and
    due. Each of the two is a range of the ``(queue, state, run_at)`` index, so finished jobs,
    however many the table keeps, are never read. Only the caller's kinds are taken, so
    during a rolling deploy an older worker leaves new kinds to newer workers. On PostgreSQL,
    SKIP LOCKED lets claimers pass each other; SQLite compiles the lock away and its
    BEGIN IMMEDIATE serialises them instead.

    A job whose holders kept dying until its attempts ran out is failed here, not run again;
    ``on_abandoned`` is told in the same transaction (its kind's failure hook).
    """
    if not kinds:
        return None
    while True:
        now = utcnow()
        parameters = {
            "of_queue": queue,
            "of_kinds": list(kinds),
            "now": now,
            "claimer": worker_id,
            "until": now + timedelta(seconds=lease_seconds),
        }
        row = (await session.execute(_CLAIM, parameters)).one_or_none()
        if row is None:
            return None
        # A Job outside any session: the worker only reads it.
        job = Job(**{column.key: row._mapping[column] for column in _JOBS.c})
        if job.attempts <= job.max_attempts:
            return Claimed(job, bool(row.more))
        error = await _fail_abandoned(session, job, now)
        if on_abandoned is not None:
            await on_abandoned(session, job, error)


async def _fail_abandoned(session: AsyncSession, job: Job, now: datetime) -> str:
    # The claim above incremented attempts for a run that will not happen: take it back.
    error = (
        f"lease expired on attempt {job.max_attempts} of {job.max_attempts}: "
        "the worker running it stopped or lost the database"
    )
    statement = (
        update(_JOBS)
        .where(_JOBS.c.id == job.id)
        .values(
            state=JobState.FAILED,
            attempts=_JOBS.c.attempts - 1,
            locked_until=None,
            finished_at=now,
            last_error=error,
        )
    )
    await session.execute(statement)
    return error


# The fence of every update of a claimed job, and those updates, built once: a worker runs
# several per job, and building one cost more than running it (bench/README.md).
_FENCE = and_(
    _JOBS.c.id == bindparam("job_id"),
    _JOBS.c.locked_by == bindparam("worker_id"),
    _JOBS.c.attempts == bindparam("attempt"),
    _JOBS.c.state == JobState.RUNNING,
)
_NOW = bindparam("now", type_=UTCDateTime())


def _fenced_update(**values: Any) -> Any:
    return update(_JOBS).where(_FENCE).values(**values).returning(_JOBS.c.id)


_HOLDS = select(_JOBS.c.id).where(_FENCE).with_for_update()
_HEARTBEAT = _fenced_update(locked_until=bindparam("until", type_=UTCDateTime()))
# ``locked_by`` is kept on finished jobs: it tells an operator which worker ran them.
_COMPLETE = _fenced_update(state=JobState.SUCCEEDED, locked_until=None, finished_at=_NOW)
# The interrupted run does not count as an attempt.
_RELEASE = _fenced_update(
    state=JobState.QUEUED,
    attempts=_JOBS.c.attempts - 1,
    run_at=_NOW,
    locked_by=None,
    locked_until=None,
)
_GIVE_UP = or_(bindparam("permanent", type_=Boolean()), _JOBS.c.attempts >= _JOBS.c.max_attempts)
_RETRY_OR_FAIL = (
    update(_JOBS)
    .where(_FENCE)
    .values(
        state=case((_GIVE_UP, JobState.FAILED.value), else_=JobState.QUEUED.value),
        run_at=case((_GIVE_UP, _JOBS.c.run_at), else_=bindparam("retry_at", type_=UTCDateTime())),
        finished_at=case((_GIVE_UP, _NOW), else_=null()),
        locked_by=case((_GIVE_UP, _JOBS.c.locked_by), else_=null()),
        locked_until=None,
        last_error=bindparam("error"),
    )
    .returning(_JOBS.c.state)
)


def _of(lease: Lease, **values: Any) -> dict[str, Any]:
    return {
        "job_id": lease.job_id,
        "worker_id": lease.worker_id,
        "attempt": lease.attempt,
        **values,
    }


async def _still_ours(session: AsyncSession, statement: Any, values: dict[str, Any]) -> bool:
    return (await session.execute(statement, values)).scalar_one_or_none() is not None


async def holds_lease(session: AsyncSession, lease: Lease) -> bool:
    """Whether the job is still ours; on PostgreSQL the row stays locked until the commit."""
    return await _still_ours(session, _HOLDS, _of(lease))


async def heartbeat(session: AsyncSession, lease: Lease, *, lease_seconds: float) -> bool:
    """Extend the lease to ``lease_seconds`` from now; False if the job is no longer ours."""
    until = utcnow() + timedelta(seconds=lease_seconds)
    return await _still_ours(session, _HEARTBEAT, _of(lease, until=until))


async def complete(session: AsyncSession, lease: Lease) -> bool:
    """Mark the job succeeded; False if it is no longer ours (then roll back the handler's work)."""
    return await _still_ours(session, _COMPLETE, _of(lease, now=utcnow()))


async def retry_or_fail(
    session: AsyncSession, lease: Lease, error: str, *, permanent: bool = False
) -> JobState | None:
    """Requeue the job after a backoff, or fail it for good; None if it is no longer ours.

    It fails when ``permanent`` or when this was its last attempt. The error is kept either
    way, so a failed job says why.
    """
    now = utcnow()
    retry_at = now + timedelta(seconds=retry_delay(lease.attempt))
    values = _of(lease, permanent=permanent, now=now, retry_at=retry_at, error=_truncate(error))
    state: JobState | None = (await session.execute(_RETRY_OR_FAIL, values)).scalar_one_or_none()
    return state


async def release(session: AsyncSession, lease: Lease) -> bool:
    """Put an interrupted job back, due now; the interrupted run does not count as an attempt."""
    return await _still_ours(session, _RELEASE, _of(lease, now=utcnow()))


async def count_by_queue_and_state(session: AsyncSession) -> dict[tuple[str, str], int]:
    """How many jobs each queue holds in each state. Finished jobs count too, so this reads
    the claim index of every job not yet pruned."""
    statement = select(Job.queue, Job.state, func.count()).group_by(Job.queue, Job.state)
    rows = await session.execute(statement)
    return {(queue, state.value): count for queue, state, count in rows}


def _utc(value: datetime) -> ColumnElement[datetime]:
    # Typed, so SQLite stores it in the same format as the column (a bare datetime would not be).
    return literal(value, UTCDateTime())


def _truncate(error: str) -> str:
    if len(error) <= LAST_ERROR_LIMIT:
        return error
    return error[: LAST_ERROR_LIMIT - 1] + "…"


async def prune_finished(
    session: AsyncSession, *, states: Sequence[JobState], finished_before: datetime, limit: int
) -> int:
    """Delete up to ``limit`` jobs in ``states`` that finished before ``finished_before``;
    how many went. In bounded batches: on SQLite each batch holds the only write lock."""
    doomed = (
        select(Job.id)
        .where(Job.state.in_(states), Job.finished_at < _utc(finished_before))
        .order_by(Job.id)
        .limit(limit)
    )
    deleted = await session.execute(delete(Job).where(Job.id.in_(doomed)).returning(Job.id))
    return len(deleted.all())


async def failed_jobs(session: AsyncSession, *, limit: int) -> Sequence[Job]:
    """The most recently failed jobs, newest first."""
    query = select(Job).where(Job.state == JobState.FAILED).order_by(Job.id.desc()).limit(limit)
    return (await session.execute(query)).scalars().all()
