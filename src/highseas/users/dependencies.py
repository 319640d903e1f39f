from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from highseas.agents.dependencies import BearerDep, bearer_token
from highseas.dependencies import SessionDep
from highseas.models import User
from highseas.users import service


async def _owned_user(
    session: SessionDep,
    credentials: BearerDep,
    user_id: Annotated[str, Path(description="用户 id (a main account of the calling agent)")],
) -> User:
    return await service.owned_user_of_token(session, bearer_token(credentials), user_id)


OwnedUserDep = Annotated[User, Depends(_owned_user)]
"""The path's ``user_id``, checked to be a main account of the agent behind the request's
Bearer token (401 as for ``CallerDep``, else 403)."""
