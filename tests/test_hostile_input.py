"""Hostile or out-of-range input gets a clear 422 naming the field, never a 500, and one bad
pool row never holds up the others (found by acceptance testing)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from highseas.config import Settings
from highseas.db import Database
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent, make_user, run_jobs

SURROGATE = '"\\ud800"'  # the JSON text of a lone surrogate: valid JSON, no Unicode text


def _raw(value: dict[str, Any], **replace: str) -> bytes:
    """``value`` as JSON, each placeholder string swapped for the raw JSON text given."""
    text = json.dumps(value, ensure_ascii=False)
    for placeholder, raw in replace.items():
        text = text.replace(f'"{placeholder}"', raw)
    return text.encode()


@pytest.fixture
async def owner(client: httpx.AsyncClient, db: Database) -> dict[str, Any]:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    ids = {}
    for name, kind in (("行业", "text"), ("年龄", "number")):
        created = await client.post(
            f"{base}/component", json={"name": name, "type": kind}, headers=agent.headers
        )
        ids[kind] = created.json()["data"]["id"]
    return {"base": base, "headers": {**agent.headers, "content-type": "application/json"}, **ids}


async def _send(
    client: httpx.AsyncClient, owner: dict[str, Any], method: str, path: str, body: bytes | None
) -> httpx.Response:
    return await client.request(method, path, content=body, headers=owner["headers"])


async def test_bodies_no_database_could_store_are_refused_where_they_are(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    base, text_id = owner["base"], owner["text"]
    filtered = {"components": [{"id": text_id, "value": "X"}]}
    for method, path, body in [
        ("GET", f"{base}/get_customer", _raw(filtered, X=SURROGATE)),
        ("GET", f"{base}/get_customer", _raw({"email": "X"}, X=SURROGATE)),
        ("POST", f"{base}/component", _raw({"name": "X", "type": "text"}, X=SURROGATE)),
        ("POST", f"{base}/async_customer", _raw({"data": [{"phone": "X"}]}, X=SURROGATE)),
        ("GET", f"{base}/get_customer", b'{"a":' * 5000 + b"1" + b"}" * 5000),
    ]:
        refused = assert_error(await _send(client, owner, method, path, body), 422, "invalid_json")
        assert "第 1 行第" in str(refused["message"])

    nul = [
        ("POST", f"{base}/component", {"name": "a\u0000b", "type": "text"}, "name"),
        ("POST", f"{base}/task", {"name": "a\u0000b"}, "name"),
        ("GET", f"{base}/get_customer", {"company": "a\u0000b"}, "company"),
        ("GET", f"{base}/get_customer", {"components": [{"id": text_id, "value": "\u0000"}]},
         "components.0.value"),
        ("POST", f"{base}/async_customer", {"data": [{"phone": "13800000000"},
         {"phone": "13800000001", "name": "a\u0000"}]}, "data.1.name"),
        ("PUT", "/agent-api/callback/api_customer_to_task", {"url": "http://a\u0000b/"}, "url"),
    ]  # fmt: skip
    for method, path, value, field in nul:
        raw = json.dumps(value).encode()
        body = assert_error(await _send(client, owner, method, path, raw), 422, "validation_failed")
        assert list(body["errors"]) == [field]  # type: ignore[call-overload]
        assert "NUL" in str(body["message"])
    in_query = await _send(client, owner, "GET", f"{base}/get_customer?email=a%00b", None)
    assert list(assert_error(in_query, 422, "validation_failed")["errors"]) == ["email"]  # type: ignore[call-overload]


async def test_numbers_past_what_the_database_holds_are_422(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    base = owner["base"]
    huge = "10000000000000000000"
    for path in [
        f"{base}/get_customer?page={huge}",
        f"{base}/all_task?page={huge}",
        f"{base}/batches?page={huge}",
        f"/agent-api/users?page={huge}",
    ]:
        body = assert_error(await _send(client, owner, "GET", path, None), 422, "validation_failed")
        assert list(body["errors"]) == ["page"]  # type: ignore[call-overload]
    sort = _raw({"name": "大", "type": "text", "sort": "S"}, S="9223372036854775808")
    body = assert_error(await _send(client, owner, "POST", f"{base}/component", sort), 422,
                        "validation_failed")  # fmt: skip
    assert list(body["errors"]) == ["sort"]  # type: ignore[call-overload]


async def test_a_time_out_of_range_in_utc_is_a_422(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    """0001-01-01 00:00:00 in Asia/Shanghai is before year 1 in UTC."""
    early = json.dumps({"created_at": ["0001-01-01 00:00:00", "9999-12-31 23:59:59"]}).encode()
    for method, path in (("GET", "get_customer"), ("DELETE", "del_customer")):
        response = await _send(client, owner, method, f"{owner['base']}/{path}", early)
        assert list(assert_error(response, 422, "validation_failed")["errors"]) == ["created_at"]  # type: ignore[call-overload]
    wide = json.dumps({"created_at": ["1900-01-01 00:00:00", "9999-12-31 23:59:59"]}).encode()
    response = await _send(client, owner, "GET", f"{owner['base']}/get_customer", wide)
    assert response.status_code == 200, response.text


async def test_a_boolean_or_an_object_is_no_filter_value(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    for component in ("text", "number"):
        for value in (True, {"a": 1}):
            filtered = {"components": [{"id": owner[component], "value": value}]}
            response = await _send(
                client, owner, "GET", f"{owner['base']}/get_customer", json.dumps(filtered).encode()
            )
            body = assert_error(response, 422, "validation_failed")
            # The field as the client knows it, not pydantic's union members.
            assert list(body["errors"]) == ["components.0.value"]  # type: ignore[call-overload]


async def test_del_customer_with_both_filters_empty_deletes_nothing(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    path = f"{owner['base']}/del_customer"
    for body in (b'{"phone": [], "created_at": []}', b"{}", None):
        response = await _send(client, owner, "DELETE", path, body)
        assert response.status_code == 200, response.text
        assert response.json()["data"] == {"deleted": 0}


async def _store(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    owner: dict[str, Any],
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    accepted = await client.post(
        f"{owner['base']}/async_customer", json={"data": rows}, headers=owner["headers"]
    )
    assert accepted.status_code == 200, accepted.text
    await run_jobs(db, settings)
    unique_id = accepted.json()["data"]["unique_id"]
    result = await client.get(
        f"{owner['base']}/identification/{unique_id}", headers=owner["headers"]
    )
    batch: dict[str, Any] = result.json()["data"]
    assert batch["state"] == "succeeded", batch
    return batch


async def test_bad_rows_are_reported_and_the_good_ones_stored(
    client: httpx.AsyncClient, db: Database, settings: Settings, owner: dict[str, Any]
) -> None:
    rows = [
        {"phone": "13800000000", "sort": 2**63},
        {"phone": "13800000001", "sort": -(2**31)},
        {"phone": "13800000002", "sex": "男"},
        {"phone": "13800000003", "components": [{"id": owner["number"], "value": ""}]},
        {"phone": "13800000004", "name": "好"},
    ]
    await client.put(
        f"{owner['base']}/component/{owner['number']}",
        json={"validate": ["required"]},
        headers=owner["headers"],
    )
    for row in rows[:3] + rows[4:]:
        row["components"] = [{"id": owner["number"], "value": 30}]
    batch = await _store(client, db, settings, owner, rows)
    assert batch["data"]["created"] == 2 and batch["data"]["rejected"] == 3
    errors = {(e["row"], e["field"], e["reason"]) for e in batch["data"]["errors"]}
    assert errors == {
        (0, "sort", "out_of_range"),
        (2, "sex", "invalid_sex"),
        (3, f"components.{owner['number']}", "required"),
    }
    empty = next(e for e in batch["data"]["errors"] if e["row"] == 3)
    assert empty["value"] == ""  # what was sent, not null


async def test_every_body_goes_through_the_same_door(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Each operation that takes a body refuses a NUL in it, even in a field it ignores: every
    router has JsonInputRoute."""
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path))
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert len(operations) > 15
    for method, path in operations:
        response = await client.request(method, path, content=b'{"x": "\\u0000"}')
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["errors"] == {"x": ["不能包含 NUL 字符（\\u0000）"]}, (method, path)


async def test_prefix_and_contains_take_the_text_as_given(
    client: httpx.AsyncClient, db: Database, settings: Settings, owner: dict[str, Any]
) -> None:
    texts = ["a\ud7ffb", "a\ue000", "a\U0010ffff", "ab c", "abc", "x   y"]
    rows = [
        {"phone": f"1380000010{i}", "components": [{"id": owner["text"], "value": text}]}
        for i, text in enumerate(texts)
    ]
    assert (await _store(client, db, settings, owner, rows))["data"]["created"] == len(texts)
    cases = [
        ("prefix", "a\ud7ff", {"a\ud7ffb"}),  # the next code point is no character
        ("prefix", "a\U0010ffff", {"a\U0010ffff"}),  # the last code point has no next
        ("prefix", "\U0010ffff", set()),
        ("prefix", "ab ", {"ab c"}),  # not trimmed
        ("contains", " c", {"ab c"}),
        ("contains", "   ", {"x   y"}),
    ]
    for op, value, expected in cases:
        filtered = {"components": [{"id": owner["text"], "value": value, "op": op}]}
        response = await _send(
            client, owner, "GET", f"{owner['base']}/get_customer", json.dumps(filtered).encode()
        )
        assert response.status_code == 200, (op, value, response.text)
        found = {
            component["value"] for row in response.json()["data"] for component in row["components"]
        }
        assert found == expected, (op, value)


async def test_a_boolean_carrier_or_a_python_number_is_refused(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    path = f"{owner['base']}/get_customer"
    carrier = await _send(client, owner, "GET", path, b'{"operator": [true]}')
    assert list(assert_error(carrier, 422, "validation_failed")["errors"]) == ["operator.0"]  # type: ignore[call-overload]
    assert (await _send(client, owner, "GET", f"{path}?operator=1", None)).status_code == 200
    underscore = {"components": [{"id": owner["number"], "value": "1_000"}]}
    refused = await _send(client, owner, "GET", path, json.dumps(underscore).encode())
    assert_error(refused, 422, "invalid_filter")
    op = {"components": [{"id": owner["text"], "value": "x", "op": "like"}]}
    body = assert_error(await _send(client, owner, "GET", path, json.dumps(op).encode()), 422,
                        "validation_failed")  # fmt: skip
    assert " or " not in str(body["message"]) and "、" in str(body["message"])


async def test_a_list_or_object_where_text_belongs_is_invalid_type(
    client: httpx.AsyncClient, db: Database, settings: Settings, owner: dict[str, Any]
) -> None:
    rows = [
        {"phone": "13800000200", "email": ["a@b.cn"]},
        {"phone": "13800000201", "name": {"x": 1}},
        {"phone": ["13800000202"]},
        {"phone": "13800000203", "sort": "1_000"},
        {"phone": "13800000204", "name": "好"},
    ]
    batch = await _store(client, db, settings, owner, rows)
    assert batch["data"]["created"] == 1
    errors = [(e["row"], e["field"], e["value"], e["reason"]) for e in batch["data"]["errors"]]
    assert errors == [
        (0, "email", ["a@b.cn"], "invalid_type"),  # the value as sent, not its repr
        (1, "name", {"x": 1}, "invalid_type"),
        (2, "phone", ["13800000202"], "invalid_type"),
        (3, "sort", "1_000", "not_integer"),
    ]


async def test_no_component_may_take_a_pool_field_name(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    for name in ("name", "phone", "created_at"):
        created = await client.post(
            f"{owner['base']}/component", json={"name": name, "type": "text"},
            headers=owner["headers"],
        )  # fmt: skip
        assert list(assert_error(created, 422, "name_reserved")["errors"]) == ["name"]  # type: ignore[call-overload]


async def test_a_body_user_id_is_compared_as_a_uuid(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    user_id = owner["base"].rsplit("/", 1)[-1]
    path = f"{owner['base']}/get_customer"
    for spelling in (user_id.upper(), user_id.replace("-", "")):
        body = json.dumps({"user_id": spelling}).encode()
        assert (await _send(client, owner, "GET", path, body)).status_code == 200, spelling
    other = json.dumps({"user_id": str(uuid.uuid4())}).encode()
    refused = await _send(client, owner, "GET", path, other)
    assert list(assert_error(refused, 422, "validation_failed")["errors"]) == ["user_id"]  # type: ignore[call-overload]
