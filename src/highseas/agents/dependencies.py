from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from highseas.agents import service
from highseas.agents.service import Caller
from highseas.dependencies import SessionDep
from highseas.errors import Unauthenticated

_bearer = HTTPBearer(
    auto_error=False, description="An agent API token: `Authorization: Bearer <token>`"
)


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The request's Bearer token, else 401 ``token_missing``."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "缺少访问令牌：请在请求头中携带 Authorization: Bearer <token>", reason="token_missing"
        )
    return credentials.credentials


async def _caller(session: SessionDep, credentials: BearerDep) -> Caller:
    return await service.authenticate(session, bearer_token(credentials))


CallerDep = Annotated[Caller, Depends(_caller)]
"""The agent behind the request's Bearer token (401 when missing, unknown, revoked, expired)."""
