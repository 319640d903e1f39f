"""async_customer through real HTTP: the batch, its job, and the result on identification."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from highseas.config import Settings
from highseas.db import Database
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent, make_user, run_jobs


async def _user_with_components(
    client: httpx.AsyncClient, db: Database
) -> tuple[dict[str, str], str, dict[str, str]]:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    ids = {}
    for name, kind, rules in (("行业", "text", ["required"]), ("年龄", "number", ["integer"])):
        created = await client.post(
            f"{base}/component",
            json={"name": name, "type": kind, "validate": rules},
            headers=agent.headers,
        )
        ids[name] = created.json()["data"]["id"]
    return agent.headers, base, ids


async def _submit(
    client: httpx.AsyncClient, headers: dict[str, str], base: str, rows: list[dict[str, Any]]
) -> str:
    response = await client.post(f"{base}/async_customer", json={"data": rows}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] and body["code"] == 200
    return str(body["data"]["unique_id"])


async def test_rows_are_checked_one_by_one(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    headers, base, ids = await _user_with_components(client, db)

    def row(phone: str, industry: Any = "教育", age: Any = 30, **extra: Any) -> dict[str, Any]:
        components = [{"id": ids["行业"], "value": industry}, {"id": ids["年龄"], "value": age}]
        return {"phone": phone, "components": components, **extra}

    rows = [
        row("13800000001", name="张三", sex=1),  # 0 stored
        row("138 0000 0002"),  # 1 stored (normalised)
        row("+8613800000001"),  # 2 duplicate of row 0 within the request
        row("12345"),  # 3 invalid phone
        row("13800000003", industry=""),  # 4 required component empty
        row("13800000004", age=3.5),  # 5 integer rule
        row("13800000005", age="abc"),  # 6 not a number
        row("13800000006", email="nope"),  # 7 invalid email
        row("13800000007", sex=7),  # 8 invalid sex
        {"phone": "13800000008", "components": [{"id": str(uuid.uuid4()), "value": "x"}]},  # 9
        {"phone": "13800000009", "components": "x"},  # 10 components not a list
        row("13800000010", sub_user_id=str(uuid.uuid4())),  # 11 not a sub-account
    ]
    unique_id = await _submit(client, headers, base, rows)
    pending = (await client.get(f"{base}/identification/{unique_id}", headers=headers)).json()
    assert pending["data"]["state"] == "queued" and pending["data"]["status"] is None

    await run_jobs(db, settings)
    done = (await client.get(f"{base}/identification/{unique_id}", headers=headers)).json()["data"]
    assert done["type"] == "api_async_customer" and done["mode"] == "batch"
    assert done["unique_id"] == unique_id and done["state"] == "succeeded"
    assert done["status"] == "success" and done["finished_at"] is not None
    result = done["data"]
    assert (result["created"], result["duplicates"], result["rejected"]) == (2, 1, 9)
    reasons = {(e["row"], e["field"], e["reason"]) for e in result["errors"]}
    assert reasons == {
        (2, "phone", "duplicate"),
        (3, "phone", "invalid_phone"),
        (4, f"components.{ids['行业']}", "required"),
        (5, f"components.{ids['年龄']}", "not_integer"),
        (6, f"components.{ids['年龄']}", "not_number"),
        (7, "email", "invalid_email"),
        (8, "sex", "invalid_sex"),
        (9, f"components.{rows[9]['components'][0]['id']}", "unknown_component"),
        (9, f"components.{ids['行业']}", "required"),
        (10, "components", "invalid_type"),
        (11, "sub_user_id", "sub_user_forbidden"),
    }
    assert all({"row", "field", "value", "reason"} == set(e) for e in result["errors"])

    listed = (await client.get(f"{base}/get_customer", headers=headers)).json()
    assert sorted(r["phone"] for r in listed["data"]) == ["13800000001", "13800000002"]

    # Against the pool: the same phones again are duplicates, never stored twice.
    again = await _submit(client, headers, base, [row("13800000001"), row("13800000002")])
    await run_jobs(db, settings)
    second = (await client.get(f"{base}/identification/{again}", headers=headers)).json()["data"]
    assert (second["data"]["created"], second["data"]["duplicates"]) == (0, 2)
    listed = (await client.get(f"{base}/get_customer", headers=headers)).json()
    assert listed["meta"]["total"] == 2


async def test_sub_user_rows_and_filter(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    sub = await client.post(f"{base}/subset_users", json={"name": "子账户"}, headers=agent.headers)
    sub_id = sub.json()["data"]["id"]
    rows = [{"phone": "13900000001", "sub_user_id": sub_id}, {"phone": "13900000002"}]
    await _submit(client, agent.headers, base, rows)
    await run_jobs(db, settings)
    mine = await client.get(
        f"{base}/get_customer", params={"sub_user_id": sub_id}, headers=agent.headers
    )
    assert [r["phone"] for r in mine.json()["data"]] == ["13900000001"]
    assert mine.json()["data"][0]["sub_user_id"] == sub_id


async def test_more_than_200_rows_is_413(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    rows = [{"phone": f"139{i:08d}"} for i in range(201)]
    response = await client.post(
        f"/agent-api/user/{user.id}/async_customer", json={"data": rows}, headers=agent.headers
    )
    body = assert_error(response, 413, "too_many_rows")
    assert "200" in body["message"] and "201" in body["message"]
    batches = await client.get(f"/agent-api/user/{user.id}/batches", headers=agent.headers)
    assert batches.json()["meta"]["total"] == 0


async def test_envelope_shape_is_checked_up_front(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    url = f"/agent-api/user/{user.id}/async_customer"
    for body, field in (({}, "data"), ({"data": []}, "data"), ({"data": "x"}, "data")):
        response = await client.post(url, json=body, headers=agent.headers)
        assert field in assert_error(response, 422, "validation_failed")["errors"]


async def test_identification_and_batches(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    first = await _submit(client, agent.headers, base, [{"phone": "13900000001"}])
    await run_jobs(db, settings)
    second = await _submit(client, agent.headers, base, [{"phone": "13900000002"}])

    listed = await client.get(f"{base}/batches", headers=agent.headers)
    assert [b["unique_id"] for b in listed.json()["data"]] == [second, first]
    queued = await client.get(f"{base}/batches", params={"state": "queued"}, headers=agent.headers)
    assert [b["unique_id"] for b in queued.json()["data"]] == [second]
    typed = await client.get(
        f"{base}/batches", params={"type": "api_customer_to_task"}, headers=agent.headers
    )
    assert typed.json()["data"] == []
    # The filters and the page in a GET JSON body, as the other lists with filters take them.
    in_body = await client.request(
        "GET", f"{base}/batches", json={"state": "succeeded", "per_page": 1}, headers=agent.headers
    )
    assert [b["unique_id"] for b in in_body.json()["data"]] == [first]
    assert in_body.json()["meta"]["per_page"] == 1

    missing = await client.get(f"{base}/identification/{uuid.uuid4()}", headers=agent.headers)
    assert_error(missing, 404, "batch_not_found")
    other = await make_user(db, agent, "另一个主账号")
    elsewhere = await client.get(
        f"/agent-api/user/{other.id}/identification/{first}", headers=agent.headers
    )
    assert_error(elsewhere, 404, "batch_not_found")
    stranger = await make_agent(db, "代理B")
    forbidden = await client.get(f"{base}/identification/{first}", headers=stranger.headers)
    assert_error(forbidden, 403, "user_forbidden")


async def test_a_row_may_state_the_carrier_of_a_ported_number(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    rows = [
        {"phone": "13012121212", "operator": 1},  # a Unicom block, ported to Telecom
        {"phone": "13012121213"},
        {"phone": "13012121214", "operator": 9},
    ]
    unique_id = await _submit(client, agent.headers, base, rows)
    await run_jobs(db, settings)
    done = (await client.get(f"{base}/identification/{unique_id}", headers=agent.headers)).json()
    assert [(e["row"], e["field"], e["reason"]) for e in done["data"]["data"]["errors"]] == [
        (2, "operator", "invalid_operator")
    ]
    listed = await client.get(f"{base}/get_customer", headers=agent.headers)
    carriers = {r["phone"]: (r["operator"], r["operator_name"]) for r in listed.json()["data"]}
    assert carriers == {"13012121212": (1, "电信"), "13012121213": (2, "联通")}


async def test_sometimes_required_lets_a_row_leave_the_component_out(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    """``sometimes|required`` as the platform's (Laravel's) rules mean it: a row that does not
    name the component passes; one that names it must give a value."""
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    created = await client.post(
        f"{base}/component",
        json={"name": "行业", "type": "text", "validate": ["sometimes", "required"]},
        headers=agent.headers,
    )
    component = created.json()["data"]["id"]
    rows = [
        {"phone": "13800000001"},  # 0 left out: stored
        {"phone": "13800000002", "components": [{"id": component, "value": "教育"}]},  # 1 stored
        {"phone": "13800000003", "components": [{"id": component, "value": ""}]},  # 2 empty
        {"phone": "13800000004", "components": [{"id": component, "value": None}]},  # 3 null
    ]
    unique_id = await _submit(client, agent.headers, base, rows)
    await run_jobs(db, settings)
    done = (await client.get(f"{base}/identification/{unique_id}", headers=agent.headers)).json()
    result = done["data"]["data"]
    assert (result["created"], result["rejected"]) == (2, 2)
    assert [(e["row"], e["field"], e["value"], e["reason"]) for e in result["errors"]] == [
        (2, f"components.{component}", "", "required"),
        (3, f"components.{component}", None, "required"),
    ]
