from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from highseas.models import SubUser, User


async def add(session: AsyncSession, account: User | SubUser) -> None:
    session.add(account)
    await session.flush()


# Built once: building a statement and its cache key cost about as much as running it,
# on every request (the accept path's profile in bench/README.md).
_USER_OF_AGENT = select(User).where(
    User.id == bindparam("user_id"), User.agent_id == bindparam("agent_id")
)


async def user_of_agent(
    session: AsyncSession, agent_id: uuid.UUID, user_id: uuid.UUID
) -> User | None:
    parameters = {"user_id": user_id, "agent_id": agent_id}
    return (await session.execute(_USER_OF_AGENT, parameters)).scalar_one_or_none()


async def sub_user_of_user(
    session: AsyncSession, user_id: uuid.UUID, sub_user_id: uuid.UUID
) -> SubUser | None:
    return (
        await session.execute(
            select(SubUser).where(SubUser.id == sub_user_id, SubUser.user_id == user_id)
        )
    ).scalar_one_or_none()


async def _page(
    session: AsyncSession, query: Select[Any], *, offset: int, limit: int
) -> tuple[list[Any], int]:
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return list(rows), total


async def users_of_agent(
    session: AsyncSession, agent_id: uuid.UUID, *, offset: int, limit: int
) -> tuple[list[User], int]:
    query = select(User).where(User.agent_id == agent_id).order_by(User.created_at.desc(), User.id)
    return await _page(session, query, offset=offset, limit=limit)


async def sub_users_of_user(
    session: AsyncSession, user_id: uuid.UUID, *, offset: int, limit: int
) -> tuple[list[SubUser], int]:
    query = (
        select(SubUser)
        .where(SubUser.user_id == user_id)
        .order_by(SubUser.created_at.desc(), SubUser.id)
    )
    return await _page(session, query, offset=offset, limit=limit)
