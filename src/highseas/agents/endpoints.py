from __future__ import annotations

from fastapi import APIRouter

from highseas.agents.dependencies import CallerDep
from highseas.agents.schemas import TokenRead
from highseas.envelope import Envelope, ok
from highseas.request_input import JsonInputRoute

router = APIRouter(prefix="/agent-api", tags=["agent"], route_class=JsonInputRoute)


@router.get("/token", response_model=Envelope[TokenRead])
async def read_token(caller: CallerDep) -> Envelope[TokenRead]:
    """The calling token's validity: its agent, when it was created and when it expires."""
    token = caller.token
    return ok(
        TokenRead(
            agent_id=caller.agent_id,
            agent_name=caller.agent_name,
            token_id=token.id,
            token_prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
        ),
        "令牌有效",
    )
