from __future__ import annotations

import uuid

import httpx

from highseas.config import Settings
from highseas.db import Database
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent, make_user, run_jobs


async def _setup(db: Database) -> tuple[dict[str, str], str]:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    return agent.headers, f"/agent-api/user/{user.id}"


async def test_create_list_update_delete(client: httpx.AsyncClient, db: Database) -> None:
    headers, base = await _setup(db)
    created = await client.post(
        f"{base}/component",
        json={"name": "公司", "type": "text", "sort": 2, "validate": ["required", "required"]},
        headers=headers,
    )
    assert created.status_code == 200, created.text
    company = created.json()["data"]
    assert company["name"] == "公司" and company["type"] == "text"
    assert company["validate"] == ["required"] and company["status"] == 1
    age = (
        await client.post(
            f"{base}/component", json={"name": "年龄", "type": "number", "sort": 1}, headers=headers
        )
    ).json()["data"]
    assert age["validate"] == []

    listed = (await client.get(f"{base}/customer/create", headers=headers)).json()["data"]
    assert [c["name"] for c in listed] == ["年龄", "公司"]  # by sort
    assert set(listed[0]) >= {"id", "name", "type", "sort", "validate", "status"}

    updated = await client.put(
        f"{base}/component/{age['id']}",
        json={"name": "年龄段", "status": 0, "validate": ["integer"]},
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    data = updated.json()["data"]
    assert (data["name"], data["status"], data["validate"], data["type"]) == (
        "年龄段",
        0,
        ["integer"],
        "number",
    )

    deleted = await client.request(
        "DELETE", f"{base}/component", json={"deletes": [age["id"], company["id"]]}, headers=headers
    )
    assert deleted.json()["data"] == {"deleted": 2}
    assert (await client.get(f"{base}/customer/create", headers=headers)).json()["data"] == []


async def test_rejections(client: httpx.AsyncClient, db: Database) -> None:
    headers, base = await _setup(db)
    first = await client.post(
        f"{base}/component", json={"name": "公司", "type": "text"}, headers=headers
    )
    component_id = first.json()["data"]["id"]
    same_name = await client.post(
        f"{base}/component", json={"name": "公司", "type": "number"}, headers=headers
    )
    body = assert_error(same_name, 422, "name_taken")
    assert "name" in body["errors"] and "公司" in body["message"]
    # Names are trimmed: a file's header " 公司 " must not name a second component.
    padded = await client.post(
        f"{base}/component", json={"name": " 公司 ", "type": "text"}, headers=headers
    )
    assert_error(padded, 422, "name_taken")
    blank = await client.post(
        f"{base}/component", json={"name": "  ", "type": "text"}, headers=headers
    )
    assert "name" in assert_error(blank, 422, "validation_failed")["errors"]
    renamed = await client.put(
        f"{base}/component/{component_id}", json={"name": " 客户公司\t"}, headers=headers
    )
    assert renamed.json()["data"]["name"] == "客户公司"
    await client.put(f"{base}/component/{component_id}", json={"name": "公司"}, headers=headers)

    bad_type = await client.post(
        f"{base}/component", json={"name": "x", "type": "color"}, headers=headers
    )
    assert "type" in assert_error(bad_type, 422, "validation_failed")["errors"]
    bad_rule = await client.post(
        f"{base}/component",
        json={"name": "y", "type": "text", "validate": ["email"]},
        headers=headers,
    )
    assert "validate.0" in assert_error(bad_rule, 422, "validation_failed")["errors"]

    unknown = await client.put(f"{base}/component/{uuid.uuid4()}", json={}, headers=headers)
    assert_error(unknown, 404, "component_not_found")
    not_a_uuid = await client.put(f"{base}/component/nope", json={}, headers=headers)
    assert_error(not_a_uuid, 404, "component_not_found")
    missing = await client.request(
        "DELETE", f"{base}/component", json={"deletes": [component_id, "nope"]}, headers=headers
    )
    assert "nope" in assert_error(missing, 404, "component_not_found")["message"]
    # Nothing was deleted by the failed request.
    listed = (await client.get(f"{base}/customer/create", headers=headers)).json()["data"]
    assert [c["id"] for c in listed] == [component_id]


async def test_type_is_fixed_once_values_exist(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    headers, base = await _setup(db)
    component = (
        await client.post(
            f"{base}/component", json={"name": "年龄", "type": "number"}, headers=headers
        )
    ).json()["data"]
    # No values yet: the type may change.
    retyped = await client.put(
        f"{base}/component/{component['id']}", json={"type": "text"}, headers=headers
    )
    assert retyped.json()["data"]["type"] == "text"
    await client.post(
        f"{base}/async_customer",
        json={
            "data": [
                {"phone": "13812345678", "components": [{"id": component["id"], "value": "3"}]}
            ]
        },
        headers=headers,
    )
    await run_jobs(db, settings)
    locked = await client.put(
        f"{base}/component/{component['id']}", json={"type": "number"}, headers=headers
    )
    assert_error(locked, 422, "component_type_locked")


async def test_other_agents_user_is_forbidden(client: httpx.AsyncClient, db: Database) -> None:
    _, base = await _setup(db)
    stranger = await make_agent(db, "代理B")
    response = await client.get(f"{base}/customer/create", headers=stranger.headers)
    assert_error(response, 403, "user_forbidden")
