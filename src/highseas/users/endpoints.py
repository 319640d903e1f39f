from __future__ import annotations

from fastapi import APIRouter

from highseas.agents.dependencies import CallerDep
from highseas.dependencies import SessionDep
from highseas.envelope import Envelope, PageDep, PageEnvelope, ok, page
from highseas.request_input import JsonInputRoute
from highseas.users import service
from highseas.users.dependencies import OwnedUserDep
from highseas.users.schemas import AccountCreate, SubUserRead, UserRead

router = APIRouter(prefix="/agent-api", tags=["agent"], route_class=JsonInputRoute)


@router.post("/user", response_model=Envelope[UserRead])
async def create_user(
    body: AccountCreate, caller: CallerDep, session: SessionDep
) -> Envelope[UserRead]:
    """Create a main account (主账号) under the calling agent."""
    user = await service.create_user(session, caller.agent_id, body)
    return ok(UserRead.model_validate(user, from_attributes=True), "创建成功")


@router.get("/users", response_model=PageEnvelope[UserRead])
async def list_users(
    caller: CallerDep, session: SessionDep, params: PageDep
) -> PageEnvelope[UserRead]:
    """The calling agent's main accounts, newest first."""
    users, total = await service.list_users(session, caller.agent_id, params)
    rows = [UserRead.model_validate(u, from_attributes=True) for u in users]
    return page(rows, total, params)


@router.post("/user/{user_id}/subset_users", response_model=Envelope[SubUserRead])
async def create_sub_user(
    body: AccountCreate, user: OwnedUserDep, session: SessionDep
) -> Envelope[SubUserRead]:
    """Create a sub-account (子账户) under a main account."""
    sub_user = await service.create_sub_user(session, user, body)
    return ok(SubUserRead.model_validate(sub_user, from_attributes=True), "创建成功")


@router.get("/user/{user_id}/subset_users", response_model=PageEnvelope[SubUserRead])
async def list_sub_users(
    user: OwnedUserDep, session: SessionDep, params: PageDep
) -> PageEnvelope[SubUserRead]:
    """The sub-accounts of a main account, newest first."""
    sub_users, total = await service.list_sub_users(session, user, params)
    rows = [SubUserRead.model_validate(s, from_attributes=True) for s in sub_users]
    return page(rows, total, params)
