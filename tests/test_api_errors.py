"""Validation errors, unknown routes and wrong methods, in the contract §1 envelope."""

from __future__ import annotations

import uuid

import httpx

from highseas.db import Database
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent, make_user


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/agent-api/nope")
    body = assert_error(response, 404, "not_found")
    assert "/agent-api/nope" in str(body["message"])


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/agent-api/token")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    """customer_to_task is served by GET and POST: two routes, one path."""
    path = f"/agent-api/user/{uuid.uuid4()}/customer_to_task/{uuid.uuid4()}"
    response = await client.put(path)
    body = assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"
    assert "GET, POST" in str(body["message"])


async def test_malformed_json_is_422_invalid_json(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    response = await client.post(
        "/agent-api/user",
        content=b'{"name": "x",',
        headers={**agent.headers, "Content-Type": "application/json"},
    )
    body = assert_error(response, 422, "invalid_json")
    assert body["errors"] == {"body": ["不是合法的 JSON"]}


async def test_json_without_content_type_is_accepted(
    client: httpx.AsyncClient, db: Database
) -> None:
    agent = await make_agent(db)
    response = await client.post(
        "/agent-api/user", content='{"name": "无类型"}'.encode(), headers=agent.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["name"] == "无类型"


async def test_a_body_is_json_whatever_its_content_type(
    client: httpx.AsyncClient, db: Database
) -> None:
    """One rule for every endpoint, body models and GET-with-body alike: a client's default
    form or text type does not matter; a body that is no JSON asks for JSON."""
    agent = await make_agent(db)
    form = {**agent.headers, "Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post("/agent-api/user", content=b'{"name": "x"}', headers=form)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["name"] == "x"
    user = await make_user(db, agent)
    text = {**agent.headers, "Content-Type": "text/plain"}
    listed = await client.request(
        "GET", f"/agent-api/user/{user.id}/get_customer", content=b'{"per_page": 1}', headers=text
    )
    assert listed.status_code == 200 and listed.json()["meta"]["per_page"] == 1
    # A UTF-8 byte order mark (some Windows clients write one) is not part of the JSON.
    marked = '\ufeff{"name": "有BOM"}'.encode()
    response = await client.post("/agent-api/user", content=marked, headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["name"] == "有BOM"

    response = await client.post("/agent-api/user", content=b"name=x", headers=form)
    body = assert_error(response, 422, "invalid_json")
    assert "application/json" in str(body["message"])


async def test_missing_field_names_the_field(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    response = await client.post("/agent-api/user", json={"email": "a@b.cn"}, headers=agent.headers)
    body = assert_error(response, 422, "validation_failed")
    assert "name" in str(body["message"])
    assert body["errors"] == {"name": ["为必填项"]}


async def test_wrong_type_names_field_and_value(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    response = await client.post(
        "/agent-api/user", json={"name": "ok", "email": "not-an-email"}, headers=agent.headers
    )
    body = assert_error(response, 422, "validation_failed")
    assert "email" in str(body["message"]) and "not-an-email" in str(body["message"])
    assert body["errors"] == {"email": ["不是合法的邮箱地址"]}

    response = await client.post("/agent-api/user", json={"name": 123}, headers=agent.headers)
    body = assert_error(response, 422, "validation_failed")
    assert "name" in str(body["message"]) and "123" in str(body["message"])
    # The value as a JSON client wrote it, not as Python shows it.
    response = await client.post("/agent-api/user", json={"name": True}, headers=agent.headers)
    assert "（收到 true）" in str(assert_error(response, 422, "validation_failed")["message"])


async def test_body_that_is_not_an_object_is_422(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    response = await client.post("/agent-api/user", json=["name"], headers=agent.headers)
    assert_error(response, 422, "validation_failed")


async def test_several_bad_fields_are_all_listed(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    response = await client.post(
        "/agent-api/user", json={"name": "", "phone": "abc"}, headers=agent.headers
    )
    body = assert_error(response, 422, "validation_failed")
    assert set(body["errors"]) == {"name", "phone"}  # type: ignore[arg-type]


async def test_unknown_fields_are_ignored(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    response = await client.post(
        "/agent-api/user", json={"name": "甲", "platform_only_field": [1, 2]}, headers=agent.headers
    )
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "甲"


async def test_per_page_above_limit_is_422(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    response = await client.get("/agent-api/users?per_page=1001", headers=agent.headers)
    body = assert_error(response, 422, "validation_failed")
    assert "per_page" in body["errors"]  # type: ignore[operator]
    response = await client.get("/agent-api/users?page=0", headers=agent.headers)
    assert_error(response, 422, "validation_failed")
