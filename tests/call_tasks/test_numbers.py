"""The numbers of a task: listing and batch deletion.

The import that fills tasks is another feature, so the rows are written directly here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from highseas.crypto import cipher
from highseas.db import Database
from highseas.models import Batch, BatchType, TaskNumber
from tests.fixtures.assertions import assert_error
from tests.fixtures.encryption import enable_encryption, garbled
from tests.fixtures.factories import make_agent, make_user

PHONES = [f"1380000{i:04d}" for i in range(1, 8)]  # 13800000001 …


@dataclass
class Filled:
    headers: dict[str, str]
    base: str
    task_id: str
    batch_id: str


async def _filled(client: httpx.AsyncClient, db: Database) -> Filled:
    """A task holding PHONES in order; the first four added by one batch."""
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    created = await client.post(f"{base}/task", json={"name": "回访"}, headers=agent.headers)
    task_id = uuid.UUID(created.json()["data"]["id"])
    async with db.transaction() as session:
        batch = Batch(
            agent_id=uuid.UUID(agent.agent_id),
            user_id=user.id,
            type=BatchType.CUSTOMER_TO_TASK,
            request={},
            task_id=task_id,
        )
        session.add(batch)
        await session.flush()
        for index, phone in enumerate(PHONES):
            session.add(
                TaskNumber(task_id=task_id, phone=phone, batch_id=batch.id if index < 4 else None)
            )
            await session.flush()  # one by one: ids in PHONES order
        batch_id = str(batch.id)
    return Filled(agent.headers, base, str(task_id), batch_id)


async def _phones_in(db: Database, task_id: str) -> list[str]:
    async with db.transaction() as session:
        query = (
            select(TaskNumber.phone)
            .where(TaskNumber.task_id == uuid.UUID(task_id))
            .order_by(TaskNumber.id)
        )
        return list((await session.execute(query)).scalars())


async def test_list_numbers(client: httpx.AsyncClient, db: Database) -> None:
    filled = await _filled(client, db)
    url = f"{filled.base}/task/{filled.task_id}/number"
    response = await client.get(url, headers=filled.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["total"] == 7 and body["meta"]["has_pages"] is False
    rows = body["data"]
    assert [r["phone"] for r in rows] == PHONES
    assert set(rows[0]) == {"phone", "status", "created_at", "unique_id"}
    assert rows[0]["unique_id"] == filled.batch_id and rows[0]["status"] == 0
    assert rows[-1]["unique_id"] is None
    assert len(rows[0]["created_at"]) == 19

    page = (await client.get(url, params={"page": 2, "per_page": 3}, headers=filled.headers)).json()
    assert [r["phone"] for r in page["data"]] == PHONES[3:6]
    assert page["meta"] == {
        "has_pages": True,
        "total": 7,
        "last_page": 3,
        "current_page": 2,
        "per_page": 3,
    }

    one = await client.get(url, params={"phone": "+86 138-0000-0002"}, headers=filled.headers)
    assert [r["phone"] for r in one.json()["data"]] == [PHONES[1]]
    assert one.json()["meta"]["total"] == 1
    absent = await client.get(url, params={"phone": "13900000000"}, headers=filled.headers)
    assert absent.json()["data"] == [] and absent.json()["meta"]["total"] == 0
    waiting = await client.request("GET", url, json={"status": [0]}, headers=filled.headers)
    assert waiting.json()["meta"]["total"] == 7
    other_state = await client.get(url, params={"status": 2}, headers=filled.headers)
    assert other_state.json()["meta"]["total"] == 0

    detail = await client.get(f"{filled.base}/task/{filled.task_id}", headers=filled.headers)
    assert detail.json()["data"]["numbers"] == 7


async def test_list_numbers_rejections(client: httpx.AsyncClient, db: Database) -> None:
    filled = await _filled(client, db)
    url = f"{filled.base}/task/{filled.task_id}/number"
    for phone in ("123", ""):
        response = await client.get(url, params={"phone": phone}, headers=filled.headers)
        assert "phone" in assert_error(response, 422, "invalid_phone")["errors"]
    too_big = await client.get(url, params={"per_page": 1001}, headers=filled.headers)
    assert "per_page" in assert_error(too_big, 422, "validation_failed")["errors"]
    for task in (uuid.uuid4(), "nope"):
        missing = await client.get(f"{filled.base}/task/{task}/number", headers=filled.headers)
        assert_error(missing, 404, "task_not_found")
    # The same task through another user of the same agent.
    sibling = await client.post("/agent-api/user", json={"name": "另一个"}, headers=filled.headers)
    hidden = await client.get(
        f"/agent-api/user/{sibling.json()['data']['id']}/task/{filled.task_id}/number",
        headers=filled.headers,
    )
    assert_error(hidden, 404, "task_not_found")
    stranger = await make_agent(db, "代理B")
    assert_error(await client.get(url, headers=stranger.headers), 403, "user_forbidden")


async def test_batch_delete(client: httpx.AsyncClient, db: Database) -> None:
    filled = await _filled(client, db)
    # Another task of the same user holding one of the same phones keeps it.
    other = await client.post(f"{filled.base}/task", json={"name": "别的"}, headers=filled.headers)
    other_id = other.json()["data"]["id"]
    async with db.transaction() as session:
        session.add(TaskNumber(task_id=uuid.UUID(other_id), phone=PHONES[0]))

    url = f"{filled.base}/task/{filled.task_id}/number-batch-delete"
    phones = [
        "+86 138-0000-0001",  # PHONES[0], normalised
        PHONES[0],  # the same again: deleted once, counted once
        "008613800000003",  # PHONES[2]
        "13900000000",  # valid, not in the task: not counted
    ]
    response = await client.request(
        "DELETE",
        url,
        json={"customer_info_list": [{"phone": p, "name": "张三"} for p in phones]},
        headers=filled.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "删除成功"
    assert response.json()["data"] == {"deleted": 2}
    assert await _phones_in(db, filled.task_id) == [PHONES[1], *PHONES[3:]]
    assert await _phones_in(db, other_id) == [PHONES[0]]

    again = await client.request(
        "DELETE", url, json={"customer_info_list": [{"phone": PHONES[0]}]}, headers=filled.headers
    )
    assert again.json()["data"] == {"deleted": 0}
    empty = await client.request(
        "DELETE", url, json={"customer_info_list": []}, headers=filled.headers
    )
    assert empty.json()["data"] == {"deleted": 0}
    detail = await client.get(f"{filled.base}/task/{filled.task_id}", headers=filled.headers)
    assert detail.json()["data"]["numbers"] == 5


async def test_batch_delete_rejections(client: httpx.AsyncClient, db: Database) -> None:
    filled = await _filled(client, db)
    url = f"{filled.base}/task/{filled.task_id}/number-batch-delete"

    async def delete(body: object, headers: dict[str, str] = filled.headers) -> httpx.Response:
        return await client.request("DELETE", url, json=body, headers=headers)

    bad = await delete(
        {"customer_info_list": [{"phone": PHONES[1]}, {"phone": "12345"}, {"phone": "abc"}]}
    )
    body = assert_error(bad, 422, "invalid_phone")
    assert set(body["errors"]) == {"customer_info_list.1.phone", "customer_info_list.2.phone"}
    assert "customer_info_list.1.phone" in body["message"] and "12345" in body["message"]
    # Nothing was deleted by the rejected request, the valid phone included.
    assert await _phones_in(db, filled.task_id) == PHONES

    too_many = await delete({"customer_info_list": [{"phone": PHONES[0]}] * 1001})
    assert "customer_info_list" in assert_error(too_many, 422, "validation_failed")["errors"]
    for shape, field in (
        ({}, "customer_info_list"),
        ({"customer_info_list": [{}]}, "customer_info_list.0.phone"),
        ({"customer_info_list": [{"phone": 13800000001}]}, "customer_info_list.0.phone"),
        ({"customer_info_list": ["13800000001"]}, "customer_info_list.0"),
    ):
        response = await delete(shape)
        assert field in assert_error(response, 422, "validation_failed")["errors"], shape
    assert await _phones_in(db, filled.task_id) == PHONES

    missing = await client.request(
        "DELETE",
        f"{filled.base}/task/{uuid.uuid4()}/number-batch-delete",
        json={"customer_info_list": [{"phone": PHONES[0]}]},
        headers=filled.headers,
    )
    assert_error(missing, 404, "task_not_found")
    foreign_sub = await delete(
        {"customer_info_list": [{"phone": PHONES[0]}], "sub_user_id": str(uuid.uuid4())}
    )
    assert_error(foreign_sub, 403, "sub_user_forbidden")
    stranger = await make_agent(db, "代理B")
    forbidden = await delete({"customer_info_list": [{"phone": PHONES[0]}]}, stranger.headers)
    assert_error(forbidden, 403, "user_forbidden")
    assert await _phones_in(db, filled.task_id) == PHONES


async def test_numbers_with_encryption(client: httpx.AsyncClient, db: Database) -> None:
    filled = await _filled(client, db)
    url = f"{filled.base}/task/{filled.task_id}/number"
    # Off: the flag is ignored.
    ignored = await client.get(url, params={"encryption": "true"}, headers=filled.headers)
    assert [r["phone"] for r in ignored.json()["data"]] == PHONES
    key = await enable_encryption(client, filled.headers)
    listed = await client.get(url, params={"encryption": "true"}, headers=filled.headers)
    shown = [r["phone"] for r in listed.json()["data"]]
    assert not set(shown) & set(PHONES)
    assert [cipher.decrypt(key, phone) for phone in shown] == PHONES
    plain = await client.get(url, headers=filled.headers)
    assert [r["phone"] for r in plain.json()["data"]] == PHONES

    token = cipher.encrypt(key, PHONES[2])
    one = await client.request(
        "GET", url, json={"phone": token, "encryption": True}, headers=filled.headers
    )
    assert [cipher.decrypt(key, r["phone"]) for r in one.json()["data"]] == [PHONES[2]]
    bad = await client.request(
        "GET", url, json={"phone": garbled(token), "encryption": True}, headers=filled.headers
    )
    assert list(assert_error(bad, 422, "undecryptable")["errors"]) == ["phone"]
    invalid = await client.request(
        "GET",
        url,
        json={"phone": cipher.encrypt(key, "1380000"), "encryption": True},
        headers=filled.headers,
    )
    assert "1380000" not in assert_error(invalid, 422, "invalid_phone")["message"]


async def test_batch_delete_with_encryption(client: httpx.AsyncClient, db: Database) -> None:
    filled = await _filled(client, db)
    url = f"{filled.base}/task/{filled.task_id}/number-batch-delete"
    key = await enable_encryption(client, filled.headers)
    tokens = [cipher.encrypt(key, phone) for phone in (PHONES[0], PHONES[1])]

    async def delete(phones: list[str]) -> httpx.Response:
        body = {"customer_info_list": [{"phone": p} for p in phones], "encryption": True}
        return await client.request("DELETE", url, json=body, headers=filled.headers)

    bad = await delete([tokens[0], garbled(tokens[1]), cipher.encrypt(key, "123")])
    body = assert_error(bad, 422, "undecryptable")
    assert set(body["errors"]) == {"customer_info_list.1.phone", "customer_info_list.2.phone"}
    assert "123'" not in body["message"] and "123'" not in str(body["errors"])
    assert await _phones_in(db, filled.task_id) == PHONES

    deleted = await delete(tokens)
    assert deleted.json()["data"] == {"deleted": 2}
    assert await _phones_in(db, filled.task_id) == PHONES[2:]
