from __future__ import annotations

import uuid

import httpx

from highseas.clock import to_wire, utcnow
from highseas.config import Settings
from highseas.db import Database
from tests.customers.pool import make_pool
from tests.fixtures.assertions import assert_error


async def _total(client: httpx.AsyncClient, base: str, headers: dict[str, str]) -> int:
    response = await client.get(f"{base}/get_customer", headers=headers)
    return int(response.json()["meta"]["total"])


async def test_delete_by_phone_and_range(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    url = f"{pool.base}/del_customer"
    nothing = await client.request("DELETE", url, json={}, headers=pool.headers)
    assert nothing.json()["data"] == {"deleted": 0}
    assert await _total(client, pool.base, pool.headers) == 60

    phones = [pool.rows[0]["phone"], "+86 " + pool.rows[1]["phone"], "13999999999"]
    by_phone = await client.request("DELETE", url, json={"phone": phones}, headers=pool.headers)
    assert by_phone.json()["data"] == {"deleted": 2}
    assert await _total(client, pool.base, pool.headers) == 58

    # Both given: AND. A range in the past with these phones deletes nothing.
    past = ["2020-01-01 00:00:00", "2020-01-02 00:00:00"]
    both = await client.request(
        "DELETE",
        url,
        json={"phone": [pool.rows[2]["phone"]], "created_at": past},
        headers=pool.headers,
    )
    assert both.json()["data"] == {"deleted": 0}

    everything = ["2020-01-01 00:00:00", to_wire(utcnow())]
    by_range = await client.request(
        "DELETE", url, json={"created_at": everything}, headers=pool.headers
    )
    assert by_range.json()["data"] == {"deleted": 58}
    assert await _total(client, pool.base, pool.headers) == 0


async def test_delete_rejections(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    url = f"{pool.base}/del_customer"
    too_many = await client.request(
        "DELETE", url, json={"phone": [f"139{i:08d}" for i in range(101)]}, headers=pool.headers
    )
    assert "phone" in assert_error(too_many, 422, "validation_failed")["errors"]
    bad_phone = await client.request("DELETE", url, json={"phone": ["123"]}, headers=pool.headers)
    assert "phone.0" in assert_error(bad_phone, 422, "invalid_phone")["errors"]
    bad_range = await client.request(
        "DELETE", url, json={"created_at": ["2021-01-01"]}, headers=pool.headers
    )
    assert "created_at" in assert_error(bad_range, 422, "validation_failed")["errors"]
    assert await _total(client, pool.base, pool.headers) == 60


async def test_detail_404_and_isolation(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    pool = await make_pool(client, db, settings)
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        response = await client.get(f"{pool.base}/customer/detail/{missing}", headers=pool.headers)
        assert_error(response, 404, "customer_not_found")
    row = (await client.get(f"{pool.base}/get_customer", headers=pool.headers)).json()["data"][0]
    # Another user of the same agent does not see this user's customer.
    other = await client.post("/agent-api/user", json={"name": "另一个"}, headers=pool.headers)
    other_base = f"/agent-api/user/{other.json()['data']['id']}"
    hidden = await client.get(f"{other_base}/customer/detail/{row['id']}", headers=pool.headers)
    assert_error(hidden, 404, "customer_not_found")
    assert await _total(client, other_base, pool.headers) == 0
