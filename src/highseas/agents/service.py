"""Agents and their API tokens."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

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


class TokenState(Protocol):
    """What decides whether a token is valid: a token row, or those two columns of it."""

    @property
    def revoked_at(self) -> datetime | None: ...

    @property
    def expires_at(self) -> datetime | None: ...


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
    found = await repository.token_by_hash(session, hash_token(token))
    if found is None:
        raise _invalid_token()
    record, agent = found
    check_token(record)
    return Caller(agent_id=agent.id, agent_name=agent.name, token=record)


def check_token(token: TokenState | None) -> None:
    """401 unless the token looked up by its hash exists (not None), is not revoked and has
    not expired."""
    if token is None:
        raise _invalid_token()
    if token.revoked_at is not None:
        raise Unauthenticated("访问令牌已被吊销", reason="token_revoked")
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthenticated("访问令牌已过期", reason="token_expired")


def _invalid_token() -> Unauthenticated:
    return Unauthenticated("访问令牌无效", reason="token_invalid")
