"""The customer pool (客户公海): filtering, reading, deleting and storing rows."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from highseas import phones
from highseas.batches import service as batches
from highseas.clock import from_wire, utcnow
from highseas.components import repository as components_repository
from highseas.components import values
from highseas.config import Settings
from highseas.crypto import service as crypto
from highseas.crypto.codec import Codec
from highseas.customers import filters, repository, snapshot_lock
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
from highseas.ids import parse_uuid
from highseas.jobs import Registry
from highseas.metrics import POOL_ROWS, PoolRow
from highseas.models import BatchType, Component, Customer, User
from highseas.models.base import new_public_id
from highseas.phones import OPERATOR_NAMES, Operator
from highseas.sqlite_driver import offloaded
from highseas.users.service import owned_sub_user

MAX_LISTED_ERRORS = 1000
MAX_ASYNC_ROWS = 200
ASYNC_CUSTOMER_JOB = "customers.async_customer"
# What is cipher text in the rows of an async_customer batch accepted with encryption (§6).
ENCRYPTED_ROW_FIELDS = ("phone", "company")


# --- filters -------------------------------------------------------------------------------


def _phone(codec: Codec, received: str, field_name: str) -> str:
    """The normalised phone of an input, decrypted first when the request is encrypted.
    A message shows the value as received, never decrypted text."""
    info = phones.parse(codec.decrypt(field_name, received))
    if info is None:
        decrypted = "解密后" if codec.active else ""
        raise ValidationFailed.field(
            field_name,
            f"参数 {field_name} 无效：{received!r} {decrypted}不是有效的中国大陆手机号码",
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
    patterns = op in (FilterOp.CONTAINS, FilterOp.PREFIX)  # the text as given, not a key
    for raw in raw_values:
        try:
            keys.append(values.pattern(raw) if patterns else values.parse(component.type, raw).key)
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
    session: AsyncSession,
    user: User,
    given: PoolFilterIn,
    *,
    codec: Codec,
    email: str | None = None,
    company: str | None = None,
) -> PoolFilter:
    """Check the filters against this user (422/403 naming the field) and normalise them.
    ``codec`` decrypts ``given.phone`` when the request is encrypted (``crypto.phone_codec``)."""
    # By value: the path takes any spelling of the UUID (upper case, no dashes), so does this.
    if given.user_id is not None and parse_uuid(given.user_id) != user.id:
        raise ValidationFailed.field(
            "user_id", f"参数 user_id 无效：{given.user_id} 与路径中的用户 {user.id} 不一致"
        )
    sub_user_id = None
    if given.sub_user_id is not None:
        sub_user_id = str((await owned_sub_user(session, user, given.sub_user_id)).id)
    conditions: list[ComponentCondition] = []
    if given.components:
        ids = [parse_uuid(c.id) for c in given.components]
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
        phones=None if given.phone is None else (_phone(codec, given.phone, "phone"),),
        created_from=None if created is None else from_wire(created[0]),
        created_to=None if created is None else from_wire(created[1]),
        operators=None if given.operator is None else tuple(sorted(set(given.operator))),
        sub_user_id=sub_user_id,
        email=email,
        company=company,
    )


async def pool_condition(
    session: AsyncSession, pool_filter: PoolFilter, *, chunk_rows: int | None = None
) -> ColumnElement[bool]:
    """The SQL condition of a filter, with components resolved as they are now.

    ``chunk_rows``: for an import, which reads the matches in phone order that many at a
    time. A chunk that seeks the component values sorts all the remaining matches by phone,
    so a filter matching much of the pool walks the pool (in phone order) instead."""
    user_id = uuid.UUID(pool_filter.user_id)
    wanted = [uuid.UUID(c.component_id) for c in pool_filter.components]
    found = await components_repository.by_public_ids(session, user_id, wanted)
    component_ids = {str(c.public_id): c.id for c in found}
    counting = filters.driving_values(pool_filter, component_ids)
    walk_pool = False
    if chunk_rows is not None and counting is not None:
        with offloaded():  # counts of up to the whole pool
            matches = int((await session.execute(counting)).scalar_one())
            # Seeking reads every remaining match once per chunk: about matches² / (2 · rows)
            # rows in all. Walking reads the pool once. (A pool holds at least ``matches``, so
            # up to two chunks of matches always seek, without counting the pool.)
            if matches > 2 * chunk_rows:
                pool = await repository.count_of_user(session, user_id)
                walk_pool = matches * matches > 2 * chunk_rows * pool
    return filters.condition(pool_filter, component_ids, walk_pool=walk_pool)


# --- reading and deleting ------------------------------------------------------------------


def _read(customer: Customer, components: Sequence[Component], codec: Codec) -> CustomerRead:
    shown = [
        ComponentValueRead(id=c.public_id, name=c.name, type=c.type, value=value)
        for c in components
        if (value := customer.components.get(str(c.public_id))) is not None
    ]
    return CustomerRead(
        id=customer.public_id,
        user_id=customer.user_id,
        sub_user_id=customer.sub_user_id,
        phone=codec.encrypt(customer.phone),
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
    session: AsyncSession, user: User, query: CustomerQuery, settings: Settings
) -> tuple[list[CustomerRead], int, PageParams]:
    """get_customer; with encryption, ``phone`` and the rows' phones are cipher text."""
    codec = await crypto.phone_codec(session, user.agent_id, query.encryption, settings)
    pool_filter = await resolve_filter(
        session, user, query, codec=codec, email=query.email, company=query.company
    )
    params = PageParams(page=query.page, per_page=query.per_page)
    condition = await pool_condition(session, pool_filter)
    rows, total = await repository.page(
        session, condition, offset=params.offset, limit=params.per_page
    )
    components = await components_repository.of_user(session, user.id)
    return [_read(row, components, codec) for row in rows], total, params


async def detail(
    session: AsyncSession, user: User, customer_id: str, *, encryption: bool, settings: Settings
) -> CustomerRead:
    """One customer; ``encryption`` (an extension: the platform has no flag here) shows its
    phone as cipher text, as get_customer does."""
    parsed = parse_uuid(customer_id)
    customer = None if parsed is None else await repository.by_public_id(session, user.id, parsed)
    if customer is None:
        raise NotFound(f"客户 {customer_id} 不存在", reason="customer_not_found")
    codec = await crypto.phone_codec(session, user.agent_id, encryption, settings)
    return _read(customer, await components_repository.of_user(session, user.id), codec)


async def delete(
    session: AsyncSession, user: User, given: CustomerDeleteIn, settings: Settings
) -> int:
    """Delete by phones and/or a created_at range (AND); with neither, nothing. With
    encryption the phones are cipher text."""
    if not given.phone and not given.created_at:
        return 0
    codec = await crypto.phone_codec(session, user.agent_id, given.encryption, settings)
    created = given.created_at
    pool_filter = PoolFilter(
        user_id=str(user.id),
        phones=None
        if not given.phone
        else tuple(_phone(codec, p, f"phone.{i}") for i, p in enumerate(given.phone)),
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


@dataclass
class CheckedRows:
    """Rows checked, before the pool has its say: the new phones' drafts, the rejected rows
    with why, and the repeats of a phone earlier among the rows."""

    drafts: dict[str, tuple[RowInput, Draft]] = field(default_factory=dict)
    rejected: list[tuple[RowInput, list[RowError]]] = field(default_factory=list)
    repeats: list[RowError] = field(default_factory=list)


def check_rows(checker: RowChecker, rows: Iterable[RowInput]) -> CheckedRows:
    """Pure: no session, so a chunk is checked before its transaction begins."""
    checked = CheckedRows()
    for row in rows:
        draft = checker.check(row)
        if isinstance(draft, list):
            checked.rejected.append((row, draft))
        elif draft.info.phone in checked.drafts:
            checked.repeats.append(RowError(row.index, "phone", draft.info.phone, "duplicate"))
        else:
            checked.drafts[draft.info.phone] = (row, draft)
    return checked


async def store_checked(
    session: AsyncSession, user: User, checked: CheckedRows, result: IngestResult
) -> None:
    """Store the drafts whose phone is not yet in the pool; the rest are duplicates. Adds
    everything ``checked`` holds to ``result``."""
    for _, errors in checked.rejected:
        result.rejected += 1
        result.note(errors)
    result.duplicates += len(checked.repeats)
    result.note(checked.repeats)
    await snapshot_lock.hold_for_writing(session, user.id)
    now = utcnow()
    created = await repository.insert_new(
        session, [_customer_row(user, draft, now) for _, draft in checked.drafts.values()]
    )
    value_rows: list[tuple[int, str, int]] = []
    for phone, (row, draft) in checked.drafts.items():
        customer_id = created.get(phone)
        if customer_id is None:
            result.duplicates += 1
            result.note([RowError(row.index, "phone", phone, "duplicate")])
            continue
        value_rows += [(component_id, key, customer_id) for component_id, key in draft.keys]
    result.created += len(created)
    value_rows.sort()  # in index order: each index page is written once per chunk
    await repository.insert_values(session, value_rows)


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
        parsed = parse_uuid(str(item["id"]))
        components[str(parsed) if parsed else str(item["id"])] = item.get("value")
    return RowInput(index, row, components)


async def accept_async_customer(
    session: AsyncSession,
    registry: Registry,
    user: User,
    given: AsyncCustomerIn,
    settings: Settings,
) -> uuid.UUID:
    """Queue the rows; the batch's id. The batch records whether they are cipher text (asked
    for, and the agent has encryption on, now): the job decrypts them row by row."""
    if len(given.data) > MAX_ASYNC_ROWS:
        raise PayloadTooLarge(
            f"参数 data 最多 {MAX_ASYNC_ROWS} 行，收到 {len(given.data)} 行；更多请分批提交或使用 "
            "highseas pool import",
            reason="too_many_rows",
        )
    codec = await crypto.phone_codec(session, user.agent_id, given.encryption, settings)
    return await batches.accept(
        session,
        registry,
        user=user,
        type=BatchType.ASYNC_CUSTOMER,
        job_kind=ASYNC_CUSTOMER_JOB,
        request={"data": given.data},
        encryption=codec.active,
    )


def decrypted_row(
    index: int, row: dict[str, Any], codec: Codec
) -> tuple[dict[str, Any], list[RowError]]:
    """The row with its encrypted fields in plain text, and one ``undecryptable`` error per
    field that does not decrypt (left as sent). A plain codec returns the row as it is."""
    if not codec.active:
        return row, []
    opened = dict(row)
    errors: list[RowError] = []
    for name in ENCRYPTED_ROW_FIELDS:
        value = row.get(name)
        if value is None or value == "":
            continue
        plain = codec.open(value) if isinstance(value, str) else None
        if plain is None:
            errors.append(RowError(index, name, value, "undecryptable"))
        else:
            opened[name] = plain
    return opened, errors


def _problems(
    checker: RowChecker, row: RowInput | RowError, undecryptable: list[RowError]
) -> list[RowError]:
    """Every problem of a row one of whose fields did not decrypt: those, and what the
    checker finds in the rest (its finding on such a field would only repeat it)."""
    if isinstance(row, RowError):
        return [*undecryptable, row]
    checked = checker.check(row)
    found = checked if isinstance(checked, list) else []
    unread = {error.field for error in undecryptable}
    return [*undecryptable, *(error for error in found if error.field not in unread)]


def _as_received(error: RowError, data: list[dict[str, Any]]) -> RowError:
    # A result of an encrypted batch shows phone and company as the client sent them
    # (cipher text): it is stored, shown and sent in the callback, never decrypted text.
    if error.field not in ENCRYPTED_ROW_FIELDS:
        return error
    return dataclasses.replace(error, value=data[error.row].get(error.field))


async def run_async_customer(
    session: AsyncSession, registry: Registry, batch_id: uuid.UUID, settings: Settings
) -> None:
    batch = await batches.start(session, batch_id)
    if batch is None:
        return
    user = await session.get_one(User, batch.user_id)
    checker = await row_checker(session, user, label=lambda c: f"components.{c.public_id}")
    codec = await crypto.batch_codec(session, batch, settings)
    data: list[dict[str, Any]] = batch.request["data"]
    result = IngestResult()
    rows: list[RowInput] = []
    for index, row in enumerate(data):
        opened, undecryptable = decrypted_row(index, row, codec)
        adapted = api_row(index, opened)
        if isinstance(adapted, RowInput) and not undecryptable:
            rows.append(adapted)
        else:
            result.rejected += 1
            result.note(_problems(checker, adapted, undecryptable))
    await store_checked(session, user, check_rows(checker, rows), result)
    POOL_ROWS.labels(PoolRow.CREATED).inc(result.created)
    POOL_ROWS.labels(PoolRow.DUPLICATE).inc(result.duplicates)
    POOL_ROWS.labels(PoolRow.REJECTED).inc(result.rejected)
    if codec.active:
        result.errors = [_as_received(error, data) for error in result.errors]
    await batches.finish(session, registry, batch, result.to_json())
