"""Batches: accepted asynchronous work, its state, and its result (contract §4).

A batch row and its job are written in the caller's transaction: once a ``unique_id`` is
returned, the work exists (ADR 0002). The job calls ``start`` and then ``finish``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.batches import repository
from highseas.batches.schemas import BatchQuery, BatchRead
from highseas.clock import utcnow
from highseas.components.service import parse_public_id
from highseas.envelope import PageParams
from highseas.errors import NotFound
from highseas.jobs import Registry, enqueue
from highseas.models import Batch, BatchState, BatchType, User


async def accept(
    session: AsyncSession,
    registry: Registry,
    *,
    user: User,
    type: BatchType,
    job_kind: str,
    request: dict[str, Any],
    encryption: bool = False,
) -> Batch:
    batch = Batch(
        agent_id=user.agent_id, user_id=user.id, type=type, request=request, encryption=encryption
    )
    await repository.add(session, batch)
    await enqueue(session, registry, job_kind, {"batch_id": str(batch.id)})
    return batch


async def start(session: AsyncSession, batch_id: uuid.UUID) -> Batch | None:
    """The batch to work on, marked running; None when it is already finished (a job that
    ran to completion but lost its lease before it could say so)."""
    batch = await repository.get(session, batch_id)
    if batch is None or batch.state in (BatchState.SUCCEEDED, BatchState.FAILED):
        return None
    batch.state = BatchState.RUNNING
    await session.flush()
    return batch


async def finish(
    session: AsyncSession, batch: Batch, result: dict[str, Any], *, succeeded: bool = True
) -> None:
    batch.state = BatchState.SUCCEEDED if succeeded else BatchState.FAILED
    batch.result = result
    batch.finished_at = utcnow()
    await session.flush()


def callback_message(batch: Batch) -> dict[str, Any]:
    """The callback body of a finished batch (contract §3, §5)."""
    message: dict[str, Any] = {
        "mode": "batch",
        "type": batch.type.value,
        "unique_id": str(batch.id),
        "user_id": str(batch.user_id),
    }
    message["status"] = "success" if batch.state is BatchState.SUCCEEDED else "failed"
    message["data"] = batch.result or {}
    return message


def read(batch: Batch) -> BatchRead:
    finished = batch.state in (BatchState.SUCCEEDED, BatchState.FAILED)
    return BatchRead(
        type=batch.type,
        unique_id=batch.id,
        user_id=batch.user_id,
        status=("success" if batch.state is BatchState.SUCCEEDED else "failed")
        if finished
        else None,
        data=batch.result,
        state=batch.state,
        accepted_at=batch.accepted_at,
        finished_at=batch.finished_at,
    )


async def owned(session: AsyncSession, user: User, unique_id: str) -> Batch:
    parsed = parse_public_id(unique_id)
    batch = None if parsed is None else await repository.of_user(session, user.id, parsed)
    if batch is None:
        raise NotFound(f"批次 {unique_id} 不存在", reason="batch_not_found")
    return batch


async def list_batches(
    session: AsyncSession, user: User, filters: BatchQuery, params: PageParams
) -> tuple[list[Batch], int]:
    return await repository.page_of_user(
        session, user.id, filters, offset=params.offset, limit=params.per_page
    )
