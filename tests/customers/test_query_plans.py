"""A component filter seeks the values index, whatever the planner statistics say."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from highseas.customers.filters import ComponentCondition, FilterOp, PoolFilter, condition
from highseas.models import Customer


def _sql(pool_filter: PoolFilter) -> str:
    query = select(Customer.id).where(condition(pool_filter, {"c": 1}))
    return str(query.compile(dialect=sqlite.dialect()))


def test_component_filters_drive_from_the_values_index_on_sqlite() -> None:
    user_id = str(uuid.uuid4())
    by_value = PoolFilter(user_id, components=(ComponentCondition("c", FilterOp.EQ, ("x",)),))
    assert "+customers.user_id" in _sql(by_value)
    # A phone seeks (user_id, phone); no filter and created_at walk (user_id, created_at).
    for other in (
        PoolFilter(user_id),
        PoolFilter(user_id, phones=("13800000000",), components=by_value.components),
        PoolFilter(user_id, components=(ComponentCondition("c", FilterOp.EMPTY),)),
    ):
        sql = _sql(other)
        assert "+customers.user_id" not in sql and "customers.user_id =" in sql


def test_a_deleted_component_matches_nobody() -> None:
    gone = ComponentCondition("gone", FilterOp.EQ, ("x",))
    assert _sql(PoolFilter(str(uuid.uuid4()), components=(gone,))).endswith("WHERE 0 = 1")


def test_walking_the_pool_keeps_the_user_index_and_probes_the_values() -> None:
    by_value = PoolFilter(
        str(uuid.uuid4()), components=(ComponentCondition("c", FilterOp.EQ, ("x",)),)
    )
    query = select(Customer.id).where(condition(by_value, {"c": 1}, walk_pool=True))
    sql = str(query.compile(dialect=sqlite.dialect()))
    assert "+customers.user_id" not in sql and "customers.user_id =" in sql
    assert "EXISTS (SELECT" in sql and "customer_values.customer_id = customers.id" in sql
    # One seek per customer, not one per key of an `in`.
    assert "+customer_values.value_key" in sql
