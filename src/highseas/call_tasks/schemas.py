from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from highseas.clock import WireTime
from highseas.envelope import DEFAULT_PER_PAGE, Page, PerPage
from highseas.models import TaskStatus
from highseas.request_input import NotBool

MAX_DELETED_NUMBERS = 1000

# Platform clients send more fields than highseas uses: unknown ones are ignored (contract §1).
_LENIENT = ConfigDict(extra="ignore")

ENCRYPTION_DESCRIPTION = (
    "phones in and out are cipher text; effective only while the agent has 接口加密 on"
)

TaskName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _scalar_as_list(value: Any) -> Any:
    # The platform documents ``status`` as "int || array": ``1`` means ``[1]``.
    return value if value is None or isinstance(value, list) else [value]


class TaskCreate(BaseModel):
    model_config = _LENIENT

    name: TaskName = Field(description="任务名称")
    sub_user_id: str | None = Field(None, description="子账户 id: the task's creator")
    status: Annotated[TaskStatus, NotBool] = Field(
        TaskStatus.WAITING, description="1 暂停中 paused, 2 执行中 running, 3 等待执行 waiting"
    )


class TaskScope(BaseModel):
    """Task detail: the sub-account the task must be, from the query string or a JSON body."""

    model_config = _LENIENT

    sub_user_id: str | None = Field(None, description="the task must be this sub-account's")


class TaskQuery(BaseModel):
    """all_task: the filters and the page, from the query string or a JSON body."""

    model_config = _LENIENT

    name: str | None = Field(
        None, max_length=100, description="literal, case-sensitive substring of the name"
    )
    status: list[Annotated[TaskStatus, NotBool]] | None = Field(
        None, min_length=1, description="1 paused, 2 running, 3 waiting; one value or an array"
    )
    sub_user_id: str | None = Field(None, description="only tasks created by this sub-account")
    page: Page = 1
    per_page: PerPage = DEFAULT_PER_PAGE

    _status = field_validator("status", mode="before")(_scalar_as_list)


class NumberQuery(BaseModel):
    """The numbers of a task: the filters and the page, from the query string or a JSON body."""

    model_config = _LENIENT

    phone: str | None = Field(None, description="one mobile number, normalised")
    status: list[Annotated[int, NotBool, Field(ge=0)]] | None = Field(
        None, min_length=1, description="number states (0 waiting); one value or an array"
    )
    sub_user_id: str | None = Field(None, description="the task must be this sub-account's")
    encryption: bool = Field(False, description=ENCRYPTION_DESCRIPTION)
    page: Page = 1
    per_page: PerPage = DEFAULT_PER_PAGE

    _status = field_validator("status", mode="before")(_scalar_as_list)


class CustomerInfo(BaseModel):
    model_config = _LENIENT

    phone: str


class NumberBatchDelete(BaseModel):
    model_config = _LENIENT

    customer_info_list: list[CustomerInfo] = Field(max_length=MAX_DELETED_NUMBERS)
    sub_user_id: str | None = Field(None, description="the task must be this sub-account's")
    encryption: bool = Field(False, description=ENCRYPTION_DESCRIPTION)


class TaskRead(BaseModel):
    id: uuid.UUID
    name: str
    status: TaskStatus
    sub_user_id: uuid.UUID | None
    user_id: uuid.UUID
    created_at: WireTime
    updated_at: WireTime


class TaskDetail(TaskRead):
    numbers: int = Field(description="how many numbers the task holds")


class NumberRead(BaseModel):
    phone: str
    status: int = Field(description="0 waiting")
    created_at: WireTime
    unique_id: uuid.UUID | None = Field(
        description="the batch (customer_to_task) that added the number, if one did"
    )


class DeletedNumbers(BaseModel):
    deleted: int
