from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.batches.schemas import BatchQuery
from highseas.db import Database
from highseas.models import Batch, DownloadKey, TaskNumber
from highseas.sqlite_driver import offloaded

# A plain INSERT, not an ORM flush: accepting writes a batch and never reads it back, and
# the unit of work cost about a fifth of an accept (bench/README.md). State and accepted_at
# are the columns' defaults.
_BATCHES: Table = Batch.__table__  # type: ignore[assignment]
_ADD = insert(_BATCHES)


async def add(session: AsyncSession, **values: Any) -> None:
    await session.execute(_ADD, values)


# Built once: a worker reads the batch of every job it runs. populate_existing: a batch
# already in the session is read again from its row (its state may have moved on).
_GET = (
    select(Batch).where(Batch.id == bindparam("batch_id")).execution_options(populate_existing=True)
)


async def get(session: AsyncSession, batch_id: uuid.UUID) -> Batch | None:
    return (await session.execute(_GET, {"batch_id": batch_id})).scalar_one_or_none()


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
    if filters.task_id is not None:
        condition &= Batch.task_id == filters.task_id
    total = (
        await session.execute(select(func.count()).select_from(Batch).where(condition))
    ).scalar_one()
    query = select(Batch).where(condition).order_by(Batch.accepted_at.desc(), Batch.id)
    rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return list(rows), total


def add_download_key(
    session: AsyncSession, *, key_hash: str, batch_id: uuid.UUID, expires_at: datetime
) -> None:
    # Written with the transaction's next flush (an import's: together with its result).
    session.add(DownloadKey(key_hash=key_hash, batch_id=batch_id, expires_at=expires_at))


async def download_key(session: AsyncSession, key_hash: str) -> DownloadKey | None:
    return await session.get(DownloadKey, key_hash)


async def numbers_of_batch(
    database: Database, batch_id: uuid.UUID, *, page_size: int = 20_000
) -> AsyncIterator[list[str]]:
    """The phones a batch added, ascending by pool customer (contract §3), a page at a time,
    each page in its own short transaction (a long download holds no lock and no snapshot).

    A page is the next ``page_size`` customers after the last one sent: read from the batch's
    stretch of the (batch_id, phone, customer_id) index alone and sorted. That index is keyed
    by phone for the import's writes, so a batch of n numbers costs n / page_size scans of its
    own entries: about 20 for a million."""
    after = 0  # customer ids start at 1; an import always records the customer
    while True:
        async with database.sessions() as session:
            query = (
                select(TaskNumber.customer_id, TaskNumber.phone)
                .where(TaskNumber.batch_id == batch_id, TaskNumber.customer_id > after)
                .order_by(TaskNumber.customer_id)
                .limit(page_size)
            )
            with offloaded():  # the sort reads every number of the batch
                rows = (await session.execute(query)).all()
        if not rows:
            return
        yield [phone for _, phone in rows]
        last = rows[-1][0]
        assert last is not None  # > after is never true of NULL
        after = last


async def has_live_download_key(session: AsyncSession, batch_id: uuid.UUID, now: datetime) -> bool:
    query = select(DownloadKey.key_hash).where(
        DownloadKey.batch_id == batch_id, DownloadKey.expires_at > now
    )
    return (await session.execute(query.limit(1))).first() is not None
