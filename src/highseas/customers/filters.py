"""The pool filter of contract §2 as one SQL condition. Pure: no I/O.

``PoolFilter`` is the validated, normalised filter. It is JSON-serialisable because an
accepted batch stores it and its job builds the condition later; component ids stay public
ids until then, so a component deleted in between matches nobody.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean

from highseas.models import ComponentType, Customer, CustomerValue


class FilterOp(StrEnum):
    EQ = "eq"
    IN = "in"
    CONTAINS = "contains"
    PREFIX = "prefix"
    GTE = "gte"
    LTE = "lte"
    BETWEEN = "between"
    EMPTY = "empty"
    NOT_EMPTY = "not_empty"


_TEXT_OPS = frozenset({"eq", "in", "contains", "prefix", "empty", "not_empty"})
_ORDERED_OPS = frozenset({"eq", "in", "gte", "lte", "between", "empty", "not_empty"})
OPS_BY_TYPE: Mapping[str, frozenset[FilterOp]] = {
    ComponentType.TEXT: frozenset(FilterOp(op) for op in _TEXT_OPS),
    ComponentType.NUMBER: frozenset(FilterOp(op) for op in _ORDERED_OPS),
    ComponentType.DATE: frozenset(FilterOp(op) for op in _ORDERED_OPS),
}


@dataclass(frozen=True)
class ComponentCondition:
    """``keys`` are index keys (components/values.py); for contains/prefix, the text itself."""

    component_id: str
    op: FilterOp
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolFilter:
    user_id: str
    components: tuple[ComponentCondition, ...] = ()
    phones: tuple[str, ...] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    operators: tuple[int, ...] | None = None
    sub_user_id: str | None = None
    email: str | None = None
    company: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("created_from", "created_to"):
            if data[name] is not None:
                data[name] = data[name].isoformat()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PoolFilter:
        def when(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        def tuple_or_none(value: list[Any] | None) -> tuple[Any, ...] | None:
            return None if value is None else tuple(value)

        return cls(
            user_id=data["user_id"],
            components=tuple(
                ComponentCondition(c["component_id"], FilterOp(c["op"]), tuple(c["keys"]))
                for c in data["components"]
            ),
            phones=tuple_or_none(data["phones"]),
            created_from=when(data["created_from"]),
            created_to=when(data["created_to"]),
            operators=tuple_or_none(data["operators"]),
            sub_user_id=data["sub_user_id"],
            email=data["email"],
            company=data["company"],
        )


class _contains_text(FunctionElement[bool]):
    """Literal, case-sensitive substring test on both databases (LIKE is case-insensitive on
    SQLite and needs escaping everywhere)."""

    type = Boolean()
    inherit_cache = True


@compiles(_contains_text, "sqlite")
def _contains_text_sqlite(element: _contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)}) > 0"


@compiles(_contains_text, "postgresql")
def _contains_text_postgresql(element: _contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)}) > 0"


class _not_indexed(FunctionElement[Any]):
    """A column the planner must not choose an index for (SQLite: unary ``+``).

    Without statistics, or with statistics a long-lived connection loaded before the pool
    grew, SQLite guesses that ``user_id = ?`` selects few rows and walks the user's whole
    pool instead of seeking the values index. PostgreSQL plans from live statistics."""

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(_not_indexed)
def _not_indexed_default(element: _not_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_not_indexed, "sqlite")
def _not_indexed_sqlite(element: _not_indexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


def _next_prefix(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix`` (code point
    order, which byte order of UTF-8 follows), or None when there is none (all U+10FFFF)."""
    for end in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[end]) + 1
        if code <= sys.maxunicode:
            # Surrogates are no characters, and no stored text holds one: skip them.
            return prefix[:end] + chr(0xE000 if 0xD800 <= code <= 0xDFFF else code)
    return None


def _value_condition(  # noqa: PLR0911
    op: FilterOp, keys: tuple[str, ...], *, seek: bool = True
) -> ColumnElement[bool]:
    # Probing one customer's values (``seek=False``), SQLite would otherwise turn an ``in``
    # into one seek per key: the customer's few values are cheaper to read and test.
    key: ColumnElement[Any] = (
        CustomerValue.value_key.expression if seek else _not_indexed(CustomerValue.value_key)
    )
    match op:
        case FilterOp.EQ:
            return key == keys[0]
        case FilterOp.IN:
            return key.in_(keys)
        case FilterOp.PREFIX:
            after = _next_prefix(keys[0])
            return key >= keys[0] if after is None else and_(key >= keys[0], key < after)
        case FilterOp.CONTAINS:
            return _contains_text(key, keys[0])
        case FilterOp.GTE:
            return key >= keys[0]
        case FilterOp.LTE:
            return key <= keys[0]
        case FilterOp.BETWEEN:
            return key.between(keys[0], keys[1])
        case _:
            return true()


def _component_condition(
    condition: ComponentCondition, component_ids: Mapping[str, int], *, probe: bool
) -> ColumnElement[bool]:
    component_id = component_ids.get(condition.component_id)
    if component_id is None:
        return false()  # deleted since the filter was accepted
    if condition.op is FilterOp.EMPTY:
        return ~exists().where(
            CustomerValue.customer_id == Customer.id, CustomerValue.component_id == component_id
        )
    values = (
        CustomerValue.component_id == component_id,
        _value_condition(condition.op, condition.keys, seek=not probe),
    )
    if probe:
        # Each customer the query walks looks up its own values (by customer id).
        return exists().where(CustomerValue.customer_id == Customer.id, *values)
    # The values index drives: (component, key) → customer ids, then customers by primary key.
    return Customer.id.in_(select(CustomerValue.customer_id).where(*values))


# The most selective kinds first: the planner tends to drive from the first seekable term.
_SELECTIVITY = [FilterOp.EQ, FilterOp.IN, FilterOp.PREFIX, FilterOp.BETWEEN, FilterOp.GTE]
_SELECTIVITY += [FilterOp.LTE, FilterOp.CONTAINS, FilterOp.NOT_EMPTY, FilterOp.EMPTY]


def _by_selectivity(pool_filter: PoolFilter) -> list[ComponentCondition]:
    return sorted(pool_filter.components, key=lambda c: _SELECTIVITY.index(c.op))


def _drives(pool_filter: PoolFilter, component_ids: Mapping[str, int]) -> ComponentCondition | None:
    """The component condition a query seeks by, unless a phone seeks or none can."""
    if pool_filter.phones is not None:
        return None
    return next(
        (
            c
            for c in _by_selectivity(pool_filter)
            if c.op is not FilterOp.EMPTY and c.component_id in component_ids
        ),
        None,
    )


def driving_values(pool_filter: PoolFilter, component_ids: Mapping[str, int]) -> Select[Any] | None:
    """How many values the condition that would drive the query matches (an upper bound of
    its customers), or None when the pool is walked anyway."""
    driver = _drives(pool_filter, component_ids)
    if driver is None:
        return None
    return (
        select(func.count())
        .select_from(CustomerValue)
        .where(
            CustomerValue.component_id == component_ids[driver.component_id],
            _value_condition(driver.op, driver.keys),
        )
    )


def condition(
    pool_filter: PoolFilter, component_ids: Mapping[str, int], *, walk_pool: bool = False
) -> ColumnElement[bool]:
    """All given filters, AND-ed; ``component_ids`` maps public component ids that still exist
    to their row ids. A component value seeks when it can; else, or with ``walk_pool`` (a
    filter matching much of the pool, read in phone order by an import), the user's rows are
    walked by an index and each customer's values are probed."""
    components = _by_selectivity(pool_filter)
    values_drive = not walk_pool and _drives(pool_filter, component_ids) is not None
    user_column = _not_indexed(Customer.user_id) if values_drive else Customer.user_id
    parts: list[ColumnElement[bool]] = [user_column == uuid.UUID(pool_filter.user_id)]
    parts += [_component_condition(c, component_ids, probe=walk_pool) for c in components]
    if pool_filter.phones is not None:
        parts.append(Customer.phone.in_(pool_filter.phones))
    if pool_filter.created_from is not None:
        parts.append(Customer.created_at >= pool_filter.created_from)
    if pool_filter.created_to is not None:
        # Inclusive to the whole second: stored times carry microseconds.
        parts.append(Customer.created_at < pool_filter.created_to + timedelta(seconds=1))
    if pool_filter.operators is not None:
        parts.append(Customer.operator.in_(pool_filter.operators))
    if pool_filter.sub_user_id is not None:
        parts.append(Customer.sub_user_id == uuid.UUID(pool_filter.sub_user_id))
    if pool_filter.email is not None:
        parts.append(Customer.email == pool_filter.email)
    if pool_filter.company is not None:
        parts.append(Customer.company == pool_filter.company)
    return and_(*parts)
