"""Asking for background work: a job row in the caller's own transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.clock import utcnow
from highseas.jobs import handoff, wakeup
from highseas.jobs.queue import insert_job
from highseas.jobs.registry import Registry
from highseas.models import Job


async def enqueue(
    session: AsyncSession,
    registry: Registry,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
) -> Job:
    """Add a job in the caller's transaction: it exists only if that transaction commits."""
    registered = registry.lookup(kind)
    try:
        encoded = json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload of job kind {kind!r} is not JSON-serialisable: {exc}") from exc
    if max_attempts is None:
        max_attempts = registry.max_attempts(kind)
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    run_at = run_at or utcnow()
    # Queued by a job whose worker runs this kind: that worker takes it (jobs/handoff.py).
    taker = handoff.taker_of(session.sync_session, kind, registered.queue.value, run_at)
    job = await insert_job(
        session,
        queue=registered.queue.value,
        kind=kind,
        # Stored as it will be read back, so the handler sees lists where the caller had tuples.
        payload=json.loads(encoded),
        max_attempts=max_attempts,
        run_at=run_at,
        claimed_by=None if taker is None else (taker.worker_id, taker.lease_until()),
    )
    if taker is not None:
        taker.taken.append(job)
    else:
        # Woken on commit: this process's workers, and others through jobs/notify.py.
        wakeup.note(session.sync_session, registered.queue.value)
    return job
