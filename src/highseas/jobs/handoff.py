"""Jobs a running job queues for the worker running it: claimed at insert, run after the commit.

An import queues its callback's delivery; the worker that ran the import also runs deliveries.
Instead of inserting the delivery as queued, waking the callbacks queue and claiming it back
(a transaction of its own on PostgreSQL, the write lock on SQLite), the worker that is running
a job offers to take what the job queues: ``enqueue`` then inserts a job of a kind this worker
runs, due now, already claimed by it (running, attempt 1, leased) if its queue has a free slot
at that moment, and the worker starts it as soon as the transaction that queued it commits. A
rolled-back transaction takes its jobs with it; a worker that dies first leaves them to expire
like any lease, and another worker takes them over (docs/adr/0002-durable-job-queue.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from highseas.clock import utcnow
from highseas.models import Job

_TAKER = "highseas.jobs.handoff"


@dataclass
class Taker:
    """A worker's offer, for the jobs queued in one session."""

    worker_id: str
    lease_seconds: float
    kinds: frozenset[str]
    # Whether a queue has a free slot now: when it has none, the job is left to the queue
    # rather than wait here while its lease runs out.
    has_room: Callable[[str], bool]
    taken: list[Job] = field(default_factory=list)

    def lease_until(self) -> datetime:
        return utcnow() + timedelta(seconds=self.lease_seconds)

    def committed(self) -> list[Job]:
        """The jobs taken in the transaction that just committed (not those of a rolled-back
        savepoint, which are no longer persistent)."""
        taken, self.taken = self.taken, []
        return [job for job in taken if inspect(job).persistent]


def offer(session: Session, taker: Taker) -> None:
    """Jobs queued in ``session`` from now on go to ``taker`` when it runs their kind."""
    session.info[_TAKER] = taker


def taker_of(session: Session, kind: str, queue: str, run_at: datetime) -> Taker | None:
    """Who takes a job of ``kind`` (on ``queue``) due at ``run_at`` queued in ``session``."""
    taker: Taker | None = session.info.get(_TAKER)
    if taker is None or kind not in taker.kinds or run_at > utcnow():
        return None
    return taker if taker.has_room(queue) else None
