from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query

from highseas.customers import service
from highseas.customers.schemas import (
    AsyncCustomerIn,
    CustomerDeleteIn,
    CustomerQuery,
    CustomerRead,
    DeletedCount,
    UniqueId,
)
from highseas.dependencies import RegistryDep, SessionDep, SettingsDep
from highseas.envelope import Envelope, PageEnvelope, ok, page
from highseas.logs import tag
from highseas.request_input import JsonInputRoute, openapi_body, query_or_body
from highseas.users.dependencies import OwnedUserDep

router = APIRouter(
    prefix="/agent-api/user/{user_id}", tags=["pool customers"], route_class=JsonInputRoute
)


@router.post("/async_customer", response_model=Envelope[UniqueId])
async def async_customer(
    body: AsyncCustomerIn,
    user: OwnedUserDep,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> Envelope[UniqueId]:
    """Queue up to 200 rows for the pool; the result is on identification/{unique_id} and in
    the ``api_async_customer`` callback. With ``encryption``, rows' phone and company are
    cipher text."""
    batch_id = await service.accept_async_customer(session, registry, user, body, settings)
    tag(batch_id=str(batch_id))
    return ok(UniqueId(unique_id=batch_id), "数据已提交，处理结果请在回调中查收")


@router.get(
    "/get_customer",
    response_model=PageEnvelope[CustomerRead],
    openapi_extra=openapi_body(CustomerQuery),
)
@router.post(
    "/get_customer",
    response_model=PageEnvelope[CustomerRead],
    operation_id="get_customer_by_post",
    openapi_extra=openapi_body(CustomerQuery),
)
async def get_customer(
    query: Annotated[CustomerQuery, Depends(query_or_body(CustomerQuery))],
    user: OwnedUserDep,
    session: SessionDep,
    settings: SettingsDep,
) -> PageEnvelope[CustomerRead]:
    """The user's pool, filtered as in customer_to_task plus ``email`` and ``company``; fields
    in a JSON body (GET or POST) or in the query string. With ``encryption``, ``phone`` and
    the rows' phones are cipher text."""
    rows, total, params = await service.list_customers(session, user, query, settings)
    return page(rows, total, params)


@router.get("/customer/detail/{customer_id}", response_model=Envelope[CustomerRead])
async def customer_detail(
    customer_id: Annotated[str, Path(description="客户 id")],
    user: OwnedUserDep,
    session: SessionDep,
    settings: SettingsDep,
    encryption: Annotated[
        bool, Query(description="extension: the phone as cipher text (接口加密 on)")
    ] = False,
) -> Envelope[CustomerRead]:
    """One pool customer."""
    return ok(
        await service.detail(session, user, customer_id, encryption=encryption, settings=settings)
    )


@router.delete("/del_customer", response_model=Envelope[DeletedCount])
async def delete_customers(
    user: OwnedUserDep,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[CustomerDeleteIn | None, Body()] = None,
) -> Envelope[DeletedCount]:
    """Delete pool customers by ``phone`` (at most 100; cipher text with ``encryption``)
    and/or a ``created_at`` range; with neither (empty, or no body at all), nothing is
    deleted."""
    deleted = await service.delete(session, user, body or CustomerDeleteIn(), settings)
    return ok(DeletedCount(deleted=deleted), "删除成功")
