"""Wake-ups across processes on PostgreSQL: NOTIFY once a job is committed, LISTEN in workers.

Each process that serves the API or runs a worker on PostgreSQL runs ``announce``
(``announcing``): after a
commit that enqueued jobs (``jobs/wakeup.py`` tells it), it sends ``NOTIFY highseas_jobs,
'<queue>'`` on a pooled connection, in a transaction of its own, at most one per queue every
``COALESCE_SECONDS``. Each worker process keeps one connection that LISTENs and wakes its
claim loops of that queue (``wakeup.wake``). A notification is only a hint: the claim loops
keep polling, so a listener that lost its connection, a notification dropped by a database
restart, a failed send, or a job enqueued by a process without ``announce`` (the CLI) costs at
most one poll interval. SQLite has no other process to wake: nothing is sent there.

Not in the enqueueing transaction: PostgreSQL serialises the commits of transactions that
notify, and a listener that stops reading (a worker process stopped or cut off, its
connection still open) made those commits wait. With a stopped worker beside it, the API's
accept p99 at 200 requests/s was 156–993 ms against 9.5–31 ms without the notification in
the accept (bench/README.md; 7.8–243 ms with this module, nine runs). Now an accept's commit
does not notify, and one notification stands for every job of its queue committed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from highseas.db import Database
from highseas.jobs import wakeup
from highseas.jobs.backoff import retry_delay

logger = logging.getLogger(__name__)

CHANNEL = "highseas_jobs"
# Reconnecting after a lost connection backs off from half a second up to half a minute;
# polling covers the gap.
RECONNECT_BASE_SECONDS = 0.5
RECONNECT_CAP_SECONDS = 30.0


def supported(url: URL) -> bool:
    return url.get_backend_name() == "postgresql"


COALESCE_SECONDS = 0.05
_NOTIFY = text("SELECT pg_notify(:channel, :queue)")


@asynccontextmanager
async def announcing(database: Database) -> AsyncIterator[None]:
    """Run ``announce`` for the block, on PostgreSQL (SQLite has nobody else to wake)."""
    if not supported(database.engine.url):
        yield
        return
    task = asyncio.create_task(announce(database), name="announce")
    await asyncio.sleep(0)  # its first step subscribes: the block's first commit is heard
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def announce(database: Database) -> None:
    """Notify other processes of the jobs this process commits (module docstring), until
    cancelled."""
    pending: set[str] = set()
    ready = asyncio.Event()

    def committed(queue: str) -> None:
        pending.add(queue)
        ready.set()

    stop = wakeup.on_commit(committed)
    failures = 0
    try:
        while True:
            await ready.wait()
            ready.clear()
            queues = sorted(pending)
            pending.clear()
            try:
                async with database.engine.connect() as connection:
                    for queue in queues:
                        await connection.execute(_NOTIFY, {"channel": CHANNEL, "queue": queue})
                    await connection.commit()
                failures = 0
                await asyncio.sleep(COALESCE_SECONDS)
            except (DBAPIError, PoolTimeout) as exc:
                # The workers' polling covers what this would have said; try again later.
                failures += 1
                logger.warning("job notification not sent (%s)", type(exc).__name__)
                pending.update(queues)
                ready.set()
                await asyncio.sleep(
                    retry_delay(failures, base=RECONNECT_BASE_SECONDS, cap=RECONNECT_CAP_SECONDS)
                )
    finally:
        stop()


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
