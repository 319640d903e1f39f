from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path

from highseas.customers.schemas import PoolFilterIn, UniqueId
from highseas.dependencies import RegistryDep, SessionDep, SettingsDep
from highseas.envelope import Envelope, ok
from highseas.imports import service
from highseas.logs import tag
from highseas.request_input import JsonInputRoute, openapi_body, query_or_body
from highseas.users.dependencies import OwnedUserDep

router = APIRouter(prefix="/agent-api", tags=["customer_to_task"], route_class=JsonInputRoute)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="same key + same request within 24 h → the same unique_id, imported once",
    ),
]


@router.get(
    "/user/{user_id}/customer_to_task/{task_id}",
    response_model=Envelope[UniqueId],
    openapi_extra=openapi_body(PoolFilterIn),
)
@router.post(
    "/user/{user_id}/customer_to_task/{task_id}",
    response_model=Envelope[UniqueId],
    operation_id="customer_to_task_by_post",
    openapi_extra=openapi_body(PoolFilterIn),
)
async def customer_to_task(
    given: Annotated[PoolFilterIn, Depends(query_or_body(PoolFilterIn))],
    *,
    task_id: Annotated[str, Path(description="任务 id")],
    user: OwnedUserDep,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Envelope[UniqueId]:
    """客户公海筛选进入任务: queue the import of the pool customers matching the filters into
    the task; the result arrives at the ``api_customer_to_task`` callback. Fields in a JSON
    body (GET or POST) or in the query string. With ``encryption``, ``phone`` and the numbers
    of the download are cipher text."""
    unique_id = await service.accept(
        session,
        registry,
        user=user,
        task_id=task_id,
        given=given,
        idempotency_key=idempotency_key,
        settings=settings,
    )
    tag(batch_id=str(unique_id))
    return ok(UniqueId(unique_id=unique_id), "号码导入任务信息请在回调中查收")
