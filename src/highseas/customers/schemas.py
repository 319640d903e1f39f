from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from highseas.clock import WireTime, from_wire
from highseas.customers.filters import FilterOp
from highseas.envelope import DEFAULT_PER_PAGE, Page, PerPage
from highseas.phones import Operator
from highseas.request_input import NotBool

MAX_IN_VALUES = 1000
_SCALAR_OPS = {FilterOp.EQ, FilterOp.CONTAINS, FilterOp.PREFIX, FilterOp.GTE, FilterOp.LTE}
_VALUELESS_OPS = {FilterOp.EMPTY, FilterOp.NOT_EMPTY}
# Each component filter is a condition of its own: a request of hundreds (one filter
# repeated) was accepted and then could never run (SQLite's expression depth) or held
# PostgreSQL for minutes.
MAX_COMPONENT_FILTERS = 30

# Platform clients send more fields than highseas uses: unknown ones are ignored (contract §1).
_LENIENT = ConfigDict(extra="ignore")

# Strict: a JSON true is no number (lax int would take it as 1), and no string either.
Scalar = StrictStr | StrictInt | StrictFloat


# An operator code; "1" from a query string is 1, a JSON true is no code.
Carrier = Annotated[int, NotBool, Field(ge=0, le=4)]

ENCRYPTION_DESCRIPTION = (
    "phones in and out are cipher text; effective only while the agent has 接口加密 on"
)


class ComponentFilterIn(BaseModel):
    """One component filter: ``{id, value[, op]}`` (contract §2)."""

    model_config = _LENIENT

    id: str
    value: Scalar | list[Scalar] | None = None
    op: FilterOp | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> ComponentFilterIn:
        if self.op is None:
            self.op = FilterOp.IN if isinstance(self.value, list) else FilterOp.EQ
        value = self.value
        if self.op in _SCALAR_OPS and isinstance(value, list):
            raise ValueError(f"op {self.op} 需要单个值，不能是数组（多个值请用 op in）")
        if self.op in _SCALAR_OPS and (value is None or value == ""):
            raise ValueError(f"op {self.op} 需要一个非空的值（要筛选空值请用 op empty）")
        if self.op in _VALUELESS_OPS and value not in (None, "", []):
            raise ValueError(f"op {self.op} 不带值（给出的值不会被使用，请去掉 value）")
        if self.op is FilterOp.IN and not (
            isinstance(value, list) and 0 < len(value) <= MAX_IN_VALUES
        ):
            raise ValueError(f"op in 需要 1 到 {MAX_IN_VALUES} 个值的数组")
        if self.op is FilterOp.BETWEEN and not (isinstance(value, list) and len(value) == 2):
            raise ValueError("op between 需要 [最小值, 最大值] 两个值")
        return self


def _valid_range(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if len(value) != 2:
        raise ValueError("必须是 [开始时间, 结束时间] 两个时间")
    try:
        start, end = from_wire(value[0]), from_wire(value[1])
    except ValueError:
        raise ValueError("必须是 Y-m-d H:i:s 格式的有效时间，例如 2021-06-30 13:20:28") from None
    if start > end:
        raise ValueError("开始时间不能晚于结束时间")
    return value


class PoolFilterIn(BaseModel):
    """The filters of contract §2 (customer_to_task) as they arrive."""

    model_config = _LENIENT

    user_id: str | None = Field(None, description="optional repeat of the path user")
    components: list[ComponentFilterIn] | None = Field(None, max_length=MAX_COMPONENT_FILTERS)
    phone: str | None = Field(None, description="one mobile number (cipher text with encryption)")
    created_at: list[str] | None = Field(
        None, description='["Y-m-d H:i:s", "Y-m-d H:i:s"], inclusive'
    )
    operator: list[Carrier] | None = Field(
        None, min_length=1, description="1 电信, 2 联通, 3 移动, 4 广电, 0 未知"
    )
    encryption: bool = Field(False, description=ENCRYPTION_DESCRIPTION)
    sub_user_id: str | None = None

    _created_at = field_validator("created_at")(_valid_range)


def _exact_text(value: str | None) -> str | None:
    """An exact-match filter on a field stored trimmed: trimmed too; empty is 422, as for
    every filter (an empty email matched nothing, silently)."""
    if value is None:
        return None
    if not value.strip():
        raise ValueError("不能为空（不按它筛选请省略该字段）")
    return value.strip()


class CustomerQuery(PoolFilterIn):
    """get_customer: the §2 filters plus email, company and the page."""

    email: str | None = None
    company: str | None = None
    page: Page = 1
    per_page: PerPage = DEFAULT_PER_PAGE

    _exact = field_validator("email", "company")(_exact_text)


class AsyncCustomerIn(BaseModel):
    """Rows are checked one by one in the job (customers/rows.py), so one bad row cannot
    reject the others: only the envelope's shape is checked up front."""

    model_config = _LENIENT

    data: list[dict[str, Any]] = Field(min_length=1)
    encryption: bool = Field(
        False, description="rows' phone and company are cipher text (接口加密, when on)"
    )


class CustomerDeleteIn(BaseModel):
    model_config = _LENIENT

    phone: list[str] | None = Field(None, max_length=100)
    created_at: list[str] | None = None
    encryption: bool = Field(False, description=ENCRYPTION_DESCRIPTION)

    @field_validator("created_at")
    @classmethod
    def _range_or_nothing(cls, value: list[str] | None) -> list[str] | None:
        # "Both empty deletes nothing" (contract §5): [] is no range, as [] is no phone.
        return None if value == [] else _valid_range(value)


class UniqueId(BaseModel):
    unique_id: uuid.UUID


class ComponentValueRead(BaseModel):
    id: uuid.UUID
    name: str
    type: str
    value: Any


class CustomerRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    sub_user_id: uuid.UUID | None
    phone: str
    name: str | None
    company: str | None
    email: str | None
    sex: int | None
    sort: int | None
    operator: Operator
    operator_name: str
    province: str | None
    city: str | None
    extra: Any
    components: list[ComponentValueRead]
    created_at: WireTime
    updated_at: WireTime


class DeletedCount(BaseModel):
    deleted: int
