"""Wake-ups across processes on PostgreSQL: NOTIFY when a job is enqueued, LISTEN in workers.

A trigger on ``jobs`` (migration 7c2e4b91d0a5) sends ``NOTIFY highseas_jobs, '<queue>'`` for
every job inserted, in the enqueueing transaction, so PostgreSQL delivers it when that
transaction commits and never when it rolls back. Each worker
process keeps one connection that LISTENs and wakes its claim loops of that queue
(``wakeup.wake``). A notification is only a hint: the claim loops keep polling, so a listener
that lost its connection, or a notification dropped by a database restart, costs at most one
poll interval. SQLite has no other process to wake: nothing is sent there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import URL

from highseas.jobs.backoff import retry_delay

logger = logging.getLogger(__name__)

CHANNEL = "highseas_jobs"
# Reconnecting after a lost connection backs off from half a second up to half a minute;
# polling covers the gap.
RECONNECT_BASE_SECONDS = 0.5
RECONNECT_CAP_SECONDS = 30.0


def supported(url: URL) -> bool:
    return url.get_backend_name() == "postgresql"


async def listen(url: URL, wake: Callable[[str], None]) -> None:
    """Call ``wake(queue)`` for every notification until cancelled, reconnecting whenever
    the connection fails."""
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    failures = 0
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                if failures:
                    logger.info("listening for job notifications again")
                failures = 0
                async for notification in conn.notifies():
                    wake(notification.payload)
        except (psycopg.Error, OSError) as exc:
            failures += 1
            delay = retry_delay(failures, base=RECONNECT_BASE_SECONDS, cap=RECONNECT_CAP_SECONDS)
            # One line per outage: the claim loops report it too.
            if failures == 1:
                logger.warning("job notifications lost (%s); polling meanwhile", exc)
            await asyncio.sleep(delay)
