"""Agents and their API tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from highseas.agents import repository
from highseas.agents.tokens import hash_token, new_token, shown_prefix
from highseas.clock import utcnow
from highseas.errors import NotFound, Unauthenticated, ValidationFailed
from highseas.models import Agent, AgentToken


@dataclass(frozen=True)
class Caller:
    """Who is calling: the agent behind a valid token."""

    agent_id: uuid.UUID
    agent_name: str
    token: AgentToken


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: the only moment its plain text exists."""

    agent_id: uuid.UUID
    token: str
    record: AgentToken


async def create_agent(session: AsyncSession, name: str) -> tuple[Agent, IssuedToken]:
    name = name.strip()
    if not name:
        raise ValidationFailed.field("name", "代理名称不能为空")
    agent = await repository.add_agent(session, name)
    return agent, await issue_token(session, agent.id)


async def issue_token(
    session: AsyncSession, agent_id: uuid.UUID, *, expires_in: timedelta | None = None
) -> IssuedToken:
    if await repository.get_agent(session, agent_id) is None:
        raise NotFound(f"代理 {agent_id} 不存在", reason="agent_not_found")
    now = utcnow()
    plain = new_token()
    record = await repository.add_token(
        session,
        AgentToken(
            agent_id=agent_id,
            token_hash=hash_token(plain),
            prefix=shown_prefix(plain),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
        ),
    )
    return IssuedToken(agent_id=agent_id, token=plain, record=record)


async def revoke_token(session: AsyncSession, token: str) -> AgentToken:
    found = await repository.token_by_hash(session, hash_token(token))
    if found is None:
        raise NotFound("令牌不存在", reason="token_not_found")
    record, _agent = found
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


async def authenticate(session: AsyncSession, token: str) -> Caller:
    return caller_of(await repository.token_by_hash(session, hash_token(token)))


def caller_of(found: tuple[AgentToken, Agent] | None) -> Caller:
    """The caller behind a token looked up by its hash (None: unknown), else 401."""
    if found is None:
        raise Unauthenticated("访问令牌无效", reason="token_invalid")
    record, agent = found
    if record.revoked_at is not None:
        raise Unauthenticated("访问令牌已被吊销", reason="token_revoked")
    if _expired(record.expires_at):
        raise Unauthenticated("访问令牌已过期", reason="token_expired")
    return Caller(agent_id=agent.id, agent_name=agent.name, token=record)


def _expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at <= utcnow()
