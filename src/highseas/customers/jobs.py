"""Background work of the pool: storing the rows of an accepted async_customer batch."""

from __future__ import annotations

import uuid

from highseas.customers import service
from highseas.jobs import JobContext, Queue, Registry


def register(registry: Registry) -> None:
    @registry.handler(service.ASYNC_CUSTOMER_JOB, queue=Queue.IMPORTS)
    async def store_rows(ctx: JobContext) -> None:
        await service.run_async_customer(ctx.session, uuid.UUID(ctx.payload["batch_id"]))
