"""PUT|GET|DELETE /agent-api/callback/{type}, GET /agent-api/callback, secret rotation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from highseas.callbacks import service
from highseas.config import Settings
from highseas.db import Database
from highseas.main import create_app
from highseas.models import CallbackSecret, CallbackType
from tests.callbacks.addresses import REFUSED
from tests.callbacks.steps import configure
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import AgentWithToken, make_agent

TO_TASK = "/agent-api/callback/api_customer_to_task"
ASYNC = "/agent-api/callback/api_async_customer"
# Resolution is not needed to accept these: IP literals (allowed here, private or not).
URL_A = "http://127.0.0.1:9/a"
URL_B = "http://127.0.0.1:9/b"


@pytest.fixture
async def strict_client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app as deployed: private addresses refused."""
    app = create_app(settings.model_copy(update={"callback_allow_private": False}), database=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_put_answers_type_url_and_secret(
    client: httpx.AsyncClient, agent: AgentWithToken
) -> None:
    response = await client.put(TO_TASK, json={"url": URL_A}, headers=agent.headers)
    body = response.json()
    assert response.status_code == 200, body
    assert (body["code"], body["status"], body["message"]) == (200, "success", "设置成功")
    data = body["data"]
    assert (data["type"], data["url"]) == ("api_customer_to_task", URL_A)
    assert data["secret"].startswith("whsec_")
    assert len(data["created_at"]) == len("2026-01-01 00:00:00")


async def test_one_secret_per_agent_kept_across_url_changes(
    client: httpx.AsyncClient, db: Database, agent: AgentWithToken
) -> None:
    first = await configure(client, agent, URL_A)
    changed = await configure(client, agent, URL_B)
    other_type = await configure(client, agent, URL_A, CallbackType.API_ASYNC_CUSTOMER)
    assert first["secret"] == changed["secret"] == other_type["secret"]
    assert changed["url"] == URL_B
    other_agent = await make_agent(db, "代理B")
    assert (await configure(client, other_agent, URL_A))["secret"] != first["secret"]


async def test_the_secret_is_sealed_at_rest(
    client: httpx.AsyncClient, db: Database, agent: AgentWithToken
) -> None:
    secret = (await configure(client, agent, URL_A))["secret"]
    async with db.transaction() as session:
        stored = (await session.scalars(select(CallbackSecret))).one()
    assert secret not in stored.sealed
    assert secret.removeprefix("whsec_") not in stored.sealed


async def test_list_and_get(client: httpx.AsyncClient, agent: AgentWithToken) -> None:
    empty = await client.get("/agent-api/callback", headers=agent.headers)
    assert empty.json()["data"] == []
    assert empty.json()["meta"]["total"] == 0
    secret = (await configure(client, agent, URL_A))["secret"]
    await configure(client, agent, URL_B, CallbackType.API_ASYNC_CUSTOMER)

    listed = (await client.get("/agent-api/callback", headers=agent.headers)).json()
    rows = {row["type"]: row for row in listed["data"]}
    assert {t: r["url"] for t, r in rows.items()} == {
        "api_customer_to_task": URL_A,
        "api_async_customer": URL_B,
    }
    assert {r["secret"] for r in rows.values()} == {secret}
    assert listed["meta"]["total"] == 2

    one = await client.get(ASYNC, headers=agent.headers)
    assert one.json()["data"]["url"] == URL_B


async def test_delete_keeps_the_secret(client: httpx.AsyncClient, agent: AgentWithToken) -> None:
    secret = (await configure(client, agent, URL_A))["secret"]
    deleted = await client.delete(TO_TASK, headers=agent.headers)
    assert deleted.status_code == 200
    assert deleted.json()["message"] == "删除成功"
    assert deleted.json()["data"] == {"type": "api_customer_to_task", "url": URL_A}
    assert_error(await client.get(TO_TASK, headers=agent.headers), 404, "callback_not_found")
    assert_error(await client.delete(TO_TASK, headers=agent.headers), 404, "callback_not_found")
    assert (await configure(client, agent, URL_B))["secret"] == secret


async def test_agents_see_only_their_own(client: httpx.AsyncClient, db: Database) -> None:
    first, second = await make_agent(db, "甲"), await make_agent(db, "乙")
    await configure(client, first, URL_A)
    listed = await client.get("/agent-api/callback", headers=second.headers)
    assert listed.json()["data"] == []
    assert_error(await client.get(TO_TASK, headers=second.headers), 404, "callback_not_found")


async def test_rotate_replaces_the_secret(client: httpx.AsyncClient, agent: AgentWithToken) -> None:
    before = (await configure(client, agent, URL_A))["secret"]
    rotated = await client.post("/agent-api/callback/secret/rotate", headers=agent.headers)
    assert rotated.status_code == 200
    data = rotated.json()["data"]
    assert data["secret"].startswith("whsec_") and data["secret"] != before
    assert data["previous_valid_until"] is not None
    assert (await client.get(TO_TASK, headers=agent.headers)).json()["data"]["secret"] == data[
        "secret"
    ]


async def test_rotate_before_any_callback_creates_the_secret(
    client: httpx.AsyncClient, agent: AgentWithToken
) -> None:
    rotated = await client.post("/agent-api/callback/secret/rotate", headers=agent.headers)
    data = rotated.json()["data"]
    assert data["previous_valid_until"] is None
    assert (await configure(client, agent, URL_A))["secret"] == data["secret"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", TO_TASK),
        ("GET", "/agent-api/callback"),
        ("GET", TO_TASK),
        ("DELETE", TO_TASK),
        ("POST", "/agent-api/callback/secret/rotate"),
    ],
)
async def test_a_token_is_required(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path, json={"url": URL_A})
    assert_error(response, 401, "token_missing")


async def test_an_unknown_type_is_422_naming_the_field(
    client: httpx.AsyncClient, agent: AgentWithToken
) -> None:
    for method in ("PUT", "GET", "DELETE"):
        response = await client.request(
            method, "/agent-api/callback/api_other", json={"url": URL_A}, headers=agent.headers
        )
        body = assert_error(response, 422, "validation_failed")
        assert "type" in body["errors"]
        assert "type" in str(body["message"]) and "api_other" in str(body["message"])


@pytest.mark.parametrize("body", [{}, {"url": ""}, {"url": 5}, {"url": "http://x/" + "a" * 2048}])
async def test_a_missing_or_malformed_url_is_422(
    client: httpx.AsyncClient, agent: AgentWithToken, body: dict[str, object]
) -> None:
    response = await client.put(TO_TASK, json=body, headers=agent.headers)
    assert "url" in assert_error(response, 422, "validation_failed")["errors"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "example.com/hook", "http:///hook", "javascript:alert(1)"]
)
async def test_not_an_http_url_is_422(
    client: httpx.AsyncClient, agent: AgentWithToken, url: str
) -> None:
    body = assert_error(
        await client.put(TO_TASK, json={"url": url}, headers=agent.headers),
        422,
        "callback_url_invalid",
    )
    assert body["errors"]["url"] and url in str(body["message"])


async def test_an_unresolvable_host_is_422(
    client: httpx.AsyncClient, agent: AgentWithToken
) -> None:
    response = await client.put(
        TO_TASK, json={"url": "https://no-such-host.invalid/hook"}, headers=agent.headers
    )
    assert_error(response, 422, "callback_url_unresolvable")


@pytest.mark.parametrize(("address", "label"), REFUSED)
async def test_every_refused_address_class_is_422(
    strict_client: httpx.AsyncClient, agent: AgentWithToken, address: str, label: str
) -> None:
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:8080/hook"
    response = await strict_client.put(TO_TASK, json={"url": url}, headers=agent.headers)
    body = assert_error(response, 422, "callback_url_forbidden")
    assert body["errors"]["url"]
    assert "url" in str(body["message"]) and url in str(body["message"])
    assert label in str(body["message"])


async def test_localhost_by_name_is_refused(
    strict_client: httpx.AsyncClient, agent: AgentWithToken
) -> None:
    response = await strict_client.put(
        TO_TASK, json={"url": "http://localhost:8080/hook"}, headers=agent.headers
    )
    assert_error(response, 422, "callback_url_forbidden")
    assert (await strict_client.get("/agent-api/callback", headers=agent.headers)).json()[
        "data"
    ] == []


async def test_is_configured(
    client: httpx.AsyncClient, db: Database, agent: AgentWithToken
) -> None:
    agent_id = uuid.UUID(agent.agent_id)
    refused = service.not_configured(CallbackType.API_CUSTOMER_TO_TASK)
    assert refused.reason == "callback_not_configured"
    assert "PUT /agent-api/callback/api_customer_to_task" in refused.message
    async with db.transaction() as session:
        assert not await service.is_configured(session, agent_id, CallbackType.API_CUSTOMER_TO_TASK)
    await configure(client, agent, URL_A)
    async with db.transaction() as session:
        assert await service.is_configured(session, agent_id, CallbackType.API_CUSTOMER_TO_TASK)
        assert not await service.is_configured(session, agent_id, CallbackType.API_ASYNC_CUSTOMER)


async def test_a_changed_server_key_needs_a_rotation(
    client: httpx.AsyncClient, settings: Settings, db: Database, agent: AgentWithToken
) -> None:
    await configure(client, agent, URL_A)
    rekeyed = create_app(settings.model_copy(update={"secret_key": "n" * 40}), database=db)
    transport = httpx.ASGITransport(app=rekeyed)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        response = await other.get(TO_TASK, headers=agent.headers)
        assert_error(response, 500, "callback_secret_unreadable")
        rotated = await other.post("/agent-api/callback/secret/rotate", headers=agent.headers)
        assert rotated.json()["data"]["previous_valid_until"] is None
        after = await other.get(TO_TASK, headers=agent.headers)
        assert after.json()["data"]["secret"] == rotated.json()["data"]["secret"]
