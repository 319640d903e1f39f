from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from highseas.agents.dependencies import CallerDep
from highseas.callbacks import service
from highseas.callbacks.schemas import CallbackDeleted, CallbackRead, CallbackUpdate, SecretRead
from highseas.dependencies import SessionDep, SettingsDep
from highseas.envelope import Envelope, PageDep, PageEnvelope, ok, page
from highseas.models import CallbackType
from highseas.request_input import JsonInputRoute

router = APIRouter(prefix="/agent-api", tags=["callbacks"], route_class=JsonInputRoute)

TypePath = Annotated[
    CallbackType, Path(description="回调类型: api_customer_to_task or api_async_customer")
]


@router.put("/callback/{type}", response_model=Envelope[CallbackRead])
async def put_callback(
    type: TypePath,
    body: CallbackUpdate,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Envelope[CallbackRead]:
    """Set the URL a type of callback is sent to; answers with the agent's signing secret."""
    configured = await service.configure(session, caller.agent_id, type, body.url, settings)
    return ok(configured, "设置成功")


@router.get("/callback", response_model=PageEnvelope[CallbackRead])
async def list_callbacks(
    caller: CallerDep, session: SessionDep, settings: SettingsDep, params: PageDep
) -> PageEnvelope[CallbackRead]:
    """The configured callbacks of the calling agent, with its signing secret."""
    rows, total = await service.list_callbacks(session, caller.agent_id, params, settings)
    return page(rows, total, params)


@router.get("/callback/{type}", response_model=Envelope[CallbackRead])
async def get_callback(
    type: TypePath, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> Envelope[CallbackRead]:
    """One configured callback (404 when the type has no URL)."""
    return ok(await service.read_callback(session, caller.agent_id, type, settings))


@router.delete("/callback/{type}", response_model=Envelope[CallbackDeleted])
async def delete_callback(
    type: TypePath, caller: CallerDep, session: SessionDep
) -> Envelope[CallbackDeleted]:
    """Stop sending a type of callback; messages not yet sent fail. The secret is kept."""
    return ok(await service.remove(session, caller.agent_id, type), "删除成功")


@router.post("/callback/secret/rotate", response_model=Envelope[SecretRead])
async def rotate_secret(
    caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> Envelope[SecretRead]:
    """Replace the signing secret; for 24 h messages are signed with the old one as well."""
    return ok(await service.rotate_secret(session, caller.agent_id, settings), "密钥已更新")
