from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from highseas.clock import WireTime

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTACT_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{2,30}$")


def _email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.match(value):
        raise ValueError("不是合法的邮箱地址")
    return value


def _contact_phone(value: str | None) -> str | None:
    if value is not None and not _CONTACT_PHONE.match(value):
        raise ValueError("不是合法的电话号码")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[
    str | None, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)
]
ContactPhone = Annotated[
    str | None,
    StringConstraints(strip_whitespace=True, max_length=32),
    AfterValidator(_contact_phone),
]


class AccountCreate(BaseModel):
    """A main account or a sub-account: the same fields."""

    name: Name = Field(description="名称")
    phone: ContactPhone = Field(default=None, description="联系电话")
    email: Email = Field(default=None, description="邮箱")


class UserRead(BaseModel):
    id: uuid.UUID
    agent_id: uuid.UUID
    name: str
    phone: str | None
    email: str | None
    created_at: WireTime
    updated_at: WireTime


class SubUserRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    phone: str | None
    email: str | None
    created_at: WireTime
    updated_at: WireTime
