"""Asking for background work: a job row in the caller's own transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.clock import utcnow
from highseas.jobs import handoff, wakeup
from highseas.jobs.queue import NewJob, insert_claimed, insert_job
from highseas.jobs.registry import Registry


async def enqueue(
    session: AsyncSession,
    registry: Registry,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
) -> int:
    """Add a job in the caller's transaction (it exists only if that transaction commits); its
    id."""
    registered = registry.lookup(kind)
    try:
        encoded = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload of job kind {kind!r} is not JSON-serialisable: {exc}") from exc
    if max_attempts is None:
        max_attempts = registry.max_attempts(kind)
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    queue = registered.queue.value
    new = NewJob(
        queue=queue,
        kind=kind,
        # Stored as it will be read back, so the handler sees lists where the caller had tuples.
        payload=json.loads(encoded),
        max_attempts=max_attempts,
        run_at=run_at or utcnow(),
    )
    # Queued by a job whose worker runs this kind: that worker takes it (jobs/handoff.py).
    taker = handoff.taker_of(session.sync_session, kind, queue, new.run_at)
    if taker is not None:
        job = await insert_claimed(
            session, new, worker_id=taker.worker_id, locked_until=taker.lease_until()
        )
        taker.taken.append(job)
        return job.id
    job_id = await insert_job(session, new)
    # Woken on commit: this process's workers, and others through jobs/notify.py.
    wakeup.note(session.sync_session, queue)
    return job_id
