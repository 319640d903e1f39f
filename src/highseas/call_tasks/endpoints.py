from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, Depends, Path, Query

from highseas.call_tasks import service
from highseas.call_tasks.schemas import (
    DeletedNumbers,
    NumberBatchDelete,
    NumberQuery,
    NumberRead,
    TaskCreate,
    TaskDetail,
    TaskQuery,
    TaskRead,
    TaskScope,
)
from highseas.dependencies import SessionDep, SettingsDep
from highseas.envelope import Envelope, PageEnvelope, ok, page
from highseas.models import CallTask, TaskStatus
from highseas.request_input import JsonInputRoute, openapi_body, query_or_body
from highseas.users.dependencies import OwnedUserDep

router = APIRouter(
    prefix="/agent-api/user/{user_id}", tags=["call tasks"], route_class=JsonInputRoute
)

# In the signatures the user comes before the query: dependencies resolve in order, so a
# missing token (401) or another agent's user (403) is reported before a bad filter (422).

TaskIdPath = Annotated[str, Path(description="任务 id")]
# Contract §1: sub_user_id in the query or the body (body wins), on writes as on reads: a
# scope given in the query of a write was ignored, so the write acted for the main account.
SubUserQuery = Annotated[
    str | None, Query(alias="sub_user_id", description="子账户 id, when not in the body")
]
B = TypeVar("B", TaskCreate, NumberBatchDelete)


def _scoped(body: B, sub_user_id: str | None) -> B:
    if body.sub_user_id is None and sub_user_id is not None:
        return body.model_copy(update={"sub_user_id": sub_user_id})
    return body


def _read(task: CallTask) -> TaskRead:
    return TaskRead.model_validate(task, from_attributes=True)


def _detail(task: CallTask, numbers: int) -> TaskDetail:
    return TaskDetail(
        id=task.id,
        name=task.name,
        status=TaskStatus(task.status),
        sub_user_id=task.sub_user_id,
        user_id=task.user_id,
        created_at=task.created_at,
        updated_at=task.updated_at,
        numbers=numbers,
    )


@router.post("/task", response_model=Envelope[TaskRead])
async def create_task(
    body: TaskCreate, user: OwnedUserDep, session: SessionDep, sub_user_id: SubUserQuery = None
) -> Envelope[TaskRead]:
    """Create a call task (status 3 waiting unless given); ``sub_user_id`` (body or query)
    records the sub-account that created it."""
    task = await service.create_task(session, user, _scoped(body, sub_user_id))
    return ok(_read(task), "创建成功")


@router.get("/task/{task_id}", response_model=Envelope[TaskDetail])
async def task_detail(
    task_id: TaskIdPath,
    user: OwnedUserDep,
    session: SessionDep,
    scope: Annotated[TaskScope, Depends(query_or_body(TaskScope))],
) -> Envelope[TaskDetail]:
    """One task of the user, with how many numbers it holds; with ``sub_user_id`` (query or
    JSON body), only that sub-account's."""
    task, numbers = await service.task_detail(session, user, task_id, sub_user_id=scope.sub_user_id)
    return ok(_detail(task, numbers))


@router.get(
    "/all_task", response_model=PageEnvelope[TaskRead], openapi_extra=openapi_body(TaskQuery)
)
async def list_tasks(
    user: OwnedUserDep,
    session: SessionDep,
    query: Annotated[TaskQuery, Depends(query_or_body(TaskQuery))],
) -> PageEnvelope[TaskRead]:
    """The user's tasks (its sub-accounts' included), newest first; filters ``status`` (one
    value or an array), ``name`` (substring) and ``sub_user_id``, in the query string or a
    JSON body."""
    tasks, total, params = await service.list_tasks(session, user, query)
    return page([_read(t) for t in tasks], total, params)


@router.get(
    "/task/{task_id}/number",
    response_model=PageEnvelope[NumberRead],
    openapi_extra=openapi_body(NumberQuery),
)
async def list_numbers(
    task_id: TaskIdPath,
    user: OwnedUserDep,
    session: SessionDep,
    query: Annotated[NumberQuery, Depends(query_or_body(NumberQuery))],
    settings: SettingsDep,
) -> PageEnvelope[NumberRead]:
    """The task's numbers in the order they were added; ``unique_id`` is the batch that added
    a number. Filters ``phone`` and ``status``, in the query string or a JSON body. With
    ``encryption``, ``phone`` and the listed phones are cipher text."""
    numbers, total, params = await service.list_numbers(session, user, task_id, query, settings)
    return page(numbers, total, params)


@router.delete("/task/{task_id}/number-batch-delete", response_model=Envelope[DeletedNumbers])
async def delete_numbers(
    task_id: TaskIdPath,
    body: Annotated[NumberBatchDelete, Body()],
    *,
    user: OwnedUserDep,
    session: SessionDep,
    settings: SettingsDep,
    sub_user_id: SubUserQuery = None,
) -> Envelope[DeletedNumbers]:
    """Delete numbers from the task by phone (``customer_info_list``, at most 1000; cipher
    text with ``encryption``); phones not in the task are not counted; with ``sub_user_id``
    (body or query), only from that sub-account's task."""
    scoped = _scoped(body, sub_user_id)
    deleted = await service.delete_numbers(session, user, task_id, scoped, settings)
    return ok(DeletedNumbers(deleted=deleted), "删除成功")
