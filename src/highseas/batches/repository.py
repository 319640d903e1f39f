from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.batches.schemas import BatchQuery
from highseas.models import Batch


async def add(session: AsyncSession, batch: Batch) -> None:
    session.add(batch)
    await session.flush()


async def get(session: AsyncSession, batch_id: uuid.UUID) -> Batch | None:
    return await session.get(Batch, batch_id, populate_existing=True)


async def of_user(session: AsyncSession, user_id: uuid.UUID, batch_id: uuid.UUID) -> Batch | None:
    query = select(Batch).where(Batch.id == batch_id, Batch.user_id == user_id)
    return (await session.execute(query)).scalar_one_or_none()


async def page_of_user(
    session: AsyncSession, user_id: uuid.UUID, filters: BatchQuery, *, offset: int, limit: int
) -> tuple[list[Batch], int]:
    condition = Batch.user_id == user_id
    if filters.type is not None:
        condition &= Batch.type == filters.type
    if filters.state is not None:
        condition &= Batch.state == filters.state
    total = (
        await session.execute(select(func.count()).select_from(Batch).where(condition))
    ).scalar_one()
    query = select(Batch).where(condition).order_by(Batch.accepted_at.desc(), Batch.id)
    rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return list(rows), total
