"""Typed dependencies shared by the routers: the request's session, settings and caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from highseas.agents import service as agents
from highseas.agents.service import Caller
from highseas.config import Settings
from highseas.db import Database
from highseas.errors import Unauthenticated
from highseas.models import User
from highseas.users import service as users


def _database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _session(
    database: Annotated[Database, Depends(_database)],
) -> AsyncIterator[AsyncSession]:
    # scope="function" (below): the commit happens before the response is sent, so a
    # failed commit is an error response, never a 200 for work that was lost.
    async with database.transaction() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(_settings)]

_bearer = HTTPBearer(
    auto_error=False, description="An agent API token: `Authorization: Bearer <token>`"
)


async def _caller(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated(
            "缺少访问令牌：请在请求头中携带 Authorization: Bearer <token>", reason="token_missing"
        )
    return await agents.authenticate(session, credentials.credentials)


CallerDep = Annotated[Caller, Depends(_caller)]


async def _owned_user(
    session: SessionDep,
    caller: CallerDep,
    user_id: Annotated[str, Path(description="用户 id (a main account of the calling agent)")],
) -> User:
    return await users.owned_user(session, caller.agent_id, user_id)


OwnedUserDep = Annotated[User, Depends(_owned_user)]
"""The path's ``user_id``, checked to be a main account of the caller's agent (else 403)."""
