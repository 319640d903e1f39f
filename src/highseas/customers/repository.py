from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Insert, Table, delete, func, select, text
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
    statement = _insert(session, _CUSTOMERS).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["user_id", "phone"]
    )
    if session.get_bind().dialect.name == "sqlite":
        return await _insert_new_sqlite(session, statement, rows)
    result = await session.execute(statement.returning(_CUSTOMERS.c.id, _CUSTOMERS.c.phone), rows)
    return {phone: customer_id for customer_id, phone in result.all()}


async def _insert_new_sqlite(
    session: AsyncSession, statement: Insert, rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    # The bulk path of ``pool import``: SQLAlchemy's per-row parameter handling cost more than
    # SQLite's own work (docs/adr/0005-component-values.md), so bind with the columns' own
    # processors once and hand plain tuples to the driver. The transaction holds SQLite's
    # only write lock (BEGIN IMMEDIATE) and ids only grow (AUTOINCREMENT), so the new rows
    # are exactly those above the largest id seen before.
    connection = await session.connection()
    compiled = statement.compile(dialect=connection.dialect, column_keys=list(rows[0]))
    names = list(compiled.positiontup or ())
    values_of = itemgetter(*names)
    binders = [
        (index, _Binder(process))
        for index, name in enumerate(names)
        if (process := _CUSTOMERS.c[name].type.bind_processor(connection.dialect)) is not None
    ]
    parameters: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(values_of(row))
        for index, binder in binders:
            values[index] = binder(values[index])
        parameters.append(tuple(values))
    before = await last_id(session)
    await connection.exec_driver_sql(str(compiled), parameters)
    query = select(Customer.id, Customer.phone).where(Customer.id > before)
    return {phone: customer_id for customer_id, phone in (await session.execute(query)).all()}


class _Binder:
    """A column's bind processor that reuses its last answer for the same object: the user,
    the sub-account and the timestamps are one object for a whole chunk."""

    def __init__(self, process: Callable[[Any], Any]) -> None:
        self._process = process
        self._last: tuple[Any, Any] = (object(), None)

    def __call__(self, value: Any) -> Any:
        if value is not self._last[0]:
            self._last = (value, self._process(value))
        return self._last[1]


async def last_id(session: AsyncSession) -> int:
    """The newest customer's id (ids only grow)."""
    newest = await session.execute(select(func.coalesce(func.max(Customer.id), 0)))
    return int(newest.scalar_one())


async def first_id_of_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """The id of the user's oldest customer (0 for an empty pool)."""
    query = select(func.coalesce(func.min(Customer.id), 0)).where(Customer.user_id == user_id)
    return int((await session.execute(query)).scalar_one())


async def insert_values(session: AsyncSession, rows: Sequence[tuple[int, str, int]]) -> None:
    """(component_id, value_key, customer_id) rows of new customers."""
    if rows:
        connection = await session.connection()
        names = ["component_id", "value_key", "customer_id"]
        compiled = _VALUES.insert().compile(dialect=connection.dialect, column_keys=names)
        parameters: list[Any] = (
            list(rows)
            if compiled.positional
            else [dict(zip(names, row, strict=True)) for row in rows]
        )
        await connection.exec_driver_sql(str(compiled), parameters)


async def sub_user_ids(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    query = select(SubUser.id).where(SubUser.user_id == user_id)
    return [str(i) for i in (await session.execute(query)).scalars()]


async def page(
    session: AsyncSession, condition: ColumnElement[bool], *, offset: int, limit: int
) -> tuple[list[Customer], int]:
    total = (
        await session.execute(select(func.count()).select_from(Customer).where(condition))
    ).scalar_one()
    query = select(Customer).where(condition)
    query = query.order_by(Customer.created_at.desc(), Customer.id.desc())
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


async def refresh_statistics(session: AsyncSession) -> None:
    """Planner statistics after a bulk load (autovacuum would only get to it later). SQLite
    samples (analysis_limit) so this stays quick on a large pool; filters do not depend on
    it there (customers/filters.py), but the other queries plan better."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("PRAGMA analysis_limit=1000"))
        await session.execute(text("ANALYZE customers"))
        await session.execute(text("ANALYZE customer_values"))
    else:
        await session.execute(text("ANALYZE customers, customer_values"))
