"""Every response the app can produce is in the contract §1 envelope, with a request id."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from highseas.config import Settings
from highseas.db import Database
from highseas.main import create_app
from tests.fixtures.factories import make_agent


def assert_error(response: httpx.Response, status: int, reason: str) -> dict[str, object]:
    body = response.json()
    assert response.status_code == status, body
    assert body["code"] == status
    assert body["status"] == "error"
    assert body["error"] == reason
    assert body["data"] == []
    assert isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/agent-api/nope")
    body = assert_error(response, 404, "not_found")
    assert "/agent-api/nope" in str(body["message"])


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/agent-api/token")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


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


async def test_a_non_json_content_type_is_a_clear_422(
    client: httpx.AsyncClient, db: Database
) -> None:
    agent = await make_agent(db)
    response = await client.post(
        "/agent-api/user",
        content=b'{"name": "x"}',
        headers={**agent.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
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


@pytest.fixture
def small_body_app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings.model_copy(update={"max_body_bytes": 1024}), database=db)


async def test_body_over_limit_is_413(small_body_app: FastAPI, db: Database) -> None:
    agent = await make_agent(db)
    transport = httpx.ASGITransport(app=small_body_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        declared = await client.post(
            "/agent-api/user", json={"name": "x" * 2000}, headers=agent.headers
        )
        assert_error(declared, 413, "payload_too_large")

        async def chunks():  # no Content-Length: the limit must hold while streaming
            for _ in range(4):
                yield b" " * 512

        streamed = await client.post(
            "/agent-api/user",
            content=chunks(),
            headers={**agent.headers, "Content-Type": "application/json"},
        )
        assert_error(streamed, 413, "payload_too_large")


async def test_unexpected_error_is_500_without_internals(app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom")
    body = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert len(str(body["request_id"])) >= 16


async def test_request_id_is_echoed_when_sane(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    response = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert response.headers["x-request-id"] != "bad id\twith junk"
    assert len(response.headers["x-request-id"]) == 32


async def test_probes_and_docs(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json()["code"] == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["data"] == {"database": "ok"}
    spec = await client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/agent-api/user/{user_id}/subset_users" in spec.json()["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_readyz_is_503_when_database_is_unreachable(settings: Settings, tmp_path) -> None:
    broken = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    app = create_app(broken)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    assert_error(response, 503, "database_unavailable")
    await app.state.db.dispose()
