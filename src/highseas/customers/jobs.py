"""Background work of the pool: storing the rows of an accepted async_customer batch."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.batches import service as batches
from highseas.config import Settings
from highseas.customers import service
from highseas.jobs import JobContext, Queue, Registry

# The job's error text stays in the log: it may name internals the client has no use for.
FAILED = {"reason": "import_failed", "message": "数据写入失败（已多次重试），请稍后重新提交"}


def register(registry: Registry, settings: Settings) -> None:
    async def on_failure(session: AsyncSession, payload: dict[str, Any], _error: str) -> None:
        await batches.fail(session, registry, uuid.UUID(payload["batch_id"]), FAILED)

    @registry.handler(service.ASYNC_CUSTOMER_JOB, queue=Queue.IMPORTS, on_failure=on_failure)
    async def store_rows(ctx: JobContext) -> None:
        await service.run_async_customer(
            ctx.session, registry, uuid.UUID(ctx.payload["batch_id"]), settings
        )
