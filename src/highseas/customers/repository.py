from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Insert, Table, delete, func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.models import Customer, CustomerValue, SubUser
from highseas.sqlite_driver import offloaded

_CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
_VALUES: Table = CustomerValue.__table__  # type: ignore[assignment]


async def insert_new(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert customers whose phone is not yet in their user's pool; ``{phone: id}`` of the
    rows that went in. The unique (user_id, phone) constraint decides, so two writers at once
    cannot both add a phone."""
    if not rows:
        return {}
    with offloaded():
        if session.get_bind().dialect.name == "sqlite":
            statement = sqlite.insert(_CUSTOMERS).on_conflict_do_nothing(
                index_elements=["user_id", "phone"]
            )
            return await _insert_new_sqlite(session, statement, rows)
        return await _insert_new_postgresql(session, rows)


# PostgreSQL types of the customer columns, for one INSERT … SELECT FROM json_to_recordset(…)
# per chunk: one JSON parameter, encoded by json.dumps in C and decoded by PostgreSQL in C.
# SQLAlchemy's multi-row VALUES and psycopg's text arrays both cost more in Python than
# PostgreSQL's own work (bench/README.md).
_RECORD_TYPES = {
    "public_id": "uuid",
    "user_id": "uuid",
    "sub_user_id": "uuid",
    "phone": "text",
    "name": "text",
    "email": "text",
    "company": "text",
    "sex": "smallint",
    "sort": "integer",
    "extra": "json",
    "operator": "smallint",
    "province": "text",
    "city": "text",
    "components": "json",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}


async def _insert_new_postgresql(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> dict[str, int]:
    names = [name for name in _RECORD_TYPES if name in rows[0]]  # only our own column names
    record = ", ".join(f"{name} {_RECORD_TYPES[name]}" for name in names)
    statement = text(
        f"INSERT INTO customers ({', '.join(names)}) SELECT {', '.join(names)}"  # noqa: S608
        f" FROM json_to_recordset(CAST(:rows AS json)) AS r({record})"
        " ON CONFLICT (user_id, phone) DO NOTHING RETURNING id, phone"
    )
    # str() renders UUIDs and aware datetimes as PostgreSQL reads them.
    encoded = json.dumps(list(rows), ensure_ascii=False, default=str)
    result = await session.execute(statement, {"rows": encoded})
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
    dialect = connection.dialect
    binders = [
        (index, _Binder(process))
        for index, name in enumerate(names)
        # As SQLAlchemy itself binds: through the dialect's implementation of the type, so a
        # TypeDecorator's value also gets its impl's processing (a datetime becomes SQLite's
        # text with microseconds, the format every other write and every filter uses).
        if (process := _CUSTOMERS.c[name].type.dialect_impl(dialect).bind_processor(dialect))
        is not None
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


# The newest customer's id (ids only grow); also a column of the accept's checking query
# (customers/snapshot_lock.py). Built once.
LAST_ID = select(func.coalesce(func.max(Customer.id), 0))


async def last_id(session: AsyncSession) -> int:
    return int((await session.execute(LAST_ID)).scalar_one())


async def count_of_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """The size of a user's pool."""
    query = select(func.count()).select_from(Customer).where(Customer.user_id == user_id)
    return int((await session.execute(query)).scalar_one())


async def insert_values(session: AsyncSession, rows: Sequence[tuple[int, str, int]]) -> None:
    """(component_id, value_key, customer_id) rows of new customers."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        statement = text(
            "INSERT INTO customer_values (component_id, value_key, customer_id)"
            " SELECT (e->>0)::bigint, e->>1, (e->>2)::bigint"
            " FROM json_array_elements(CAST(:rows AS json)) AS e"
        )
        await session.execute(statement, {"rows": json.dumps(rows, ensure_ascii=False)})
        return
    connection = await session.connection()
    names = ["component_id", "value_key", "customer_id"]
    compiled = _VALUES.insert().compile(dialect=connection.dialect, column_keys=names)
    with offloaded():
        await connection.exec_driver_sql(str(compiled), list(rows))


async def sub_user_ids(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    query = select(SubUser.id).where(SubUser.user_id == user_id)
    return [str(i) for i in (await session.execute(query)).scalars()]


async def page(
    session: AsyncSession, condition: ColumnElement[bool], *, offset: int, limit: int
) -> tuple[list[Customer], int]:
    query = select(Customer).where(condition)
    query = query.order_by(Customer.created_at.desc(), Customer.id.desc())
    with offloaded():  # the exact count reads every match
        total = (
            await session.execute(select(func.count()).select_from(Customer).where(condition))
        ).scalar_one()
        rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return list(rows), total


async def by_public_id(
    session: AsyncSession, user_id: uuid.UUID, public_id: uuid.UUID
) -> Customer | None:
    query = select(Customer).where(Customer.user_id == user_id, Customer.public_id == public_id)
    return (await session.execute(query)).scalar_one_or_none()


async def delete_where(session: AsyncSession, condition: ColumnElement[bool]) -> int:
    # Values go by ON DELETE CASCADE (indexed by customer_id).
    with offloaded():
        deleted = await session.execute(delete(Customer).where(condition).returning(Customer.id))
    return len(deleted.all())


async def refresh_statistics(session: AsyncSession) -> None:
    """Planner statistics after a bulk load (autovacuum would only get to it later)."""
    with offloaded():
        if session.get_bind().dialect.name == "sqlite":
            # A full analysis: a sampled one (analysis_limit) misjudged a single user's share
            # of the pool by a factor of 100.
            await session.execute(text("ANALYZE customers"))
            await session.execute(text("ANALYZE customer_values"))
        else:
            await session.execute(text("ANALYZE customers, customer_values"))
