from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from highseas.agents.dependencies import CallerDep
from highseas.dependencies import SessionDep
from highseas.models import User
from highseas.users import service


async def _owned_user(
    session: SessionDep,
    caller: CallerDep,
    user_id: Annotated[str, Path(description="用户 id (a main account of the calling agent)")],
) -> User:
    return await service.owned_user(session, caller.agent_id, user_id)


OwnedUserDep = Annotated[User, Depends(_owned_user)]
"""The path's ``user_id``, checked to be a main account of the caller's agent (else 403)."""
