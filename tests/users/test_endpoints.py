"""Main accounts and sub-accounts, and tenant isolation between agents."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from highseas.agents import service as agents
from highseas.db import Database
from highseas.errors import Forbidden
from highseas.models import AgentToken
from highseas.users import service as users
from highseas.users.schemas import AccountCreate
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent, make_user


async def test_create_and_list_users(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    created = await client.post(
        "/agent-api/user",
        json={"name": " 张三 ", "phone": "+86 130-1212-1212", "email": "z@example.cn"},
        headers=agent.headers,
    )
    assert created.status_code == 200
    body = created.json()
    assert body["message"] == "创建成功"
    user = body["data"]
    assert user["name"] == "张三" and user["agent_id"] == agent.agent_id
    uuid.UUID(user["id"])

    listed = await client.get("/agent-api/users", headers=agent.headers)
    assert listed.status_code == 200
    page = listed.json()
    assert [u["id"] for u in page["data"]] == [user["id"]]
    assert page["meta"] == {
        "has_pages": False,
        "total": 1,
        "last_page": 1,
        "current_page": 1,
        "per_page": 15,
    }


async def test_users_paginate(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    for i in range(5):
        await make_user(db, agent, f"u{i}")
    seen: list[str] = []
    for number in (1, 2, 3):
        response = await client.get(
            f"/agent-api/users?page={number}&per_page=2", headers=agent.headers
        )
        page = response.json()
        assert page["meta"]["total"] == 5 and page["meta"]["last_page"] == 3
        assert page["meta"]["has_pages"] is True and page["meta"]["current_page"] == number
        seen += [u["id"] for u in page["data"]]
    assert len(seen) == len(set(seen)) == 5


async def test_agents_see_only_their_own_users(client: httpx.AsyncClient, db: Database) -> None:
    mine, theirs = await make_agent(db, "A"), await make_agent(db, "B")
    await make_user(db, mine, "mine")
    await make_user(db, theirs, "theirs")
    response = await client.get("/agent-api/users", headers=mine.headers)
    assert [u["name"] for u in response.json()["data"]] == ["mine"]


async def test_sub_users(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    url = f"/agent-api/user/{user.id}/subset_users"
    created = await client.post(url, json={"name": "子账户1"}, headers=agent.headers)
    assert created.status_code == 200
    sub = created.json()["data"]
    assert sub["user_id"] == str(user.id) and sub["name"] == "子账户1"
    listed = await client.get(url, headers=agent.headers)
    assert [s["id"] for s in listed.json()["data"]] == [sub["id"]]
    assert listed.json()["meta"]["total"] == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_another_agents_user_is_403(
    client: httpx.AsyncClient, db: Database, method: str
) -> None:
    owner, intruder = await make_agent(db, "owner"), await make_agent(db, "intruder")
    user = await make_user(db, owner)
    for user_id in (str(user.id), str(uuid.uuid4()), "not-a-uuid"):
        response = await client.request(
            method,
            f"/agent-api/user/{user_id}/subset_users",
            json={"name": "x"},
            headers=intruder.headers,
        )
        assert_error(response, 403, "user_forbidden")
    # …and nothing was created under the owner's user.
    listed = await client.get(f"/agent-api/user/{user.id}/subset_users", headers=owner.headers)
    assert listed.json()["meta"]["total"] == 0


async def test_a_sub_account_id_is_not_a_main_account(
    client: httpx.AsyncClient, db: Database
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    async with db.transaction() as session:
        sub = await users.create_sub_user(session, user, AccountCreate(name="sub"))
    response = await client.get(f"/agent-api/user/{sub.id}/subset_users", headers=agent.headers)
    assert_error(response, 403, "user_forbidden")


async def test_owned_sub_user_checks_the_parent(db: Database) -> None:
    agent = await make_agent(db)
    user, other = await make_user(db, agent, "u1"), await make_user(db, agent, "u2")
    async with db.transaction() as session:
        sub = await users.create_sub_user(session, user, AccountCreate(name="s"))
    async with db.transaction() as session:
        assert (await users.owned_sub_user(session, user, str(sub.id))).id == sub.id
        for wrong_user, sub_id in ((other, str(sub.id)), (user, str(uuid.uuid4())), (user, "zzz")):
            with pytest.raises(Forbidden):
                await users.owned_sub_user(session, wrong_user, sub_id)


async def test_auth_comes_before_ownership(client: httpx.AsyncClient, db: Database) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    response = await client.get(f"/agent-api/user/{user.id}/subset_users")
    assert_error(response, 401, "token_missing")


async def test_a_users_resources_check_the_token_before_the_user(
    client: httpx.AsyncClient, db: Database
) -> None:
    """The token and the path's user are looked up together: every 401 of ``/token`` holds,
    for the agent's own user as for a stranger's or a malformed id."""
    agent = await make_agent(db)
    user = await make_user(db, agent)
    async with db.transaction() as session:
        expiring = await agents.issue_token(
            session, uuid.UUID(agent.agent_id), expires_in=timedelta(seconds=3600)
        )
        revoked = await agents.issue_token(session, uuid.UUID(agent.agent_id))
        await agents.revoke_token(session, revoked.token)
        record = await session.get(AgentToken, expiring.record.id)
        assert record is not None
        record.expires_at = record.created_at - timedelta(seconds=1)
    cases = {
        "token_missing": {},
        "token_invalid": {"Authorization": "Bearer hs_forged"},
        "token_revoked": {"Authorization": f"Bearer {revoked.token}"},
        "token_expired": {"Authorization": f"Bearer {expiring.token}"},
    }
    for reason, headers in cases.items():
        for user_id in (str(user.id), str(uuid.uuid4()), "not-a-uuid"):
            response = await client.get(f"/agent-api/user/{user_id}/subset_users", headers=headers)
            assert_error(response, 401, reason)
    ok = await client.get(f"/agent-api/user/{user.id}/subset_users", headers=agent.headers)
    assert ok.status_code == 200
