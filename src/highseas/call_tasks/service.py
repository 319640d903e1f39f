"""Call tasks (外呼任务) of a user and the numbers in them (contract §5 Tasks).

A task of another user, an unknown id and an id that is not a UUID are all 404
``task_not_found``: the path's user is already checked (403) by ``OwnedUserDep``, so within
an allowed user there is nothing left to hide. A ``sub_user_id`` acts as that sub-account:
it must be one of the user's (403), and a task it names must be that sub-account's (404).
With ``encryption`` (接口加密 on for the agent) phones in and out are cipher text.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from highseas import phones
from highseas.call_tasks import repository
from highseas.call_tasks.schemas import (
    NumberBatchDelete,
    NumberQuery,
    NumberRead,
    TaskCreate,
    TaskQuery,
)
from highseas.config import Settings
from highseas.crypto import codec as codecs
from highseas.crypto import service as crypto
from highseas.crypto.codec import Codec
from highseas.envelope import PageParams
from highseas.errors import NotFound, ValidationFailed
from highseas.ids import parse_uuid
from highseas.models import CallTask, TaskNumber, User
from highseas.users.service import owned_sub_user


def task_not_found(task_id: str | uuid.UUID) -> NotFound:
    return NotFound(f"任务 {task_id} 不存在", reason="task_not_found")


async def owned_task(session: AsyncSession, user: User, task_id: str | uuid.UUID) -> CallTask:
    """The user's task ``task_id``, else 404 ``task_not_found``."""
    parsed = parse_uuid(task_id)
    task = None if parsed is None else await repository.task_of_user(session, user.id, parsed)
    if task is None:
        raise task_not_found(task_id)
    return task


async def _task_as(
    session: AsyncSession, user: User, task_id: str, sub_user_id: str | None
) -> CallTask:
    # The sub-account first: a foreign one is 403 whatever the task.
    sub_user = None if sub_user_id is None else await owned_sub_user(session, user, sub_user_id)
    task = await owned_task(session, user, task_id)
    if sub_user is not None and task.sub_user_id != sub_user.id:
        raise task_not_found(task_id)
    return task


def _phone(raw: str) -> str | None:
    info = phones.parse(raw)
    return None if info is None else info.phone


def _invalid_phone(field_name: str, received: str, codec: Codec) -> str:
    # The value as received: a message never carries decrypted text.
    decrypted = "解密后" if codec.active else ""
    return f"参数 {field_name} 无效：{received!r} {decrypted}不是有效的中国大陆手机号码"


def _number(number: TaskNumber, codec: Codec) -> NumberRead:
    return NumberRead(
        phone=codec.encrypt(number.phone),
        status=number.status,
        created_at=number.created_at,
        unique_id=number.batch_id,
    )


async def create_task(session: AsyncSession, user: User, data: TaskCreate) -> CallTask:
    sub_user = (
        None if data.sub_user_id is None else await owned_sub_user(session, user, data.sub_user_id)
    )
    task = CallTask(
        user_id=user.id,
        sub_user_id=None if sub_user is None else sub_user.id,
        name=data.name,
        status=int(data.status),
    )
    await repository.add(session, task)
    return task


async def task_detail(
    session: AsyncSession, user: User, task_id: str, *, sub_user_id: str | None = None
) -> tuple[CallTask, int]:
    """The task and how many numbers it holds."""
    task = await _task_as(session, user, task_id, sub_user_id)
    return task, await repository.count_numbers(session, task.id)


async def list_tasks(
    session: AsyncSession, user: User, query: TaskQuery
) -> tuple[list[CallTask], int, PageParams]:
    sub_user = (
        None
        if query.sub_user_id is None
        else await owned_sub_user(session, user, query.sub_user_id)
    )
    params = PageParams(page=query.page, per_page=query.per_page)
    tasks, total = await repository.tasks_of_user(
        session,
        user.id,
        statuses=None if query.status is None else sorted({int(s) for s in query.status}),
        name=query.name,
        sub_user_id=None if sub_user is None else sub_user.id,
        offset=params.offset,
        limit=params.per_page,
    )
    return tasks, total, params


async def list_numbers(
    session: AsyncSession, user: User, task_id: str, query: NumberQuery, settings: Settings
) -> tuple[list[NumberRead], int, PageParams]:
    """The task's numbers in the order they were added."""
    task = await _task_as(session, user, task_id, query.sub_user_id)
    codec = await crypto.phone_codec(session, user.agent_id, query.encryption, settings)
    phone = None
    if query.phone is not None:
        phone = _phone(codec.decrypt("phone", query.phone))
        if phone is None:
            raise ValidationFailed.field(
                "phone", _invalid_phone("phone", query.phone, codec), reason="invalid_phone"
            )
    params = PageParams(page=query.page, per_page=query.per_page)
    numbers, total = await repository.numbers_of_task(
        session,
        task.id,
        phone=phone,
        statuses=None if query.status is None else sorted(set(query.status)),
        offset=params.offset,
        limit=params.per_page,
    )
    return [_number(n, codec) for n in numbers], total, params


async def delete_numbers(
    session: AsyncSession, user: User, task_id: str, data: NumberBatchDelete, settings: Settings
) -> int:
    """Delete the listed phones from the task; phones not in it are not counted. One invalid
    (or, encrypted, undecryptable) phone rejects the whole request, every bad one named, so
    nothing is half done; ``error`` is the reason of the first."""
    task = await _task_as(session, user, task_id, data.sub_user_id)
    codec = await crypto.phone_codec(session, user.agent_id, data.encryption, settings)
    wanted: set[str] = set()
    errors: dict[str, list[str]] = {}
    reasons: list[str] = []
    for index, item in enumerate(data.customer_info_list):
        field_name = f"customer_info_list.{index}.phone"
        plain = codec.open(item.phone)
        phone = None if plain is None else _phone(plain)
        if plain is None:
            errors[field_name] = [codecs.undecryptable_message(field_name, item.phone)]
            reasons.append(codecs.REASON)
        elif phone is None:
            errors[field_name] = [_invalid_phone(field_name, item.phone, codec)]
            reasons.append("invalid_phone")
        else:
            wanted.add(phone)
    if errors:
        first = next(iter(errors.values()))[0]
        more = f"；另有 {len(errors) - 1} 个号码无效，见 errors" if len(errors) > 1 else ""
        raise ValidationFailed(first + more, reason=reasons[0], errors=errors)
    return await repository.delete_numbers(session, task.id, sorted(wanted))
