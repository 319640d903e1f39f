from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from highseas.batches import service
from highseas.batches.schemas import BatchQuery, BatchRead
from highseas.dependencies import SessionDep
from highseas.envelope import Envelope, PageDep, PageEnvelope, ok, page
from highseas.users.dependencies import OwnedUserDep

router = APIRouter(prefix="/agent-api/user/{user_id}", tags=["batches"])


@router.get("/identification/{unique_id}", response_model=Envelope[BatchRead])
async def identification(
    unique_id: Annotated[str, Path(description="the unique_id a batch was accepted with")],
    user: OwnedUserDep,
    session: SessionDep,
) -> Envelope[BatchRead]:
    """查看回调数据: a batch's callback message, state and delivery."""
    return ok(service.read(await service.owned(session, user, unique_id)))


@router.get("/batches", response_model=PageEnvelope[BatchRead])
async def list_batches(
    user: OwnedUserDep,
    session: SessionDep,
    params: PageDep,
    filters: Annotated[BatchQuery, Depends()],
) -> PageEnvelope[BatchRead]:
    """The user's batches, newest first, to reconcile missed callbacks."""
    batches, total = await service.list_batches(session, user, filters, params)
    return page([service.read(b) for b in batches], total, params)
