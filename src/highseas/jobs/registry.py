"""Job kinds and their handlers, the named queues they run on, and what a handler is given."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.jobs.queue import Lease, holds_lease


class Queue(StrEnum):
    """Named queues, each with its own worker slots, so long imports cannot starve callbacks."""

    IMPORTS = "imports"
    CALLBACKS = "callbacks"


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help: the job fails at once."""


class LeaseLost(Exception):
    """The job is no longer held by this worker (its lease expired and another worker took it)."""


@dataclass
class JobContext:
    """What a handler receives.

    ``session`` is in the transaction that will also complete the job: the handler must not
    commit it (the worker does, fenced) and may only ``checkpoint()``.
    """

    session: AsyncSession
    job_id: int
    attempt: int
    payload: dict[str, Any]
    worker_id: str
    # The worker's, told of each commit: it starts the jobs handed to it (jobs/handoff.py).
    on_commit: Callable[[], None] = lambda: None

    async def checkpoint(self) -> None:
        """Commit the work done so far and continue in a new transaction.

        For long jobs: it keeps SQLite's write lock and PostgreSQL's row locks short. Work
        committed at a checkpoint stays committed if a later step fails, so a job that
        checkpoints must be able to resume from any checkpoint. Raises ``LeaseLost`` (and
        commits nothing) if another worker has taken the job over.
        """
        lease = Lease(job_id=self.job_id, worker_id=self.worker_id, attempt=self.attempt)
        if not await holds_lease(self.session, lease):
            raise LeaseLost(f"job {self.job_id} attempt {self.attempt} is no longer ours")
        await self.session.commit()
        self.on_commit()
        # The commit gave the connection back to the pool and woke the first request waiting
        # for it; let that request take it before this job's next statement does (SQLite has
        # one connection per process: without this an import starves the API until it ends).
        await asyncio.sleep(0)


Handler = Callable[[JobContext], Awaitable[None]]
# Told, in the transaction that fails the job for good, what the job was and why it failed:
# the place to record the failure where the job's owner will see it.
FailureHook = Callable[[AsyncSession, dict[str, Any], str], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    kind: str
    queue: Queue
    handler: Handler
    max_attempts: int | None
    on_failure: FailureHook | None = None


class Registry:
    """The job kinds a process can run; a worker claims only these (safe rolling deploys)."""

    def __init__(self, *, default_max_attempts: int = 10) -> None:
        if default_max_attempts < 1:
            raise ValueError("default_max_attempts must be at least 1")
        self.default_max_attempts = default_max_attempts
        self._kinds: dict[str, JobKind] = {}

    def handler(
        self,
        kind: str,
        *,
        queue: Queue,
        max_attempts: int | None = None,
        on_failure: FailureHook | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine function as the handler of ``kind``."""
        if kind in self._kinds:
            raise ValueError(f"job kind {kind!r} is already registered")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

        def register(handler: Handler) -> Handler:
            self._kinds[kind] = JobKind(kind, Queue(queue), handler, max_attempts, on_failure)
            return handler

        return register

    def lookup(self, kind: str) -> JobKind:
        try:
            return self._kinds[kind]
        except KeyError:
            raise ValueError(f"unknown job kind {kind!r}") from None

    def kinds(self, queue: str) -> list[str]:
        return sorted(k.kind for k in self._kinds.values() if k.queue == queue)

    def max_attempts(self, kind: str) -> int:
        registered = self.lookup(kind).max_attempts
        return registered if registered is not None else self.default_max_attempts
