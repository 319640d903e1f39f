from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from highseas.models import CallTask, TaskNumber


async def add(session: AsyncSession, task: CallTask) -> None:
    session.add(task)
    await session.flush()


# Built once: building a statement and its cache key cost about as much as running it,
# on every request (the accept path's profile in bench/README.md).
_TASK_OF_USER = select(CallTask).where(
    CallTask.id == bindparam("task_id"), CallTask.user_id == bindparam("user_id")
)


async def task_of_user(
    session: AsyncSession, user_id: uuid.UUID, task_id: uuid.UUID
) -> CallTask | None:
    parameters = {"task_id": task_id, "user_id": user_id}
    return (await session.execute(_TASK_OF_USER, parameters)).scalar_one_or_none()


async def _page(
    session: AsyncSession, query: Select[Any], *, offset: int, limit: int
) -> tuple[list[Any], int]:
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return list(rows), total


def _contains(session: AsyncSession, column: Any, text: str) -> ColumnElement[bool]:
    # Literal and case-sensitive on both databases: LIKE would treat % and _ in the input as
    # wildcards and is case-insensitive for ASCII on SQLite.
    if session.get_bind().dialect.name == "postgresql":
        return func.strpos(column, text) > 0
    return func.instr(column, text) > 0


async def tasks_of_user(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    statuses: Collection[int] | None,
    name: str | None,
    sub_user_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> tuple[list[CallTask], int]:
    query = select(CallTask).where(CallTask.user_id == user_id)
    if statuses is not None:
        query = query.where(CallTask.status.in_(statuses))
    if name is not None:
        query = query.where(_contains(session, CallTask.name, name))
    if sub_user_id is not None:
        query = query.where(CallTask.sub_user_id == sub_user_id)
    query = query.order_by(CallTask.created_at.desc(), CallTask.id)
    return await _page(session, query, offset=offset, limit=limit)


async def count_numbers(session: AsyncSession, task_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(TaskNumber).where(TaskNumber.task_id == task_id)
    return int((await session.execute(query)).scalar_one())


async def numbers_of_task(
    session: AsyncSession,
    task_id: uuid.UUID,
    *,
    phone: str | None,
    statuses: Collection[int] | None,
    offset: int,
    limit: int,
) -> tuple[list[TaskNumber], int]:
    query = select(TaskNumber).where(TaskNumber.task_id == task_id)
    if phone is not None:
        query = query.where(TaskNumber.phone == phone)
    if statuses is not None:
        query = query.where(TaskNumber.status.in_(statuses))
    return await _page(session, query.order_by(TaskNumber.id), offset=offset, limit=limit)


async def delete_numbers(session: AsyncSession, task_id: uuid.UUID, phones: Collection[str]) -> int:
    if not phones:
        return 0
    # RETURNING, not rowcount: the count is exact on both drivers.
    statement = (
        delete(TaskNumber)
        .where(TaskNumber.task_id == task_id, TaskNumber.phone.in_(phones))
        .returning(TaskNumber.id)
    )
    return len((await session.execute(statement)).all())
