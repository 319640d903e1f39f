"""The callback delivery job: one attempt at one message (docs/adr/0004-callbacks.md)."""

from __future__ import annotations

from highseas.callbacks import sender, service
from highseas.config import Settings
from highseas.jobs import JobContext, Queue, Registry


def register(registry: Registry, settings: Settings) -> None:
    @registry.handler(service.DELIVERY_JOB, queue=Queue.CALLBACKS)
    async def deliver(context: JobContext) -> None:
        message_id = str(context.payload["message_id"])
        attempt = int(context.payload["attempt"])
        outgoing = await service.plan_attempt(
            context.session,
            message_id=message_id,
            job_id=context.job_id,
            attempt=attempt,
            settings=settings,
        )
        if outgoing is None:
            return
        # Sending can take callback_timeout seconds: commit the reads first so that no
        # transaction (on SQLite: the database's write lock) is held across the HTTP call.
        await context.checkpoint()
        outcome = await sender.send(
            outgoing,
            timeout_seconds=settings.callback_timeout,
            allow_private=settings.callback_allow_private,
        )
        await service.record_attempt(
            context.session,
            message_id=message_id,
            job_id=context.job_id,
            attempt=attempt,
            outcome=outcome,
            registry=registry,
            settings=settings,
        )
