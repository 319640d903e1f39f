from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from highseas.models import AgentToken, SubUser, User


async def add(session: AsyncSession, account: User | SubUser) -> None:
    session.add(account)
    await session.flush()


# The token's state and the path's user (None when not the token's agent's) in one query.
# Built once: building a statement and its cache key cost about as much as running it, on
# every request (the accept path's profile in bench/README.md).
_TOKEN_AND_USER = (
    select(AgentToken.revoked_at, AgentToken.expires_at, User)
    .outerjoin(User, and_(User.id == bindparam("user_id"), User.agent_id == AgentToken.agent_id))
    .where(AgentToken.token_hash == bindparam("token_hash"))
)


class TokenAndUser(NamedTuple):
    revoked_at: datetime | None
    expires_at: datetime | None
    user: User | None


async def token_and_user(
    session: AsyncSession, token_hash: str, user_id: uuid.UUID | None
) -> TokenAndUser | None:
    """None: no such token."""
    parameters = {"token_hash": token_hash, "user_id": user_id}
    row = (await session.execute(_TOKEN_AND_USER, parameters)).one_or_none()
    return None if row is None else TokenAndUser(*row)


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
