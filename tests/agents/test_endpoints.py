"""GET /agent-api/token and Bearer authentication."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from highseas.agents import service as agents
from highseas.agents.tokens import hash_token
from highseas.db import Database
from highseas.models import AgentToken
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent


async def test_valid_token(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db, "甲代理")
    response = await client.get("/agent-api/token", headers=agent.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 200 and body["status"] == "success" and body["message"]
    data = body["data"]
    assert data["agent_id"] == agent.agent_id
    assert data["agent_name"] == "甲代理"
    assert data["expires_at"] is None
    assert data["token_prefix"] == agent.token[:10]
    assert len(data["created_at"]) == len("2026-01-01 00:00:00")


async def test_missing_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/agent-api/token")
    assert_error(response, 401, "token_missing")
    assert response.headers["www-authenticate"] == "Bearer"
    basic = await client.get("/agent-api/token", headers={"Authorization": "Basic dTpw"})
    assert_error(basic, 401, "token_missing")


async def test_unknown_token_is_401(client: httpx.AsyncClient, db: Database) -> None:
    await make_agent(db)
    response = await client.get("/agent-api/token", headers={"Authorization": "Bearer hs_forged"})
    assert_error(response, 401, "token_invalid")


async def test_revoked_token_is_401(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    async with db.transaction() as session:
        await agents.revoke_token(session, agent.token)
    response = await client.get("/agent-api/token", headers=agent.headers)
    assert_error(response, 401, "token_revoked")


async def test_expired_token_is_401(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    async with db.transaction() as session:
        issued = await agents.issue_token(
            session, uuid.UUID(agent.agent_id), expires_in=timedelta(seconds=3600)
        )
    ok = await client.get("/agent-api/token", headers={"Authorization": f"Bearer {issued.token}"})
    assert ok.status_code == 200 and ok.json()["data"]["expires_at"] is not None
    async with db.transaction() as session:
        record = await session.get(AgentToken, issued.record.id)
        assert record is not None
        record.expires_at = record.created_at - timedelta(seconds=1)
    response = await client.get(
        "/agent-api/token", headers={"Authorization": f"Bearer {issued.token}"}
    )
    assert_error(response, 401, "token_expired")


async def test_tokens_are_stored_hashed(db: Database) -> None:
    agent = await make_agent(db)
    async with db.transaction() as session:
        record = (await session.execute(AgentToken.__table__.select())).one()
    assert record.token_hash == hash_token(agent.token)
    assert agent.token not in {str(v) for v in record}


async def test_a_second_token_works_and_revoking_one_keeps_the_other(
    client: httpx.AsyncClient, db: Database
) -> None:
    agent = await make_agent(db)
    async with db.transaction() as session:
        second = await agents.issue_token(session, uuid.UUID(agent.agent_id))
    async with db.transaction() as session:
        await agents.revoke_token(session, agent.token)
    response = await client.get(
        "/agent-api/token", headers={"Authorization": f"Bearer {second.token}"}
    )
    assert response.status_code == 200
    assert response.json()["data"]["agent_id"] == agent.agent_id
