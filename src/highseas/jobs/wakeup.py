"""Waking this process's workers when a job it enqueued is committed.

A worker polls its queues every ``HIGHSEAS_JOB_POLL_SECONDS``; a job enqueued by the same
process (``highseas serve`` with its in-process worker, or a job that queues the next one, as
an import queues its callback) need not wait for the next poll. ``enqueue`` notes the queue
on the session; the commit that makes the job visible wakes the queue's waiting workers.
Other processes are woken through PostgreSQL (``jobs/notify.py``, which learns of the commit
here), or find the job by polling.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

_PENDING = "highseas.jobs.wakeup"
_waiting: defaultdict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)
_committed: set[tuple[asyncio.AbstractEventLoop, Callable[[str], None]]] = set()


def note(session: Session, queue: str) -> None:
    """``queue`` has a job in this session's transaction: wake it when that commits."""
    session.info.setdefault(_PENDING, set()).add(queue)


def listen(queue: str) -> asyncio.Event:
    """An event set whenever a job of ``queue`` is committed in this process."""
    woken = asyncio.Event()
    _waiting[queue].add((asyncio.get_running_loop(), woken))
    return woken


def wake(queue: str) -> None:
    """Wake this process's workers waiting on ``queue``."""
    for loop, woken in list(_waiting.get(queue, ())):
        _call_soon(loop, woken.set)


def forget(queue: str, woken: asyncio.Event) -> None:
    _waiting[queue] = {(loop, e) for loop, e in _waiting[queue] if e is not woken}


def on_commit(callback: Callable[[str], None]) -> Callable[[], None]:
    """Call ``callback(queue)`` on the running loop whenever this process commits a job of
    ``queue`` (not for wake-ups from other processes); returns the way to stop."""
    entry = (asyncio.get_running_loop(), callback)
    _committed.add(entry)
    return lambda: _committed.discard(entry)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for queue in session.info.pop(_PENDING, ()):
        wake(queue)
        for loop, callback in list(_committed):
            _call_soon(loop, callback, queue)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: str) -> None:
    # The committing code may run on another thread than the worker (tests, demo). On the
    # loop's own thread, call_soon spares the self-pipe write of call_soon_threadsafe.
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.call_soon(callback, *args)
    else:
        loop.call_soon_threadsafe(callback, *args)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
