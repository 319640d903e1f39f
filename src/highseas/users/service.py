"""Main accounts (users) under an agent, and sub-accounts under a user.

Ownership is checked here, once: a ``user_id`` or ``sub_user_id`` that is not under the
caller's agent is 403 whether or not it exists, so ids of other agents cannot be probed.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.agents import service as agents
from highseas.agents.tokens import hash_token
from highseas.envelope import PageParams
from highseas.errors import Forbidden
from highseas.ids import parse_uuid
from highseas.models import SubUser, User
from highseas.users import repository
from highseas.users.schemas import AccountCreate


async def owned_user_of_token(session: AsyncSession, token: str, user_id: str) -> User:
    """The user ``user_id``, a main account of the agent behind ``token`` (401 as
    ``agents.service.authenticate``), else 403. One query for both: every request on a
    user's resources starts with it."""
    found = await repository.token_and_user(session, hash_token(token), parse_uuid(user_id))
    agents.check_token(found)
    user = None if found is None else found.user
    if user is None:
        raise Forbidden(f"无权访问用户 {user_id}：该用户不属于当前代理", reason="user_forbidden")
    return user


async def owned_sub_user(
    session: AsyncSession, user: User, sub_user_id: str | uuid.UUID
) -> SubUser:
    parsed = parse_uuid(sub_user_id)
    sub_user = (
        None if parsed is None else await repository.sub_user_of_user(session, user.id, parsed)
    )
    if sub_user is None:
        raise Forbidden(
            f"无权访问子账户 {sub_user_id}：它不是用户 {user.id} 的子账户",
            reason="sub_user_forbidden",
        )
    return sub_user


async def create_user(session: AsyncSession, agent_id: uuid.UUID, data: AccountCreate) -> User:
    user = User(agent_id=agent_id, name=data.name, phone=data.phone, email=data.email)
    await repository.add(session, user)
    return user


async def create_sub_user(session: AsyncSession, user: User, data: AccountCreate) -> SubUser:
    sub_user = SubUser(user_id=user.id, name=data.name, phone=data.phone, email=data.email)
    await repository.add(session, sub_user)
    return sub_user


async def list_users(
    session: AsyncSession, agent_id: uuid.UUID, params: PageParams
) -> tuple[list[User], int]:
    return await repository.users_of_agent(
        session, agent_id, offset=params.offset, limit=params.per_page
    )


async def list_sub_users(
    session: AsyncSession, user: User, params: PageParams
) -> tuple[list[SubUser], int]:
    return await repository.sub_users_of_user(
        session, user.id, offset=params.offset, limit=params.per_page
    )
