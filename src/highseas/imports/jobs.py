"""The import job of customer_to_task."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.config import Settings
from highseas.imports import service
from highseas.jobs import JobContext, Queue, Registry


def register(registry: Registry, settings: Settings) -> None:
    async def on_failure(session: AsyncSession, payload: dict[str, Any], _error: str) -> None:
        await service.fail(session, registry, uuid.UUID(payload["batch_id"]))

    @registry.handler(service.IMPORT_JOB, queue=Queue.IMPORTS, on_failure=on_failure)
    async def import_numbers(ctx: JobContext) -> None:
        await service.run_import(
            ctx.session,
            registry,
            uuid.UUID(ctx.payload["batch_id"]),
            checkpoint=ctx.checkpoint,
            download_ttl=timedelta(seconds=settings.download_ttl),
            public_url=settings.base_url,
            server_key=settings.resolved_secret_key(),
            chunk_rows=settings.import_chunk_rows,
        )
