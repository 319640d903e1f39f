from __future__ import annotations

import uuid

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.models import Agent, AgentToken


async def add_agent(session: AsyncSession, name: str) -> Agent:
    agent = Agent(name=name)
    session.add(agent)
    await session.flush()
    return agent


async def get_agent(session: AsyncSession, agent_id: uuid.UUID) -> Agent | None:
    return await session.get(Agent, agent_id)


async def add_token(session: AsyncSession, token: AgentToken) -> AgentToken:
    session.add(token)
    await session.flush()
    return token


# Built once: building a statement and its cache key cost about as much as running it,
# on every request (the accept path's profile in bench/README.md).
_TOKEN_BY_HASH = (
    select(AgentToken, Agent)
    .join(Agent, Agent.id == AgentToken.agent_id)
    .where(AgentToken.token_hash == bindparam("token_hash"))
)


async def token_by_hash(session: AsyncSession, token_hash: str) -> tuple[AgentToken, Agent] | None:
    row = (await session.execute(_TOKEN_BY_HASH, {"token_hash": token_hash})).one_or_none()
    return None if row is None else (row[0], row[1])
