from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from highseas.callbacks import repository as callbacks_repository
from highseas.customers import snapshot_lock
from highseas.models import (
    CallbackType,
    CallTask,
    Customer,
    IdempotencyKey,
    NumberStatus,
    TaskNumber,
)
from highseas.sqlite_driver import offloaded

_NUMBERS: Table = TaskNumber.__table__  # type: ignore[assignment]
_KEYS: Table = IdempotencyKey.__table__  # type: ignore[assignment]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


class AcceptChecks(NamedTuple):
    callback_configured: bool
    # The import's snapshot bound (customers/snapshot_lock.py).
    pool_bound: int


# What an accept reads, in one query (each query costs an accept about a tenth of its CPU,
# bench/README.md): a row only when the task is the user's, saying whether the agent has the
# callback configured, and the pool's snapshot bound. Built once per dialect.
_ACCEPT_CHECKS: dict[str, Select[bool, int]] = {}


def _accept_checks(dialect: str) -> Select[bool, int]:
    statement = _ACCEPT_CHECKS.get(dialect)
    if statement is None:
        statement = _ACCEPT_CHECKS[dialect] = (
            select(callbacks_repository.CONFIGURED, snapshot_lock.bound_column(dialect))
            .select_from(CallTask)
            .where(CallTask.id == bindparam("task_id"), CallTask.user_id == bindparam("user_id"))
        )
    return statement


async def accept_checks(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    task_id: uuid.UUID,
    agent_id: uuid.UUID,
    type: CallbackType,
) -> AcceptChecks | None:
    """None when ``task_id`` is not the user's task."""
    parameters = {
        "user_id": user_id,
        "task_id": task_id,
        "agent_id": agent_id,
        "type": type,
        **snapshot_lock.bound_parameters(user_id),
    }
    row = (await session.execute(_accept_checks(_dialect(session)), parameters)).one_or_none()
    return None if row is None else AcceptChecks(bool(row[0]), int(row[1]))


async def claim_idempotency_key(
    session: AsyncSession,
    *,
    agent_id: uuid.UUID,
    key: str,
    request_hash: str,
    given_hash: str,
    batch_id: uuid.UUID,
    now: datetime,
    expired_before: datetime,
) -> IdempotencyKey | None:
    """Take ``key`` for a new batch (also when the earlier use has expired); None when it is
    held by a live earlier request. One statement, so two requests with one key cannot both
    win: the second waits on the unique key and then finds it taken."""
    insert = postgresql.insert(_KEYS) if _dialect(session) == "postgresql" else sqlite.insert(_KEYS)
    values = insert.values(
        agent_id=agent_id,
        key=key,
        request_hash=request_hash,
        given_hash=given_hash,
        batch_id=batch_id,
        created_at=now,
    )
    statement = values.on_conflict_do_update(
        index_elements=["agent_id", "key"],
        set_={
            "request_hash": values.excluded.request_hash,
            "given_hash": values.excluded.given_hash,
            "batch_id": values.excluded.batch_id,
            "created_at": values.excluded.created_at,
        },
        where=_KEYS.c.created_at < expired_before,
    ).returning(_KEYS.c.batch_id)
    claimed = (await session.execute(statement)).scalar_one_or_none()
    if claimed is not None:
        return None
    return await session.get(IdempotencyKey, (agent_id, key), populate_existing=True)


async def replayed_batch(
    session: AsyncSession, *, agent_id: uuid.UUID, key: str, given_hash: str, live_after: datetime
) -> uuid.UUID | None:
    """The batch of a live earlier request with this key and exactly this input, if any."""
    query = select(_KEYS.c.batch_id).where(
        _KEYS.c.agent_id == agent_id,
        _KEYS.c.key == key,
        _KEYS.c.given_hash == given_hash,
        _KEYS.c.created_at >= live_after,
    )
    return (await session.execute(query)).scalar_one_or_none()


class Chunk(NamedTuple):
    matched: int
    imported: int
    # The chunk's last phone, where the next one starts; None after the last chunk.
    end: str | None


async def prune_idempotency_keys(
    session: AsyncSession, *, created_before: datetime, limit: int
) -> int:
    """Delete up to ``limit`` keys claimed before ``created_before``; how many went. A key
    past its 24 hours is only reclaimed when it comes again: until then it is dead weight."""
    doomed = (
        select(_KEYS.c.agent_id, _KEYS.c.key)
        .where(_KEYS.c.created_at < created_before)
        .limit(limit)
    )
    deleted = await session.execute(
        delete(_KEYS)
        .where(tuple_(_KEYS.c.agent_id, _KEYS.c.key).in_(doomed))
        .returning(_KEYS.c.key)
    )
    return len(deleted.all())


async def import_chunk(
    session: AsyncSession,
    *,
    task_id: uuid.UUID,
    batch_id: uuid.UUID,
    condition: ColumnElement[bool],
    after_phone: str,
    rows: int,
    up_to_id: int,
    now: datetime,
) -> Chunk:
    """Copy the next ``rows`` matching customers in phone order after ``after_phone``, with
    ``id <= up_to_id`` (the snapshot), into the task in one set-based statement; a phone
    already in the task is skipped by its unique key. Fewer than ``rows`` found: the last.

    A chunk is a range of phones, not of customer ids: its rows land in one stretch of each
    of the task's indexes (all keyed by phone or arrival), so a commit writes the pages the
    chunk filled and not most of every index again (docs/adr/0008-import-chunks-by-phone.md).
    The whole pool walks the (user_id, phone) index; a component filter seeks its values."""
    chunk = (
        select(
            literal(task_id, TaskNumber.task_id.type).label("task_id"),
            Customer.phone,
            Customer.id.label("customer_id"),
            literal(batch_id, TaskNumber.batch_id.type).label("batch_id"),
            literal(int(NumberStatus.WAITING)).label("status"),
            literal(now, TaskNumber.created_at.type).label("created_at"),
        )
        .where(condition, Customer.id <= up_to_id, Customer.phone > after_phone)
        .order_by(Customer.phone)
        .limit(rows)
    )
    with offloaded():  # a chunk of 50,000 rows takes about 0.15 s on SQLite
        columns = ["task_id", "phone", "customer_id", "batch_id", "status", "created_at"]
        if _dialect(session) == "postgresql":
            # The chunk's CTE outgrew the default 4 MB of work memory and spilled to a temporary
            # file (bench/README.md); for this transaction only.
            await session.execute(text("SET LOCAL work_mem = '64MB'"))
            # One statement, one snapshot: the counts and the insert see the same customers.
            found = chunk.cte("found")
            inserted = (
                postgresql.insert(_NUMBERS)
                .from_select(columns, select(found))
                .on_conflict_do_nothing(index_elements=["task_id", "phone"])
                .returning(_NUMBERS.c.id)
                .cte("inserted")
            )
            counts = select(
                select(func.count()).select_from(found).scalar_subquery(),
                select(func.max(found.c.phone)).scalar_subquery(),
                select(func.count()).select_from(inserted).scalar_subquery(),
            )
            matched, last, imported = (await session.execute(counts)).one()
        else:
            # SQLite: this transaction holds the only write lock, so the count and the insert
            # see the same customers.
            found_rows = chunk.subquery()
            counted = select(func.count(), func.max(found_rows.c.phone))
            matched, last = (await session.execute(counted)).one()
            insert = (
                sqlite.insert(_NUMBERS)
                .from_select(columns, chunk)
                .on_conflict_do_nothing(index_elements=["task_id", "phone"])
            )
            imported = (await session.execute(insert)).rowcount  # type: ignore[attr-defined]
        return Chunk(int(matched), int(imported), last if matched == rows else None)
