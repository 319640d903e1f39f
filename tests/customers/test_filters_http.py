"""get_customer through real HTTP: every filter kind against a known 60-row pool."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from highseas.clock import to_wire, utcnow
from highseas.config import Settings
from highseas.db import Database
from tests.customers.pool import Pool, make_pool
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import run_jobs


@pytest.fixture
async def pool(client: httpx.AsyncClient, db: Database, settings: Settings) -> Pool:
    return await make_pool(client, db, settings)


async def _phones(client: httpx.AsyncClient, pool: Pool, body: dict[str, Any]) -> set[str]:
    response = await client.request(
        "GET",
        f"{pool.base}/get_customer",
        json={**body, "per_page": 1000},
        headers=pool.headers,
    )
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["meta"]["total"] == len(payload["data"])
    return {row["phone"] for row in payload["data"]}


def _expected(pool: Pool, keep: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {r["phone"] for r in pool.rows if keep(r)}


async def test_no_filter_is_the_whole_pool(client: httpx.AsyncClient, pool: Pool) -> None:
    assert await _phones(client, pool, {}) == _expected(pool, lambda r: True)


CASES: list[tuple[str, Callable[[dict[str, str]], dict[str, Any]], Callable[[dict[str, Any]], bool]]] = [
    ("text eq", lambda c: {"components": [{"id": c["公司名称"], "value": "腾讯"}]},
     lambda r: r["company_component"] == "腾讯"),
    ("text in (list value)", lambda c: {"components": [{"id": c["公司名称"], "value": ["腾讯", "百度"]}]},
     lambda r: r["company_component"] in ("腾讯", "百度")),
    ("text contains", lambda c: {"components": [{"id": c["公司名称"], "value": "巴", "op": "contains"}]},
     lambda r: "巴" in r["company_component"]),
    ("text prefix", lambda c: {"components": [{"id": c["公司名称"], "value": "阿里", "op": "prefix"}]},
     lambda r: r["company_component"].startswith("阿里")),
    ("number eq (numeric)", lambda c: {"components": [{"id": c["年龄"], "value": "25.0"}]},
     lambda r: r["age"] == 25),
    ("number gte", lambda c: {"components": [{"id": c["年龄"], "value": 45, "op": "gte"}]},
     lambda r: r["age"] >= 45),
    ("number between", lambda c: {"components": [{"id": c["年龄"], "value": [22, 24], "op": "between"}]},
     lambda r: 22 <= r["age"] <= 24),
    ("number lte", lambda c: {"components": [{"id": c["年龄"], "value": 21, "op": "lte"}]},
     lambda r: r["age"] <= 21),
    ("date same day", lambda c: {"components": [{"id": c["签约日期"], "value": "2024-03-05 18:30:00"}]},
     lambda r: r["signed"] == "2024-03-05"),
    ("date between", lambda c: {"components": [{"id": c["签约日期"], "value": ["2024-03-02", "2024-03-03"], "op": "between"}]},
     lambda r: "2024-03-02" <= r["signed"] <= "2024-03-03"),
    ("phone", lambda c: {"phone": "+86 133-0000-0007"}, lambda r: r["phone"] == "13300000007"),
    ("operator", lambda c: {"operator": [1, 4]}, lambda r: r["operator"] in (1, 4)),
    ("email", lambda c: {"email": "c3@example.com"}, lambda r: r["email"] == "c3@example.com"),
    ("company", lambda c: {"company": "公司2"}, lambda r: r["company"] == "公司2"),
    ("company trimmed as stored", lambda c: {"company": " 公司2 "}, lambda r: r["company"] == "公司2"),
    ("combined AND", lambda c: {"operator": [3], "components": [
        {"id": c["公司名称"], "value": "腾讯"}, {"id": c["年龄"], "value": 30, "op": "gte"}]},
     lambda r: r["operator"] == 3 and r["company_component"] == "腾讯" and r["age"] >= 30),
]  # fmt: skip


@pytest.mark.parametrize(("body", "keep"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_filter(
    client: httpx.AsyncClient,
    pool: Pool,
    body: Callable[[dict[str, str]], dict[str, Any]],
    keep: Callable[[dict[str, Any]], bool],
) -> None:
    expected = _expected(pool, keep)
    assert expected, "the case must select someone"
    assert expected != _expected(pool, lambda r: True), "the case must leave someone out"
    assert await _phones(client, pool, body(pool.components)) == expected


async def test_empty_and_not_empty(
    client: httpx.AsyncClient, pool: Pool, db: Database, settings: Settings
) -> None:
    extra = await client.post(
        f"{pool.base}/async_customer",
        json={"data": [{"phone": "13900000001"}]},
        headers=pool.headers,
    )
    assert extra.status_code == 200
    await run_jobs(db, settings)
    age = pool.components["年龄"]
    empty = await _phones(client, pool, {"components": [{"id": age, "op": "empty"}]})
    assert empty == {"13900000001"}
    filled = await _phones(client, pool, {"components": [{"id": age, "op": "not_empty"}]})
    assert filled == _expected(pool, lambda r: True)


async def test_created_at_range(client: httpx.AsyncClient, pool: Pool) -> None:
    now = to_wire(utcnow())
    everything = await _phones(client, pool, {"created_at": ["2020-01-01 00:00:00", now]})
    assert everything == _expected(pool, lambda r: True)
    nothing = await _phones(
        client, pool, {"created_at": ["2020-01-01 00:00:00", "2020-12-31 23:59:59"]}
    )
    assert nothing == set()


async def test_query_string_and_post_give_the_same_answer(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    company = pool.components["公司名称"]
    expected = _expected(
        pool, lambda r: r["company_component"] == "百度" and r["operator"] in (1, 3)
    )
    components = json.dumps([{"id": company, "value": "百度"}], ensure_ascii=False)
    variants = [
        ("GET", {"components": components, "operator": "[1,3]", "per_page": "1000"}, None),
        ("GET", [("components", components), ("operator", "1"), ("operator", "3"), ("per_page", "1000")], None),
        ("POST", {"per_page": "1000"}, {"components": [{"id": company, "value": "百度"}], "operator": [1, 3]}),
        # body wins over the query string
        ("GET", {"operator": "2", "per_page": "1000"}, {"operator": [1, 3], "components": [{"id": company, "value": "百度"}]}),
    ]  # fmt: skip
    for method, params, body in variants:
        response = await client.request(
            method, f"{pool.base}/get_customer", params=params, json=body, headers=pool.headers
        )
        assert response.status_code == 200, (params, response.text)
        assert {r["phone"] for r in response.json()["data"]} == expected, params
    scalar = await client.get(
        f"{pool.base}/get_customer",
        params={"operator": "4", "per_page": "1000"},
        headers=pool.headers,
    )
    assert {r["phone"] for r in scalar.json()["data"]} == _expected(
        pool, lambda r: r["operator"] == 4
    )
    # A one-value field given twice is refused, naming it, not one of the two used.
    twice = await client.get(
        f"{pool.base}/get_customer",
        params=[("phone", "13300000007"), ("phone", "13000000001")],
        headers=pool.headers,
    )
    error = assert_error(twice, 422, "validation_failed")
    assert "phone" in error["errors"] and "13000000001" in error["message"]


async def test_rows_and_pagination(client: httpx.AsyncClient, pool: Pool) -> None:
    response = await client.get(
        f"{pool.base}/get_customer", params={"page": 2, "per_page": 25}, headers=pool.headers
    )
    payload = response.json()
    assert payload["meta"] == {
        "has_pages": True, "total": 60, "last_page": 3, "current_page": 2, "per_page": 25,
    }  # fmt: skip
    assert len(payload["data"]) == 25
    row = payload["data"][0]
    assert set(row) >= {
        "id", "user_id", "phone", "name", "company", "email", "sex", "sort", "operator",
        "operator_name", "province", "city", "extra", "components", "created_at", "updated_at",
    }  # fmt: skip
    assert {c["name"] for c in row["components"]} == {"公司名称", "年龄", "签约日期"}
    detail = await client.get(f"{pool.base}/customer/detail/{row['id']}", headers=pool.headers)
    assert detail.json()["data"] == row
    by_phone = {r["phone"]: r for r in pool.rows}
    sent = by_phone[row["phone"]]
    assert row["operator"] == sent["operator"]
    assert row["operator_name"] == {1: "电信", 2: "联通", 3: "移动", 4: "广电"}[sent["operator"]]
    values = {c["name"]: c["value"] for c in row["components"]}
    assert values == {
        "公司名称": sent["company_component"],
        "年龄": sent["age"],
        "签约日期": sent["signed"],
    }


REJECTIONS: list[tuple[str, Callable[[dict[str, str]], dict[str, Any]], str, str]] = [
    ("unknown component", lambda c: {"components": [{"id": "3f0b7c1e-0000-4000-8000-000000000000", "value": "x"}]}, "components.0.id", "unknown_component"),
    ("op not for type", lambda c: {"components": [{"id": c["年龄"], "value": "1", "op": "contains"}]}, "components.0.op", "invalid_filter"),
    ("unknown op", lambda c: {"components": [{"id": c["年龄"], "value": "1", "op": "like"}]}, "components.0.op", "validation_failed"),
    ("number value not a number", lambda c: {"components": [{"id": c["年龄"], "value": "abc"}]}, "components.0.value", "invalid_filter"),
    ("date value not a date", lambda c: {"components": [{"id": c["签约日期"], "value": "2024-13-01"}]}, "components.0.value", "invalid_filter"),
    ("between needs two", lambda c: {"components": [{"id": c["年龄"], "value": [1], "op": "between"}]}, "components.0", "validation_failed"),
    ("between reversed", lambda c: {"components": [{"id": c["年龄"], "value": [9, 1], "op": "between"}]}, "components.0.value", "invalid_filter"),
    ("empty eq value", lambda c: {"components": [{"id": c["公司名称"], "value": ""}]}, "components.0", "validation_failed"),
    ("created_at one time", lambda c: {"created_at": ["2021-06-30 13:20:28"]}, "created_at", "validation_failed"),
    ("created_at malformed", lambda c: {"created_at": ["2021-06-30", "2021-07-01"]}, "created_at", "validation_failed"),
    ("created_at reversed", lambda c: {"created_at": ["2021-07-01 00:00:00", "2021-06-30 00:00:00"]}, "created_at", "validation_failed"),
    ("operator outside the set", lambda c: {"operator": [5]}, "operator.0", "validation_failed"),
    ("operator not a list", lambda c: {"operator": "x"}, "operator", "validation_failed"),
    ("invalid phone", lambda c: {"phone": "12345"}, "phone", "invalid_phone"),
    ("empty email", lambda c: {"email": ""}, "email", "validation_failed"),
    ("an array for one value", lambda c: {"components": [{"id": c["公司名称"], "value": ["a", "b"], "op": "eq"}]}, "components.0", "validation_failed"),
    ("a value for empty", lambda c: {"components": [{"id": c["公司名称"], "value": "zzz", "op": "not_empty"}]}, "components.0", "validation_failed"),
    ("too many component filters", lambda c: {"components": [{"id": c["公司名称"], "value": "腾讯", "op": "contains"}] * 31}, "components", "validation_failed"),
    ("company of spaces", lambda c: {"company": "  "}, "company", "validation_failed"),
    ("user_id differs", lambda c: {"user_id": "3f0b7c1e-0000-4000-8000-000000000000"}, "user_id", "validation_failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field", "reason"), [c[1:] for c in REJECTIONS], ids=[c[0] for c in REJECTIONS]
)
async def test_rejection(
    client: httpx.AsyncClient,
    pool: Pool,
    body: Callable[[dict[str, str]], dict[str, Any]],
    field: str,
    reason: str,
) -> None:
    response = await client.request(
        "GET", f"{pool.base}/get_customer", json=body(pool.components), headers=pool.headers
    )
    error = assert_error(response, 422, reason)
    assert field in error["errors"], error
    assert field in error["message"], error["message"]


async def test_foreign_sub_user_is_forbidden(client: httpx.AsyncClient, pool: Pool) -> None:
    response = await client.request(
        "GET",
        f"{pool.base}/get_customer",
        json={"sub_user_id": "3f0b7c1e-0000-4000-8000-000000000000"},
        headers=pool.headers,
    )
    assert_error(response, 403, "sub_user_forbidden")
