"""Interface encryption (contract §6) on the pool: get_customer, customer/detail,
async_customer and del_customer, through real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from highseas.config import Settings
from highseas.crypto import cipher
from highseas.db import Database
from highseas.main import create_app
from tests.customers.pool import Pool, make_pool
from tests.fixtures.assertions import assert_error
from tests.fixtures.encryption import enable_encryption, garbled
from tests.fixtures.factories import make_agent, make_user, run_jobs


async def _customers(
    client: httpx.AsyncClient, pool: Pool, body: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await client.post(f"{pool.base}/get_customer", json=body, headers=pool.headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


async def test_get_customer_with_the_flag_takes_and_returns_cipher_text(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    key = await enable_encryption(client, pool.headers)
    wanted = pool.rows[7]["phone"]
    [row] = await _customers(
        client, pool, {"phone": cipher.encrypt(key, wanted), "encryption": True}
    )
    assert row["phone"] != wanted and cipher.decrypt(key, row["phone"]) == wanted
    assert row["company"] == pool.rows[7]["company"]  # only phones are encrypted

    page = await _customers(client, pool, {"encryption": True, "per_page": 100})
    assert sorted(cipher.decrypt(key, r["phone"]) for r in page) == sorted(
        r["phone"] for r in pool.rows
    )
    # By query string too.
    response = await client.get(
        f"{pool.base}/get_customer",
        params={"phone": cipher.encrypt(key, wanted), "encryption": "true"},
        headers=pool.headers,
    )
    assert [cipher.decrypt(key, r["phone"]) for r in response.json()["data"]] == [wanted]


async def test_get_customer_without_the_flag_or_with_encryption_off_is_plain(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    wanted = pool.rows[3]["phone"]
    # Off: the flag is ignored, the phone is plain text.
    [row] = await _customers(client, pool, {"phone": wanted, "encryption": True})
    assert row["phone"] == wanted
    await enable_encryption(client, pool.headers)
    [row] = await _customers(client, pool, {"phone": wanted})
    assert row["phone"] == wanted


async def test_get_customer_with_an_undecryptable_phone_is_422(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    key = await enable_encryption(client, pool.headers)
    token = garbled(cipher.encrypt(key, pool.rows[3]["phone"]))
    response = await client.post(
        f"{pool.base}/get_customer",
        json={"phone": token, "encryption": True},
        headers=pool.headers,
    )
    error = assert_error(response, 422, "undecryptable")
    assert list(error["errors"]) == ["phone"]


async def test_the_previous_key_decrypts_for_the_grace_period(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    old = await enable_encryption(client, pool.headers)
    rotated = await client.post("/agent-api/encryption/rotate", headers=pool.headers)
    new = cipher.key_from_text(rotated.json()["data"]["key"])
    wanted = pool.rows[5]["phone"]
    by_old = {"phone": cipher.encrypt(old, wanted), "encryption": True}
    by_new = {"phone": cipher.encrypt(new, wanted), "encryption": True}
    [row] = await _customers(client, pool, by_old)
    # Outputs use the new key at once.
    assert cipher.decrypt(new, row["phone"]) == wanted

    # The same database and server key, with no grace: the previous key no longer decrypts.
    ended = settings.model_copy(update={"encryption_grace": 0})
    transport = httpx.ASGITransport(app=create_app(ended, database=db))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        response = await other.post(f"{pool.base}/get_customer", json=by_old, headers=pool.headers)
        assert_error(response, 422, "undecryptable")
        response = await other.post(f"{pool.base}/get_customer", json=by_new, headers=pool.headers)
        assert response.json()["meta"]["total"] == 1

    # Only the latest previous key is kept: a second rotation ends the first key's grace.
    await client.post("/agent-api/encryption/rotate", headers=pool.headers)
    response = await client.post(f"{pool.base}/get_customer", json=by_old, headers=pool.headers)
    assert_error(response, 422, "undecryptable")
    assert len(await _customers(client, pool, by_new)) == 1


async def test_customer_detail_takes_the_flag_as_an_extension(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    key = await enable_encryption(client, pool.headers)
    [row] = await _customers(client, pool, {"phone": pool.rows[0]["phone"]})
    url = f"{pool.base}/customer/detail/{row['id']}"
    plain = await client.get(url, headers=pool.headers)
    assert plain.json()["data"]["phone"] == pool.rows[0]["phone"]
    encrypted = await client.get(url, params={"encryption": "true"}, headers=pool.headers)
    assert cipher.decrypt(key, encrypted.json()["data"]["phone"]) == pool.rows[0]["phone"]


async def test_async_customer_rows_are_decrypted_one_by_one(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    key = await enable_encryption(client, agent.headers)

    def enc(text: str) -> str:
        return cipher.encrypt(key, text)

    rows = [
        {"phone": enc("13900000001"), "company": enc("腾讯"), "name": "张三"},  # 0 stored
        {"phone": enc("+86 139 0000 0002")},  # 1 stored, normalised after decryption
        {"phone": garbled(enc("13900000003")), "company": enc("百度")},  # 2 phone undecryptable
        {"phone": enc("13900000004"), "company": "阿里"},  # 3 company not cipher text
        {"phone": enc("13900000001")},  # 4 duplicate of row 0 (another token)
        {"phone": enc("1390000")},  # 5 decrypts to an invalid phone
        {"phone": 13900000006},  # 6 a number is not cipher text
        {"phone": enc("13900000007"), "company": enc("公" * 201)},  # 7 company too long
        # 8 phone undecryptable, and the rest of the row is checked too
        {"phone": garbled(enc("13900000008")), "email": "bad", "sex": 9},
    ]
    response = await client.post(
        f"{base}/async_customer", json={"data": rows, "encryption": True}, headers=agent.headers
    )
    unique_id = response.json()["data"]["unique_id"]
    await run_jobs(db, settings)
    done = await client.get(f"{base}/identification/{unique_id}", headers=agent.headers)
    result = done.json()["data"]["data"]
    assert (result["created"], result["duplicates"], result["rejected"]) == (2, 1, 6)
    errors = {(e["row"], e["field"], e["reason"]): e["value"] for e in result["errors"]}
    # Values are shown as sent: the result (stored, shown, called back) has no decrypted text.
    assert errors == {
        (2, "phone", "undecryptable"): rows[2]["phone"],
        (3, "company", "undecryptable"): "阿里",
        (4, "phone", "duplicate"): rows[4]["phone"],
        (5, "phone", "invalid_phone"): rows[5]["phone"],
        (6, "phone", "undecryptable"): 13900000006,
        (7, "company", "too_long"): rows[7]["company"],
        (8, "phone", "undecryptable"): rows[8]["phone"],
        (8, "email", "invalid_email"): "bad",
        (8, "sex", "invalid_sex"): 9,
    }
    for plain in ("13900000001", "13900000003", "13900000004", "13900000007", "腾讯", "公公"):
        assert plain not in done.text

    stored = (await client.get(f"{base}/get_customer", headers=agent.headers)).json()["data"]
    assert sorted((r["phone"], r["company"]) for r in stored) == [
        ("13900000001", "腾讯"),
        ("13900000002", None),
    ]


async def test_async_customer_records_the_effective_flag_at_acceptance(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"

    async def submit(rows: list[dict[str, Any]]) -> str:
        body = {"data": rows, "encryption": True}
        response = await client.post(f"{base}/async_customer", json=body, headers=agent.headers)
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["unique_id"])

    # Encryption off: the flag is ignored, the rows are plain text.
    plain = await submit([{"phone": "13900000001", "company": "腾讯"}])
    # On when accepted, off when the job runs: the rows are still cipher text.
    key = await enable_encryption(client, agent.headers)
    encrypted = await submit([{"phone": cipher.encrypt(key, "13900000002")}])
    await client.put("/agent-api/encryption", json={"enabled": False}, headers=agent.headers)
    await run_jobs(db, settings)
    for unique_id in (plain, encrypted):
        done = await client.get(f"{base}/identification/{unique_id}", headers=agent.headers)
        assert done.json()["data"]["data"]["created"] == 1, done.text
    stored = (await client.get(f"{base}/get_customer", headers=agent.headers)).json()["data"]
    assert sorted(r["phone"] for r in stored) == ["13900000001", "13900000002"]


async def test_del_customer_with_encrypted_phones(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    key = await enable_encryption(client, pool.headers)
    url = f"{pool.base}/del_customer"
    phones = [cipher.encrypt(key, pool.rows[i]["phone"]) for i in (0, 1)]
    bad = await client.request(
        "DELETE",
        url,
        json={"phone": [*phones, garbled(phones[0])], "encryption": True},
        headers=pool.headers,
    )
    assert list(assert_error(bad, 422, "undecryptable")["errors"]) == ["phone.2"]
    # Not encrypted: cipher text is an invalid phone.
    plain = await client.request("DELETE", url, json={"phone": phones}, headers=pool.headers)
    assert_error(plain, 422, "invalid_phone")
    deleted = await client.request(
        "DELETE", url, json={"phone": phones, "encryption": True}, headers=pool.headers
    )
    assert deleted.json()["data"] == {"deleted": 2}
    total = await client.get(f"{pool.base}/get_customer", headers=pool.headers)
    assert total.json()["meta"]["total"] == 58
