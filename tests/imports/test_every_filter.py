"""Every filter kind of get_customer, imported into a task: the download holds exactly the
customers the filter selects (one filter engine for both endpoints)."""

from __future__ import annotations

import httpx

from highseas.config import Settings
from highseas.db import Database
from tests.customers.pool import make_pool
from tests.customers.test_filters_http import CASES
from tests.fixtures.receiver import Receiver
from tests.imports.scenario import callbacks_of, finish


async def test_each_filter_imports_exactly_its_customers(
    client: httpx.AsyncClient, db: Database, settings: Settings, receiver: Receiver
) -> None:
    pool = await make_pool(client, db, settings)
    await client.put(
        "/agent-api/callback/api_customer_to_task",
        json={"url": receiver.url()},
        headers=pool.headers,
    )
    expected: dict[str, set[str]] = {}
    for name, body, keep in CASES:
        if "email" in body(pool.components) or "company" in body(pool.components):
            continue  # get_customer's own extensions, not customer_to_task fields
        task = await client.post(f"{pool.base}/task", json={"name": name}, headers=pool.headers)
        url = f"{pool.base}/customer_to_task/{task.json()['data']['id']}"
        accepted = await client.request(
            "GET", url, json=body(pool.components), headers=pool.headers
        )
        assert accepted.status_code == 200, (name, accepted.text)
        expected[accepted.json()["data"]["unique_id"]] = {r["phone"] for r in pool.rows if keep(r)}
    await finish(db, settings)
    callbacks = {c["unique_id"]: c["data"] for c in callbacks_of(receiver)}
    assert set(callbacks) == set(expected)
    for unique_id, phones in expected.items():
        data = callbacks[unique_id]
        download = await client.get(data["url"].removeprefix("http://testserver"))
        assert set(download.json()["numbers"]) == phones, unique_id
        assert (data["matched"], data["imported"], data["duplicates"]) == (
            len(phones),
            len(phones),
            0,
        )
