"""客户公海筛选进入任务 through real HTTP, with a real callback receiver."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from highseas.config import Settings
from highseas.db import Database
from tests.fixtures.assertions import assert_error
from tests.fixtures.receiver import Receiver
from tests.imports.scenario import Scenario, callbacks_of, finish, load_pool, make_scenario

# The seed page's example selects 13012121212 (a 130 block: Unicom by allocation, so the row
# states it was ported to Telecom), with the component value 腾讯, created in the window.
SEED_ROWS: list[dict[str, Any]] = [
    {"phone": "13012121212", "operator": 1, "created_at": "2021-06-30 13:21:00", "公司": "腾讯"},
    # Each of these misses exactly one of the example's filters.
    {"phone": "13312121212", "created_at": "2021-06-30 13:22:00", "公司": "阿里"},
    {"phone": "13312121213", "created_at": "2021-07-01 09:00:00", "公司": "腾讯"},
    {"phone": "13812121212", "created_at": "2021-06-30 13:23:00", "公司": "腾讯"},
]


def seed_example(component_id: str) -> dict[str, Any]:
    return {
        "components": [{"id": component_id, "value": "腾讯"}],
        "phone": "13012121212",
        "created_at": ["2021-06-30 13:20:28", "2021-06-30 13:25:28"],
        "operator": [1],
    }


@pytest.fixture
async def seeded(
    client: httpx.AsyncClient, db: Database, receiver: Receiver, tmp_path: Path
) -> Scenario:
    return await make_scenario(client, db, receiver, tmp_path, SEED_ROWS)


async def _download(client: httpx.AsyncClient, url: str) -> list[str]:
    response = await client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    numbers: list[str] = response.json()["numbers"]
    return numbers


async def test_the_seed_example(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    seeded: Scenario,
) -> None:
    body = seed_example(seeded.components["公司"])
    response = await client.request("GET", seeded.url(), json=body, headers=seeded.agent.headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["code"] == 200 and answer["status"] == "success"
    assert answer["message"] == "号码导入任务信息请在回调中查收"
    unique_id = answer["data"]["unique_id"]
    assert uuid.UUID(unique_id)
    assert receiver.received == []  # nothing before the job runs

    await finish(db, settings)
    [callback] = callbacks_of(receiver)
    assert list(callback)[:6] == ["mode", "type", "unique_id", "user_id", "task_id", "status"]
    assert callback["mode"] == "batch" and callback["type"] == "api_customer_to_task"
    assert callback["unique_id"] == unique_id and callback["user_id"] == seeded.user_id
    assert callback["task_id"] == seeded.task_id and callback["status"] == "success"
    data = callback["data"]
    assert (data["matched"], data["imported"], data["duplicates"]) == (1, 1, 0)
    assert data["url"].startswith("http://testserver/agent-api/download-number?key=")
    assert await _download(client, data["url"]) == ["13012121212"]
    headers = receiver.received[0].headers
    assert headers["webhook-id"] and headers["webhook-signature"].startswith("v1,")

    numbers = await client.get(
        f"{seeded.base}/task/{seeded.task_id}/number", headers=seeded.agent.headers
    )
    assert [(n["phone"], n["unique_id"]) for n in numbers.json()["data"]] == [
        ("13012121212", unique_id)
    ]
    shown = await client.get(
        f"{seeded.base}/identification/{unique_id}", headers=seeded.agent.headers
    )
    view = shown.json()["data"]
    assert view["state"] == "succeeded" and view["status"] == "success"
    assert view["data"] == data and view["task_id"] == seeded.task_id
    assert view["delivery"]["state"] == "delivered"
    assert [a["status_code"] for a in view["delivery"]["attempts"]] == [200]

    # The same again adds nothing and counts the duplicate.
    again = await client.request("GET", seeded.url(), json=body, headers=seeded.agent.headers)
    await finish(db, settings)
    second = callbacks_of(receiver)[1]
    assert second["unique_id"] == again.json()["data"]["unique_id"] != unique_id
    assert (second["data"]["matched"], second["data"]["imported"]) == (1, 0)
    assert second["data"]["duplicates"] == 1
    assert await _download(client, second["data"]["url"]) == []


async def test_transports_agree_and_the_body_wins(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    seeded: Scenario,
) -> None:
    component = seeded.components["公司"]
    headers = seeded.agent.headers
    by_query = await client.get(
        seeded.url(),
        params={"components": f'[{{"id":"{component}","value":"腾讯"}}]', "operator": ["1", "3"]},
        headers=headers,
    )
    by_post = await client.post(
        seeded.url(),
        json={"components": [{"id": component, "value": "腾讯"}], "operator": [1, 3]},
        headers=headers,
    )
    body_wins = await client.request(
        "GET",
        seeded.url(),
        params={"operator": "2"},
        json={"components": [{"id": component, "value": "腾讯"}], "operator": [1, 3]},
        headers=headers,
    )
    for response in (by_query, by_post, body_wins):
        assert response.status_code == 200, response.text
    await finish(db, settings)
    results = {c["unique_id"]: c["data"] for c in callbacks_of(receiver)}
    ids = [r.json()["data"]["unique_id"] for r in (by_query, by_post, body_wins)]
    # 腾讯 and Telecom or Mobile: 13012121212 (ported to Telecom), 13312121213, 13812121212.
    assert [results[i]["matched"] for i in ids] == [3, 3, 3]
    assert [results[i]["imported"] for i in ids] == [3, 0, 0]


async def test_no_filter_takes_the_whole_pool_and_customers_stay(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    seeded: Scenario,
) -> None:
    response = await client.post(seeded.url(), json={}, headers=seeded.agent.headers)
    assert response.status_code == 200
    await finish(db, settings)
    [callback] = callbacks_of(receiver)
    assert callback["data"]["imported"] == len(SEED_ROWS)
    assert sorted(await _download(client, callback["data"]["url"])) == sorted(
        r["phone"] for r in SEED_ROWS
    )
    pool = await client.get(f"{seeded.base}/get_customer", headers=seeded.agent.headers)
    assert pool.json()["meta"]["total"] == len(SEED_ROWS)  # a copy, not a move


async def test_snapshot_excludes_customers_added_after_acceptance(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    seeded: Scenario,
    tmp_path: Path,
) -> None:
    response = await client.post(seeded.url(), json={}, headers=seeded.agent.headers)
    assert response.status_code == 200
    await load_pool(db, seeded.user_id, tmp_path, [{"phone": "13912121212", "公司": "腾讯"}])
    await finish(db, settings)
    [callback] = callbacks_of(receiver)
    assert "13912121212" not in await _download(client, callback["data"]["url"])
    assert callback["data"]["matched"] == len(SEED_ROWS)


REJECTIONS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown component", {"components": [{"id": str(uuid.uuid4()), "value": "x"}]}, "components.0.id", "unknown_component"),
    ("bad op", {"components": [{"id": "公司", "value": "x", "op": "gte"}]}, "components.0.op", "invalid_filter"),
    ("number value", {"components": [{"id": "年龄", "value": "old"}]}, "components.0.value", "invalid_filter"),
    ("date value", {"components": [{"id": "签约日期", "value": "tomorrow"}]}, "components.0.value", "invalid_filter"),
    ("malformed time", {"created_at": ["2021-06-30", "2021-06-31"]}, "created_at", "validation_failed"),
    ("one time", {"created_at": ["2021-06-30 13:20:28"]}, "created_at", "validation_failed"),
    ("reversed range", {"created_at": ["2021-07-01 00:00:00", "2021-06-30 00:00:00"]}, "created_at", "validation_failed"),
    ("operator outside the set", {"operator": [9]}, "operator.0", "validation_failed"),
    ("invalid phone", {"phone": "1301212"}, "phone", "invalid_phone"),
    ("user_id differs", {"user_id": str(uuid.uuid4())}, "user_id", "validation_failed"),
    ("components not a list", {"components": {"id": "x"}}, "components", "validation_failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field", "reason"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
async def test_rejections_up_front(
    client: httpx.AsyncClient,
    db: Database,
    receiver: Receiver,
    tmp_path: Path,
    body: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    scenario = await make_scenario(client, db, receiver, tmp_path, [])
    body = copy.deepcopy(body)  # the case table is shared by both databases' runs
    for item in body.get("components", []) if isinstance(body.get("components"), list) else []:
        item["id"] = scenario.components.get(item["id"], item["id"])
    response = await client.request(
        "GET", scenario.url(), json=body, headers=scenario.agent.headers
    )
    error = assert_error(response, 422, reason)
    assert field in error["errors"] and field in error["message"]
    batches = await client.get(f"{scenario.base}/batches", headers=scenario.agent.headers)
    assert batches.json()["meta"]["total"] == 0


async def test_no_callback_url_is_422(
    client: httpx.AsyncClient, db: Database, tmp_path: Path
) -> None:
    scenario = await make_scenario(client, db, None, tmp_path, [])
    response = await client.post(scenario.url(), json={}, headers=scenario.agent.headers)
    error = assert_error(response, 422, "callback_not_configured")
    assert "PUT /agent-api/callback/api_customer_to_task" in error["message"]
    # The task is checked before, and the filters too: their errors come first.
    unknown = await client.post(
        scenario.url(str(uuid.uuid4())), json={}, headers=scenario.agent.headers
    )
    assert_error(unknown, 404, "task_not_found")
    bad_phone = await client.post(
        scenario.url(), json={"phone": "1301212"}, headers=scenario.agent.headers
    )
    assert_error(bad_phone, 422, "invalid_phone")


async def test_task_and_user_checks(
    client: httpx.AsyncClient, db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    scenario = await make_scenario(client, db, receiver, tmp_path, [])
    headers = scenario.agent.headers
    for task_id in (str(uuid.uuid4()), "nope"):
        response = await client.post(scenario.url(task_id), json={}, headers=headers)
        assert_error(response, 404, "task_not_found")
    other = await make_scenario(client, db, receiver, tmp_path, [])
    # A task of another user of another agent: the path user is checked first (403)…
    foreign = await client.post(scenario.url(other.task_id), json={}, headers=headers)
    assert_error(foreign, 404, "task_not_found")
    stranger = await client.post(scenario.url(), json={}, headers=other.agent.headers)
    assert_error(stranger, 403, "user_forbidden")
    missing = await client.post(scenario.url(), json={})
    assert_error(missing, 401, "token_missing")
    sub = await client.post(
        scenario.url(), json={"sub_user_id": str(uuid.uuid4())}, headers=headers
    )
    assert_error(sub, 403, "sub_user_forbidden")


async def test_idempotency_key(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    seeded: Scenario,
) -> None:
    headers = {**seeded.agent.headers, "Idempotency-Key": "order-42"}
    body = {"operator": [1, 3]}
    first = await client.request("GET", seeded.url(), json=body, headers=headers)
    # The same request by another transport is the same request.
    same = await client.get(seeded.url(), params={"operator": "3", "x": "ignored"}, headers=headers)
    assert same.status_code == 409  # operator [3] is a different request
    again = await client.post(seeded.url(), params={"operator": ["3", "1"]}, headers=headers)
    assert again.json()["data"]["unique_id"] == first.json()["data"]["unique_id"]
    other = await client.post(seeded.url(), json={"operator": [2]}, headers=headers)
    assert_error(other, 409, "idempotency_conflict")
    await finish(db, settings)
    assert len(callbacks_of(receiver)) == 1
    batches = await client.get(f"{seeded.base}/batches", headers=seeded.agent.headers)
    assert batches.json()["meta"]["total"] == 1
    bad_key = await client.post(
        seeded.url(), json={}, headers={**seeded.agent.headers, "Idempotency-Key": "a b"}
    )
    assert_error(bad_key, 422, "validation_failed")


async def test_a_retry_of_an_accepted_request_gets_its_batch_whatever_changed_since(
    client: httpx.AsyncClient, seeded: Scenario
) -> None:
    headers = {**seeded.agent.headers, "Idempotency-Key": "order-43"}
    body = {"components": [{"id": seeded.components["公司"], "value": "腾讯"}]}
    first = await client.request("GET", seeded.url(), json=body, headers=headers)
    unique_id = first.json()["data"]["unique_id"]
    # Since then: the component is gone and the callback URL removed; both would be 422s.
    await client.request(
        "DELETE",
        f"{seeded.base}/component",
        json={"deletes": [seeded.components["公司"]]},
        headers=seeded.agent.headers,
    )
    await client.delete("/agent-api/callback/api_customer_to_task", headers=seeded.agent.headers)
    again = await client.post(seeded.url(), json=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["data"]["unique_id"] == unique_id
    # A new request with that key is checked as any other: the callback is gone now.
    other = await client.post(seeded.url(), json={"operator": [2]}, headers=headers)
    assert_error(other, 422, "callback_not_configured")


async def test_download_key_errors(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/agent-api/download-number", params={"key": "nope"})
    assert_error(unknown, 404, "download_key_not_found")
    checked = await client.head("/agent-api/download-number", params={"key": "nope"})
    assert checked.status_code == 404
    missing = await client.get("/agent-api/download-number")
    assert_error(missing, 422, "validation_failed")
