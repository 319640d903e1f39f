"""The customer pool (客户公海): filtering, reading, deleting and storing rows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from highseas import phones
from highseas.batches import service as batches
from highseas.clock import from_wire, utcnow
from highseas.components import repository as components_repository
from highseas.components import values
from highseas.components.service import parse_public_id
from highseas.customers import filters, repository
from highseas.customers.filters import ComponentCondition, FilterOp, PoolFilter
from highseas.customers.rows import ComponentSpec, Draft, RowChecker, RowError, RowInput
from highseas.customers.schemas import (
    AsyncCustomerIn,
    ComponentFilterIn,
    ComponentValueRead,
    CustomerDeleteIn,
    CustomerQuery,
    CustomerRead,
    PoolFilterIn,
)
from highseas.envelope import PageParams
from highseas.errors import NotFound, PayloadTooLarge, ValidationFailed
from highseas.jobs import Registry
from highseas.models import Batch, BatchType, Component, Customer, User
from highseas.models.base import new_public_id
from highseas.phones import OPERATOR_NAMES, Operator
from highseas.users.service import owned_sub_user

MAX_LISTED_ERRORS = 1000
MAX_ASYNC_ROWS = 200
ASYNC_CUSTOMER_JOB = "customers.async_customer"


# --- filters -------------------------------------------------------------------------------


def _phone(raw: str, field_name: str) -> str:
    info = phones.parse(raw)
    if info is None:
        raise ValidationFailed.field(
            field_name,
            f"参数 {field_name} 无效：{raw!r} 不是有效的中国大陆手机号码",
            reason="invalid_phone",
        )
    return info.phone


def _component_condition(
    index: int, given: ComponentFilterIn, component: Component
) -> ComponentCondition:
    op = FilterOp(given.op or FilterOp.EQ)
    where = f"components.{index}"
    if op not in filters.OPS_BY_TYPE[component.type]:
        allowed = ", ".join(sorted(filters.OPS_BY_TYPE[component.type]))
        raise ValidationFailed.field(
            f"{where}.op",
            f"参数 {where}.op 无效：{component.type} 类型的组件 {component.name} 不支持 {op}，"
            f"可用 {allowed}",
            reason="invalid_filter",
        )
    if op in (FilterOp.EMPTY, FilterOp.NOT_EMPTY):
        return ComponentCondition(str(component.public_id), op)
    raw_values = given.value if isinstance(given.value, list) else [given.value]
    keys: list[str] = []
    for raw in raw_values:
        try:
            keys.append(values.parse(component.type, raw).key)
        except values.InvalidValue as exc:
            raise ValidationFailed.field(
                f"{where}.value",
                f"参数 {where}.value 无效：{raw!r} 不符合组件 {component.name}"
                f"（{component.type}）：{exc.message}",
                reason="invalid_filter",
            ) from None
    if op is FilterOp.BETWEEN and keys[0] > keys[1]:
        raise ValidationFailed.field(
            f"{where}.value",
            f"参数 {where}.value 无效：最小值不能大于最大值",
            reason="invalid_filter",
        )
    return ComponentCondition(str(component.public_id), op, tuple(keys))


async def resolve_filter(
    session: AsyncSession, user: User, given: PoolFilterIn, *, phone: str | None
) -> PoolFilter:
    """Check the filters against this user (422/403 naming the field) and normalise them.
    ``phone`` is the plain text of ``given.phone`` (the caller decrypts)."""
    if given.user_id is not None and given.user_id != str(user.id):
        raise ValidationFailed.field(
            "user_id", f"参数 user_id 无效：{given.user_id} 与路径中的用户 {user.id} 不一致"
        )
    sub_user_id = None
    if given.sub_user_id is not None:
        sub_user_id = str((await owned_sub_user(session, user, given.sub_user_id)).id)
    conditions: list[ComponentCondition] = []
    if given.components:
        ids = [parse_public_id(c.id) for c in given.components]
        found = await components_repository.by_public_ids(
            session, user.id, [i for i in ids if i is not None]
        )
        by_id = {c.public_id: c for c in found}
        for index, (component_id, item) in enumerate(zip(ids, given.components, strict=True)):
            component = by_id.get(component_id) if component_id is not None else None
            if component is None:
                raise ValidationFailed.field(
                    f"components.{index}.id",
                    f"参数 components.{index}.id 无效：{item.id} 不是该用户的公海组件",
                    reason="unknown_component",
                )
            conditions.append(_component_condition(index, item, component))
    created = given.created_at
    return PoolFilter(
        user_id=str(user.id),
        components=tuple(conditions),
        phones=None if phone is None else (_phone(phone, "phone"),),
        created_from=None if created is None else from_wire(created[0]),
        created_to=None if created is None else from_wire(created[1]),
        operators=None if given.operator is None else tuple(sorted(set(given.operator))),
        sub_user_id=sub_user_id,
        email=getattr(given, "email", None),
        company=getattr(given, "company", None),
    )


async def pool_condition(session: AsyncSession, pool_filter: PoolFilter) -> Any:
    """The SQL condition of a filter, with components resolved as they are now."""
    wanted = [uuid.UUID(c.component_id) for c in pool_filter.components]
    found = await components_repository.by_public_ids(
        session, uuid.UUID(pool_filter.user_id), wanted
    )
    return filters.condition(pool_filter, {str(c.public_id): c.id for c in found})


# --- reading and deleting ------------------------------------------------------------------


def _read(customer: Customer, components: Sequence[Component]) -> CustomerRead:
    shown = [
        ComponentValueRead(id=c.public_id, name=c.name, type=c.type, value=value)
        for c in components
        if (value := customer.components.get(str(c.public_id))) is not None
    ]
    return CustomerRead(
        id=customer.public_id,
        user_id=customer.user_id,
        sub_user_id=customer.sub_user_id,
        phone=customer.phone,
        name=customer.name,
        company=customer.company,
        email=customer.email,
        sex=customer.sex,
        sort=customer.sort,
        operator=Operator(customer.operator),
        operator_name=OPERATOR_NAMES[Operator(customer.operator)],
        province=customer.province,
        city=customer.city,
        extra=customer.extra,
        components=shown,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


async def list_customers(
    session: AsyncSession, user: User, query: CustomerQuery, *, phone: str | None
) -> tuple[list[CustomerRead], int, PageParams]:
    pool_filter = await resolve_filter(session, user, query, phone=phone)
    params = PageParams(page=query.page, per_page=query.per_page)
    condition = await pool_condition(session, pool_filter)
    rows, total = await repository.page(
        session, condition, offset=params.offset, limit=params.per_page
    )
    components = await components_repository.of_user(session, user.id)
    return [_read(row, components) for row in rows], total, params


async def detail(session: AsyncSession, user: User, customer_id: str) -> CustomerRead:
    parsed = parse_public_id(customer_id)
    customer = None if parsed is None else await repository.by_public_id(session, user.id, parsed)
    if customer is None:
        raise NotFound(f"客户 {customer_id} 不存在", reason="customer_not_found")
    return _read(customer, await components_repository.of_user(session, user.id))


async def delete(
    session: AsyncSession, user: User, given: CustomerDeleteIn, *, phones_plain: list[str] | None
) -> int:
    """Delete by phones and/or a created_at range (AND); with neither, nothing."""
    if not phones_plain and not given.created_at:
        return 0
    created = given.created_at
    pool_filter = PoolFilter(
        user_id=str(user.id),
        phones=None
        if not phones_plain
        else tuple(_phone(p, f"phone.{i}") for i, p in enumerate(phones_plain)),
        created_from=None if created is None else from_wire(created[0]),
        created_to=None if created is None else from_wire(created[1]),
    )
    return await repository.delete_where(session, filters.condition(pool_filter, {}))


# --- storing rows --------------------------------------------------------------------------


@dataclass
class IngestResult:
    created: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    def note(self, errors: Iterable[RowError]) -> None:
        room = MAX_LISTED_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(list(errors)[:room])

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": [e.to_json() for e in sorted(self.errors, key=lambda e: e.row)],
        }


def component_specs(components: Iterable[Component]) -> list[ComponentSpec]:
    return [
        ComponentSpec(
            row_id=c.id,
            public_id=str(c.public_id),
            name=c.name,
            type=c.type,
            rules=frozenset(c.validate),
            status=c.status,
        )
        for c in components
    ]


async def row_checker(
    session: AsyncSession,
    user: User,
    *,
    label: Callable[[ComponentSpec], str],
    allow_created_at: bool = False,
) -> RowChecker:
    specs = component_specs(await components_repository.of_user(session, user.id))
    sub_users = await repository.sub_user_ids(session, user.id)
    return RowChecker(specs, sub_users, label=label, allow_created_at=allow_created_at)


def _customer_row(user: User, draft: Draft, now: Any) -> dict[str, Any]:
    info = draft.info
    return {
        "public_id": new_public_id(),
        "user_id": user.id,
        "sub_user_id": None if draft.sub_user_id is None else uuid.UUID(draft.sub_user_id),
        "phone": info.phone,
        "name": draft.name,
        "email": draft.email,
        "company": draft.company,
        "sex": draft.sex,
        "sort": draft.sort,
        "extra": draft.extra,
        "operator": int(info.operator),
        "province": info.province,
        "city": info.city,
        "components": draft.shown,
        "created_at": draft.created_at or now,
        "updated_at": now,
    }


async def ingest(
    session: AsyncSession,
    user: User,
    checker: RowChecker,
    rows: Iterable[RowInput],
    result: IngestResult,
) -> list[tuple[RowInput, list[RowError]]]:
    """Check and store rows; a phone already in the pool, or earlier among the rows, is a
    duplicate. Adds to ``result``; returns the rejected rows with why."""
    rejected: list[tuple[RowInput, list[RowError]]] = []
    drafts: dict[str, tuple[RowInput, Draft]] = {}
    for row in rows:
        checked = checker.check(row)
        if isinstance(checked, list):
            result.rejected += 1
            result.note(checked)
            rejected.append((row, checked))
        elif checked.info.phone in drafts:
            duplicate = RowError(row.index, "phone", checked.info.phone, "duplicate")
            result.duplicates += 1
            result.note([duplicate])
        else:
            drafts[checked.info.phone] = (row, checked)
    now = utcnow()
    created = await repository.insert_new(
        session, [_customer_row(user, draft, now) for _, draft in drafts.values()]
    )
    value_rows: list[tuple[int, str, int]] = []
    for phone, (row, draft) in drafts.items():
        customer_id = created.get(phone)
        if customer_id is None:
            result.duplicates += 1
            result.note([RowError(row.index, "phone", phone, "duplicate")])
            continue
        value_rows += [(component_id, key, customer_id) for component_id, key in draft.keys]
    result.created += len(created)
    await repository.insert_values(session, value_rows)
    return rejected


# --- async_customer batches ----------------------------------------------------------------


def api_row(index: int, row: dict[str, Any]) -> RowInput | RowError:
    """An async_customer row in the shape the checker takes."""
    given = row.get("components") or []
    if not isinstance(given, list) or not all(
        isinstance(item, dict) and "id" in item for item in given
    ):
        return RowError(index, "components", given, "invalid_type")
    components: dict[str, Any] = {}
    for item in given:
        parsed = parse_public_id(str(item["id"]))
        components[str(parsed) if parsed else str(item["id"])] = item.get("value")
    return RowInput(index, row, components)


async def accept_async_customer(
    session: AsyncSession, registry: Registry, user: User, given: AsyncCustomerIn
) -> Batch:
    if len(given.data) > MAX_ASYNC_ROWS:
        raise PayloadTooLarge(
            f"参数 data 最多 {MAX_ASYNC_ROWS} 行，收到 {len(given.data)} 行；更多请分批提交或使用 "
            "highseas pool import",
            reason="too_many_rows",
        )
    return await batches.accept(
        session,
        registry,
        user=user,
        type=BatchType.ASYNC_CUSTOMER,
        job_kind=ASYNC_CUSTOMER_JOB,
        request={"data": given.data},
        encryption=given.encryption,
    )


async def run_async_customer(
    session: AsyncSession, registry: Registry, batch_id: uuid.UUID
) -> None:
    batch = await batches.start(session, batch_id)
    if batch is None:
        return
    user = await session.get_one(User, batch.user_id)
    checker = await row_checker(session, user, label=lambda c: f"components.{c.public_id}")
    result = IngestResult()
    rows: list[RowInput] = []
    for index, row in enumerate(batch.request["data"]):
        adapted = api_row(index, row)
        if isinstance(adapted, RowError):
            result.rejected += 1
            result.note([adapted])
        else:
            rows.append(adapted)
    await ingest(session, user, checker, rows, result)
    await batches.finish(session, registry, batch, result.to_json())
