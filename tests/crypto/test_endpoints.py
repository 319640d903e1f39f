"""PUT/GET /agent-api/encryption and POST /agent-api/encryption/rotate through real HTTP."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from highseas.clock import from_wire, utcnow
from highseas.config import Settings
from highseas.crypto import cipher
from highseas.db import Database
from highseas.main import create_app
from highseas.models import EncryptionSetting
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import AgentWithToken, make_agent

URL = "/agent-api/encryption"


@pytest.fixture
async def agent(db: Database) -> AgentWithToken:
    return await make_agent(db)


async def _put(client: httpx.AsyncClient, agent: AgentWithToken, enabled: object) -> dict:
    response = await client.put(URL, json={"enabled": enabled}, headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "设置成功"
    return dict(response.json()["data"])


async def _get(client: httpx.AsyncClient, agent: AgentWithToken) -> dict:
    response = await client.get(URL, headers=agent.headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def test_off_by_default_with_no_key(client: httpx.AsyncClient, agent: AgentWithToken) -> None:
    assert await _get(client, agent) == {
        "enabled": False,
        "algorithm": "AES-256-GCM",
        "key": None,
        "previous_valid_until": None,
    }
    # Switching off what was never on makes no key.
    assert (await _put(client, agent, False))["key"] is None


async def test_enable_disable_and_the_key_is_kept(
    client: httpx.AsyncClient, agent: AgentWithToken
) -> None:
    on = await _put(client, agent, True)
    assert on["enabled"] is True and on["algorithm"] == "AES-256-GCM"
    key = on["key"]
    assert len(cipher.key_from_text(key)) == 32
    assert await _get(client, agent) == on
    assert await _put(client, agent, True) == on  # enabling again changes nothing

    off = await _put(client, agent, False)
    assert off == {**on, "enabled": False}
    assert await _get(client, agent) == off
    assert (await _put(client, agent, True))["key"] == key


async def test_each_agent_has_its_own_key(
    client: httpx.AsyncClient, db: Database, agent: AgentWithToken
) -> None:
    other = await make_agent(db, "代理B")
    first = await _put(client, agent, True)
    second = await _put(client, other, True)
    assert first["key"] != second["key"]
    assert (await _put(client, other, False))["enabled"] is False
    assert (await _get(client, agent))["enabled"] is True


async def test_the_key_is_stored_sealed(
    client: httpx.AsyncClient, db: Database, agent: AgentWithToken
) -> None:
    key = (await _put(client, agent, True))["key"]
    async with db.transaction() as session:
        stored = (await session.execute(select(EncryptionSetting))).scalar_one()
    assert stored.agent_id == uuid.UUID(agent.agent_id)
    assert stored.sealed_key.startswith("v1.")
    assert key not in stored.sealed_key
    assert cipher.key_from_text(key).hex() not in stored.sealed_key


async def test_rotate(client: httpx.AsyncClient, agent: AgentWithToken, settings: Settings) -> None:
    old = (await _put(client, agent, True))["key"]
    response = await client.post(f"{URL}/rotate", headers=agent.headers)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "密钥已更新"
    rotated = response.json()["data"]
    assert rotated["enabled"] is True and rotated["key"] != old
    assert len(cipher.key_from_text(rotated["key"])) == 32
    assert rotated["previous_valid_until"] is not None
    assert await _get(client, agent) == rotated
    # Disabling and enabling keeps the rotated key.
    await _put(client, agent, False)
    assert (await _put(client, agent, True))["key"] == rotated["key"]


async def test_rotate_before_the_first_enable_makes_a_key_and_leaves_it_off(
    client: httpx.AsyncClient, agent: AgentWithToken
) -> None:
    response = await client.post(f"{URL}/rotate", headers=agent.headers)
    made = response.json()["data"]
    assert made["enabled"] is False and made["previous_valid_until"] is None
    assert (await _put(client, agent, True))["key"] == made["key"]


async def test_needs_a_token(client: httpx.AsyncClient) -> None:
    for method, url, body in (
        ("GET", URL, None),
        ("PUT", URL, {"enabled": True}),
        ("POST", f"{URL}/rotate", None),
    ):
        assert_error(await client.request(method, url, json=body), 401, "token_missing")
        bad = {"Authorization": "Bearer hs_nope"}
        assert_error(
            await client.request(method, url, json=body, headers=bad), 401, "token_invalid"
        )


@pytest.mark.parametrize("body", [{}, {"enabled": "maybe"}, {"enabled": None}, {"enabled": [True]}])
async def test_enabled_must_be_a_boolean(
    client: httpx.AsyncClient, agent: AgentWithToken, body: dict
) -> None:
    response = await client.put(URL, json=body, headers=agent.headers)
    assert "enabled" in assert_error(response, 422, "validation_failed")["errors"]


async def test_a_changed_server_key_makes_the_key_unreadable_until_rotated(
    client: httpx.AsyncClient, db: Database, agent: AgentWithToken, settings: Settings
) -> None:
    await _put(client, agent, True)
    moved = settings.model_copy(
        update={"secret_key": "another server key, long enough: 0123456789"}
    )
    transport = httpx.ASGITransport(app=create_app(moved, database=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        assert_error(await other.get(URL, headers=agent.headers), 500, "encryption_key_unreadable")
        rotated = (await other.post(f"{URL}/rotate", headers=agent.headers)).json()["data"]
        # The unreadable key cannot decrypt anything: no grace for it.
        assert rotated["enabled"] is True and rotated["previous_valid_until"] is None
        assert (await other.get(URL, headers=agent.headers)).json()["data"] == rotated


async def test_previous_valid_until_is_the_grace_after_the_rotation(
    client: httpx.AsyncClient, agent: AgentWithToken, settings: Settings
) -> None:
    await _put(client, agent, True)
    before = utcnow().replace(microsecond=0)
    rotated = (await client.post(f"{URL}/rotate", headers=agent.headers)).json()["data"]
    until = from_wire(rotated["previous_valid_until"])
    grace = timedelta(seconds=settings.encryption_grace)
    assert before + grace <= until <= before + grace + timedelta(seconds=5)
