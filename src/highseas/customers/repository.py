from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Insert, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.models import Customer, CustomerValue, SubUser

_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
_VALUES: Table = CustomerValue.__table__  # type: ignore[assignment]


def _insert(session: AsyncSession, table: Table) -> Insert:
    # ON CONFLICT has no portable construct: each dialect's insert carries its own.
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert customers whose phone is not yet in their user's pool; ``{phone: id}`` of the
    rows that went in. The unique (user_id, phone) constraint decides, so two writers at once
    cannot both add a phone."""
    if not rows:
        return {}
    statement = (
        _insert(session, _CUSTOMERS)  # type: ignore[attr-defined]
        .on_conflict_do_nothing(index_elements=["user_id", "phone"])
        .returning(_CUSTOMERS.c.id, _CUSTOMERS.c.phone)
    )
    result = await session.execute(statement, list(rows))
    return {phone: customer_id for customer_id, phone in result.all()}


async def insert_values(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_VALUES.insert(), list(rows))


async def sub_user_ids(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    query = select(SubUser.id).where(SubUser.user_id == user_id)
    return [str(i) for i in (await session.execute(query)).scalars()]


async def page(
    session: AsyncSession, condition: ColumnElement[bool], *, offset: int, limit: int
) -> tuple[list[Customer], int]:
    total = (
        await session.execute(select(func.count()).select_from(Customer).where(condition))
    ).scalar_one()
    query = select(Customer).where(condition).order_by(Customer.id.desc())
    rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return list(rows), total


async def by_public_id(
    session: AsyncSession, user_id: uuid.UUID, public_id: uuid.UUID
) -> Customer | None:
    query = select(Customer).where(Customer.user_id == user_id, Customer.public_id == public_id)
    return (await session.execute(query)).scalar_one_or_none()


async def delete_where(session: AsyncSession, condition: ColumnElement[bool]) -> int:
    # Values go by ON DELETE CASCADE (indexed by customer_id).
    deleted = await session.execute(delete(Customer).where(condition).returning(Customer.id))
    return len(deleted.all())
