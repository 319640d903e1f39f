"""Interface encryption on customer_to_task and its download (issue 6, contract §2, §3, §6)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from highseas.config import Settings
from highseas.crypto import cipher
from highseas.db import Database
from tests.fixtures.assertions import assert_error
from tests.fixtures.encryption import enable_encryption, garbled
from tests.fixtures.receiver import Receiver
from tests.imports.scenario import Scenario, callbacks_of, finish, make_scenario

ROWS: list[dict[str, Any]] = [
    {"phone": "13012121212", "公司": "腾讯"},
    {"phone": "13312121212", "公司": "阿里"},
    {"phone": "13812121212", "公司": "腾讯"},
]
WANTED = "13312121212"


@pytest.fixture
async def scenario(
    client: httpx.AsyncClient, db: Database, receiver: Receiver, tmp_path: Path
) -> Scenario:
    return await make_scenario(client, db, receiver, tmp_path, ROWS)


async def _accept(client: httpx.AsyncClient, scenario: Scenario, body: dict[str, Any]) -> str:
    response = await client.post(scenario.url(), json=body, headers=scenario.agent.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["unique_id"])


async def _download(client: httpx.AsyncClient, receiver: Receiver, unique_id: str) -> list[str]:
    [callback] = [c for c in callbacks_of(receiver) if c["unique_id"] == unique_id]
    response = await client.get(callback["data"]["url"].removeprefix("http://testserver"))
    assert response.status_code == 200, response.text
    numbers: list[str] = response.json()["numbers"]
    return numbers


async def _batches(client: httpx.AsyncClient, scenario: Scenario) -> int:
    response = await client.get(f"{scenario.base}/batches", headers=scenario.agent.headers)
    return int(response.json()["meta"]["total"])


async def test_an_encrypted_phone_imports_exactly_that_number_and_the_download_is_cipher_text(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    scenario: Scenario,
) -> None:
    key = await enable_encryption(client, scenario.agent.headers)
    token = cipher.encrypt(key, WANTED)
    unique_id = await _accept(client, scenario, {"phone": token, "encryption": True})
    await finish(db, settings)
    [callback] = callbacks_of(receiver)
    assert (callback["data"]["matched"], callback["data"]["imported"]) == (1, 1)
    [number] = await _download(client, receiver, unique_id)
    assert number != WANTED and number != token  # cipher text, with a fresh nonce
    assert cipher.decrypt(key, number) == WANTED
    # The task holds the plain number; the list shows it encrypted only when asked to.
    numbers_url = f"{scenario.base}/task/{scenario.task_id}/number"
    plain = await client.get(numbers_url, headers=scenario.agent.headers)
    assert [n["phone"] for n in plain.json()["data"]] == [WANTED]


async def test_a_whole_pool_download_of_an_encrypted_batch_is_all_cipher_text(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    scenario: Scenario,
) -> None:
    key = await enable_encryption(client, scenario.agent.headers)
    unique_id = await _accept(client, scenario, {"encryption": True})
    await finish(db, settings)
    numbers = await _download(client, receiver, unique_id)
    assert [cipher.decrypt(key, n) for n in numbers] == [r["phone"] for r in ROWS]
    # Switching encryption off later does not change what this batch's download holds.
    await client.put(
        "/agent-api/encryption", json={"enabled": False}, headers=scenario.agent.headers
    )
    again = await _download(client, receiver, unique_id)
    assert [cipher.decrypt(key, n) for n in again] == [r["phone"] for r in ROWS]


async def test_the_query_string_transport(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    scenario: Scenario,
) -> None:
    key = await enable_encryption(client, scenario.agent.headers)
    response = await client.get(
        scenario.url(),
        params={"phone": cipher.encrypt(key, WANTED), "encryption": "true"},
        headers=scenario.agent.headers,
    )
    assert response.status_code == 200, response.text
    await finish(db, settings)
    [number] = await _download(client, receiver, response.json()["data"]["unique_id"])
    assert cipher.decrypt(key, number) == WANTED


async def test_cipher_text_that_does_not_decrypt_is_422_naming_phone(
    client: httpx.AsyncClient, scenario: Scenario
) -> None:
    key = await enable_encryption(client, scenario.agent.headers)
    for phone in (
        garbled(cipher.encrypt(key, WANTED)),
        cipher.encrypt(cipher.new_key(), WANTED),  # another key
        WANTED,  # plain text although the request says encrypted
        "not base64!",
    ):
        response = await client.post(
            scenario.url(),
            json={"phone": phone, "encryption": True},
            headers=scenario.agent.headers,
        )
        error = assert_error(response, 422, "undecryptable")
        assert list(error["errors"]) == ["phone"] and "phone" in error["message"]
    assert await _batches(client, scenario) == 0


async def test_cipher_text_of_an_invalid_phone_is_422_without_the_plain_text(
    client: httpx.AsyncClient, scenario: Scenario
) -> None:
    key = await enable_encryption(client, scenario.agent.headers)
    token = cipher.encrypt(key, "1331212")
    response = await client.post(
        scenario.url(), json={"phone": token, "encryption": True}, headers=scenario.agent.headers
    )
    error = assert_error(response, 422, "invalid_phone")
    assert "phone" in error["errors"] and token in error["message"]
    assert "1331212" not in response.text


async def test_without_the_flag_plain_text_works_as_before(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    scenario: Scenario,
) -> None:
    await enable_encryption(client, scenario.agent.headers)
    unique_id = await _accept(client, scenario, {"phone": "+86 133 1212 1212"})
    await finish(db, settings)
    assert await _download(client, receiver, unique_id) == [WANTED]


async def test_the_flag_is_ignored_while_the_agent_has_encryption_off(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    scenario: Scenario,
) -> None:
    never = await _accept(client, scenario, {"phone": WANTED, "encryption": True})
    key = await enable_encryption(client, scenario.agent.headers)
    await client.put(
        "/agent-api/encryption", json={"enabled": False}, headers=scenario.agent.headers
    )
    switched_off = await _accept(client, scenario, {"encryption": True})
    # Cipher text sent while encryption is off is taken as a (invalid) plain phone.
    token = cipher.encrypt(key, WANTED)
    response = await client.post(
        scenario.url(), json={"phone": token, "encryption": True}, headers=scenario.agent.headers
    )
    assert_error(response, 422, "invalid_phone")
    await finish(db, settings)
    assert await _download(client, receiver, never) == [WANTED]
    assert await _download(client, receiver, switched_off) == [
        r["phone"] for r in ROWS if r["phone"] != WANTED
    ]


async def test_idempotency_compares_the_plain_request(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    scenario: Scenario,
) -> None:
    key = await enable_encryption(client, scenario.agent.headers)
    headers = {**scenario.agent.headers, "Idempotency-Key": "enc-1"}
    bodies = [{"phone": cipher.encrypt(key, WANTED), "encryption": True} for _ in range(2)]
    first = await client.post(scenario.url(), json=bodies[0], headers=headers)
    # Another token of the same number is the same request…
    same = await client.post(scenario.url(), json=bodies[1], headers=headers)
    assert same.json()["data"]["unique_id"] == first.json()["data"]["unique_id"]
    # …the same number in plain text is not: its download would be plain.
    plain = await client.post(scenario.url(), json={"phone": WANTED}, headers=headers)
    assert_error(plain, 409, "idempotency_conflict")
    await finish(db, settings)
    assert len(callbacks_of(receiver)) == 1


async def test_nothing_decrypted_is_logged(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    scenario: Scenario,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = await enable_encryption(client, scenario.agent.headers)
    # As `highseas serve` logs by default (INFO), and everything of highseas itself.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="highseas")
    await _accept(client, scenario, {"phone": cipher.encrypt(key, WANTED), "encryption": True})
    invalid = {"phone": cipher.encrypt(key, "1331212"), "encryption": True}
    await client.post(scenario.url(), json=invalid, headers=scenario.agent.headers)
    await client.post(
        f"{scenario.base}/get_customer",
        json={"phone": cipher.encrypt(key, WANTED), "encryption": True},
        headers=scenario.agent.headers,
    )
    await finish(db, settings)
    assert caplog.records  # the request lines, the jobs
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert WANTED not in logged and "1331212" not in logged
