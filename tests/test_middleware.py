"""Request ids, the body limit and the last-resort 500, on every response."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from highseas.config import Settings
from highseas.db import Database
from highseas.main import create_app
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent


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
