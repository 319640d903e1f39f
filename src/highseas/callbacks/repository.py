from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, bindparam, delete, exists, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.clock import utcnow
from highseas.models import (
    CallbackAttempt,
    CallbackEndpoint,
    CallbackMessage,
    CallbackSecret,
    CallbackType,
)


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    # ON CONFLICT is not portable SQL: each dialect has its own insert construct.
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


# Built once: building a statement and its cache key cost about as much as running it,
# on every request (the accept path's profile in bench/README.md).
_ENDPOINT_OF = select(CallbackEndpoint).where(
    CallbackEndpoint.agent_id == bindparam("agent_id"),
    CallbackEndpoint.type == bindparam("type"),
)


# Whether the agent ``agent_id`` has configured its callback of ``type``; also a column of
# the accept's checking query (imports/repository.py).
CONFIGURED = exists().where(
    CallbackEndpoint.agent_id == bindparam("agent_id"),
    CallbackEndpoint.type == bindparam("type"),
)
_IS_CONFIGURED = select(CONFIGURED)


async def is_configured(session: AsyncSession, agent_id: uuid.UUID, type: CallbackType) -> bool:
    parameters = {"agent_id": agent_id, "type": type}
    return bool((await session.execute(_IS_CONFIGURED, parameters)).scalar_one())


async def endpoint_of(
    session: AsyncSession, agent_id: uuid.UUID, type: CallbackType
) -> CallbackEndpoint | None:
    parameters = {"agent_id": agent_id, "type": type}
    return (await session.execute(_ENDPOINT_OF, parameters)).scalar_one_or_none()


async def endpoints_of(
    session: AsyncSession, agent_id: uuid.UUID, *, offset: int, limit: int
) -> tuple[list[CallbackEndpoint], int]:
    where = CallbackEndpoint.agent_id == agent_id
    total = (
        await session.execute(select(func.count()).select_from(CallbackEndpoint).where(where))
    ).scalar_one()
    query = select(CallbackEndpoint).where(where).order_by(CallbackEndpoint.type)
    rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return list(rows), total


async def upsert_endpoint(
    session: AsyncSession, agent_id: uuid.UUID, type: CallbackType, url: str
) -> CallbackEndpoint:
    now = utcnow()
    insert = _insert(session, CallbackEndpoint).values(
        id=uuid.uuid4(), agent_id=agent_id, type=type, url=url, created_at=now, updated_at=now
    )
    statement = (
        insert.on_conflict_do_update(
            index_elements=["agent_id", "type"],
            set_={"url": insert.excluded.url, "updated_at": insert.excluded.updated_at},
        )
        .returning(CallbackEndpoint)
        .execution_options(populate_existing=True)
    )
    endpoint: CallbackEndpoint = (await session.scalars(statement)).one()
    return endpoint


async def delete_endpoint(
    session: AsyncSession, agent_id: uuid.UUID, type: CallbackType
) -> str | None:
    """Remove the endpoint; its URL, or None if there was none."""
    statement = (
        delete(CallbackEndpoint)
        .where(CallbackEndpoint.agent_id == agent_id, CallbackEndpoint.type == type)
        .returning(CallbackEndpoint.url)
    )
    url: str | None = (await session.execute(statement)).scalar_one_or_none()
    return url


async def secret_of(
    session: AsyncSession, agent_id: uuid.UUID, *, for_update: bool = False
) -> CallbackSecret | None:
    query = select(CallbackSecret).where(CallbackSecret.agent_id == agent_id)
    if for_update:
        query = query.with_for_update()
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def add_secret_if_missing(session: AsyncSession, agent_id: uuid.UUID, sealed: str) -> None:
    now = utcnow()
    statement = (
        _insert(session, CallbackSecret)
        .values(agent_id=agent_id, sealed=sealed, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["agent_id"])
    )
    await session.execute(statement)


# Plain INSERTs, not ORM flushes: the worker writes a message or an attempt per job and
# never reads it back in that transaction. Timestamps are the columns' defaults.
_MESSAGES: Table = CallbackMessage.__table__  # type: ignore[assignment]
_ATTEMPTS: Table = CallbackAttempt.__table__  # type: ignore[assignment]
_ADD_MESSAGE = insert(_MESSAGES)
_ADD_ATTEMPT = insert(_ATTEMPTS)


async def add_message(session: AsyncSession, **values: Any) -> None:
    await session.execute(_ADD_MESSAGE, values)


async def add_attempt(session: AsyncSession, **values: Any) -> None:
    await session.execute(_ADD_ATTEMPT, values)


# Built once, with the other lookups a delivery makes.
_MESSAGE = select(CallbackMessage).execution_options(populate_existing=True)
_LOCKED_MESSAGE = _MESSAGE.where(CallbackMessage.id == bindparam("message_id")).with_for_update()
_MESSAGE_OF_BATCH = _MESSAGE.where(CallbackMessage.batch_id == bindparam("batch_id"))
_LOCKED_MESSAGE_OF_BATCH = _MESSAGE_OF_BATCH.with_for_update()


async def locked_message(session: AsyncSession, message_id: str) -> CallbackMessage | None:
    """The message, locked until the commit (PostgreSQL) so that its attempt is recorded once."""
    found = await session.execute(_LOCKED_MESSAGE, {"message_id": message_id})
    return found.scalar_one_or_none()


# A delivery's plan in one query: the message, and its agent's URL and secret if any.
_DELIVERY_OF = (
    select(CallbackMessage, CallbackEndpoint, CallbackSecret)
    .outerjoin(
        CallbackEndpoint,
        (CallbackEndpoint.agent_id == CallbackMessage.agent_id)
        & (CallbackEndpoint.type == CallbackMessage.type),
    )
    .outerjoin(CallbackSecret, CallbackSecret.agent_id == CallbackMessage.agent_id)
    .where(CallbackMessage.id == bindparam("message_id"))
    .execution_options(populate_existing=True)
)


async def delivery_of(
    session: AsyncSession, message_id: str
) -> tuple[CallbackMessage, CallbackEndpoint | None, CallbackSecret | None] | None:
    """The message, with the URL and the signing secret it is to be sent with (if configured)."""
    row = (await session.execute(_DELIVERY_OF, {"message_id": message_id})).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def message_of_batch(
    session: AsyncSession, batch_id: uuid.UUID, *, for_update: bool = False
) -> CallbackMessage | None:
    query = _LOCKED_MESSAGE_OF_BATCH if for_update else _MESSAGE_OF_BATCH
    return (await session.execute(query, {"batch_id": batch_id})).scalar_one_or_none()


async def messages_of_batches(
    session: AsyncSession, batch_ids: Collection[uuid.UUID]
) -> list[CallbackMessage]:
    query = select(CallbackMessage).where(CallbackMessage.batch_id.in_(batch_ids))
    return list((await session.execute(query)).scalars())


async def attempts_of_messages(
    session: AsyncSession, message_ids: Collection[str]
) -> list[CallbackAttempt]:
    query = (
        select(CallbackAttempt)
        .where(CallbackAttempt.message_id.in_(message_ids))
        .order_by(CallbackAttempt.at, CallbackAttempt.id)
    )
    return list((await session.execute(query)).scalars())
