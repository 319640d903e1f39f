"""Call tasks: create, detail, list with filters, and who may see which task."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from highseas.db import Database
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent, make_user


@dataclass
class Account:
    headers: dict[str, str]
    base: str
    user_id: str


async def _account(db: Database, name: str = "代理A") -> Account:
    agent = await make_agent(db, name)
    user = await make_user(db, agent)
    return Account(agent.headers, f"/agent-api/user/{user.id}", str(user.id))


async def _sub_user(client: httpx.AsyncClient, account: Account, name: str = "子账户") -> str:
    response = await client.post(
        f"{account.base}/subset_users", json={"name": name}, headers=account.headers
    )
    return str(response.json()["data"]["id"])


async def _create(client: httpx.AsyncClient, account: Account, **body: object) -> dict[str, object]:
    response = await client.post(f"{account.base}/task", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


async def test_create_and_detail(client: httpx.AsyncClient, db: Database) -> None:
    account = await _account(db)
    created = await client.post(
        f"{account.base}/task",
        json={"name": " 六月回访 ", "robot_id": 7},  # unknown fields are ignored
        headers=account.headers,
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["message"] == "创建成功"
    task = body["data"]
    assert set(task) == {
        "id",
        "name",
        "status",
        "sub_user_id",
        "user_id",
        "created_at",
        "updated_at",
    }
    assert task["name"] == "六月回访" and task["status"] == 3
    assert task["sub_user_id"] is None and task["user_id"] == account.user_id
    assert len(task["created_at"]) == 19  # Y-m-d H:i:s
    uuid.UUID(task["id"])

    detail = await client.get(f"{account.base}/task/{task['id']}", headers=account.headers)
    assert detail.status_code == 200, detail.text
    assert detail.json()["data"] == {**task, "numbers": 0}

    paused = await _create(client, account, name="暂停的", status=1)
    assert paused["status"] == 1


async def test_create_rejections(client: httpx.AsyncClient, db: Database) -> None:
    account = await _account(db)
    url = f"{account.base}/task"
    for body, field in (
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "t", "status": 4}, "status"),
        ({"name": "t", "status": 0}, "status"),
        ({"name": "t", "status": "running"}, "status"),
    ):
        response = await client.post(url, json=body, headers=account.headers)
        assert field in assert_error(response, 422, "validation_failed")["errors"], body
    listed = await client.get(f"{account.base}/all_task", headers=account.headers)
    assert listed.json()["meta"]["total"] == 0


async def test_sub_user_on_create(client: httpx.AsyncClient, db: Database) -> None:
    account = await _account(db)
    sub_user_id = await _sub_user(client, account)
    task = await _create(client, account, name="子账户的任务", sub_user_id=sub_user_id)
    assert task["sub_user_id"] == sub_user_id

    # A sub-account of another user of the same agent, of another agent, unknown, not a UUID.
    sibling = await client.post("/agent-api/user", json={"name": "另一个"}, headers=account.headers)
    sibling_account = Account(
        account.headers, f"/agent-api/user/{sibling.json()['data']['id']}", ""
    )
    stranger = await _account(db, "代理B")
    foreign = [
        await _sub_user(client, sibling_account),
        await _sub_user(client, stranger),
        str(uuid.uuid4()),
        "not-a-uuid",
    ]
    for sub_user in foreign:
        response = await client.post(
            f"{account.base}/task",
            json={"name": "t", "sub_user_id": sub_user},
            headers=account.headers,
        )
        assert_error(response, 403, "sub_user_forbidden")
    listed = await client.get(f"{account.base}/all_task", headers=account.headers)
    assert listed.json()["meta"]["total"] == 1


async def test_detail_not_found_and_forbidden(client: httpx.AsyncClient, db: Database) -> None:
    account = await _account(db)
    task = await _create(client, account, name="mine")
    sibling = await client.post("/agent-api/user", json={"name": "另一个"}, headers=account.headers)
    sibling_base = f"/agent-api/user/{sibling.json()['data']['id']}"

    for path in (
        f"{account.base}/task/{uuid.uuid4()}",
        f"{account.base}/task/not-a-uuid",
        f"{sibling_base}/task/{task['id']}",  # a task of another user of the same agent
    ):
        assert_error(await client.get(path, headers=account.headers), 404, "task_not_found")

    # Another agent: the path's user is checked first, so 403 even for a real task id.
    stranger = await _account(db, "代理B")
    response = await client.get(f"{account.base}/task/{task['id']}", headers=stranger.headers)
    assert_error(response, 403, "user_forbidden")
    no_token = await client.get(f"{account.base}/task/{task['id']}")
    assert_error(no_token, 401, "token_missing")


async def test_detail_as_sub_user(client: httpx.AsyncClient, db: Database) -> None:
    account = await _account(db)
    first = await _sub_user(client, account, "一")
    second = await _sub_user(client, account, "二")
    task = await _create(client, account, name="一的任务", sub_user_id=first)
    url = f"{account.base}/task/{task['id']}"

    seen = await client.get(url, params={"sub_user_id": first}, headers=account.headers)
    assert seen.json()["data"]["id"] == task["id"]
    other = await client.get(url, params={"sub_user_id": second}, headers=account.headers)
    assert_error(other, 404, "task_not_found")
    stranger_sub = await _sub_user(client, await _account(db, "代理B"))
    foreign = await client.get(url, params={"sub_user_id": stranger_sub}, headers=account.headers)
    assert_error(foreign, 403, "sub_user_forbidden")


async def test_list_filters_and_pages(client: httpx.AsyncClient, db: Database) -> None:
    account = await _account(db)
    sub_user_id = await _sub_user(client, account)
    specs = [
        ("Spring 回访", 3, None),
        ("spring 新客", 1, None),
        ("100% 完成_A", 2, sub_user_id),
        ("1000 完成xA", 2, None),
        ("夏季 回访", 3, sub_user_id),
    ]
    ids = [
        (await _create(client, account, name=name, status=status, sub_user_id=sub))["id"]
        for name, status, sub in specs
    ]
    # Another user's task never shows.
    sibling = await client.post("/agent-api/user", json={"name": "另一个"}, headers=account.headers)
    await client.post(
        f"/agent-api/user/{sibling.json()['data']['id']}/task",
        json={"name": "Spring 回访"},
        headers=account.headers,
    )
    url = f"{account.base}/all_task"

    async def listed(params: dict[str, str | int] | str) -> list[str]:
        response = await client.get(url, params=params, headers=account.headers)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["data"]]

    newest_first = ids[::-1]
    assert await listed({}) == newest_first
    assert await listed({"status": 2}) == [ids[3], ids[2]]
    assert await listed({"status": "[1,2]"}) == [ids[3], ids[2], ids[1]]
    assert await listed("status=1&status=3") == [ids[4], ids[1], ids[0]]
    # Substring, case-sensitive and literal (% and _ are not wildcards), on both databases.
    assert await listed({"name": "Spring"}) == [ids[0]]
    assert await listed({"name": "spring"}) == [ids[1]]
    assert await listed({"name": "回访"}) == [ids[4], ids[0]]
    assert await listed({"name": "0% 完成_"}) == [ids[2]]
    assert await listed({"name": "_"}) == [ids[2]]
    assert await listed({"name": ""}) == newest_first
    assert await listed({"name": "回访", "status": 3, "sub_user_id": sub_user_id}) == [ids[4]]

    # The same filters in a JSON body on GET, and ``status`` as one value.
    body = await client.request(
        "GET", url, json={"status": 2, "name": "完成"}, headers=account.headers
    )
    assert [t["id"] for t in body.json()["data"]] == [ids[3], ids[2]]

    seen: list[str] = []
    for number in (1, 2, 3):
        response = await client.get(
            url, params={"page": number, "per_page": 2}, headers=account.headers
        )
        page = response.json()
        assert page["meta"] == {
            "has_pages": True,
            "total": 5,
            "last_page": 3,
            "current_page": number,
            "per_page": 2,
        }
        seen += [t["id"] for t in page["data"]]
    assert seen == newest_first


async def test_list_rejections(client: httpx.AsyncClient, db: Database) -> None:
    account = await _account(db)
    url = f"{account.base}/all_task"
    for params, field in (
        ({"status": 4}, "status.0"),
        ({"status": "abc"}, "status.0"),
        ({"status": "[]"}, "status"),
        ({"per_page": 1001}, "per_page"),
        ({"page": 0}, "page"),
    ):
        response = await client.get(url, params=params, headers=account.headers)
        assert field in assert_error(response, 422, "validation_failed")["errors"], params
    foreign = await client.get(
        url, params={"sub_user_id": str(uuid.uuid4())}, headers=account.headers
    )
    assert_error(foreign, 403, "sub_user_forbidden")
    stranger = await _account(db, "代理B")
    # Ownership before validation: another agent's user is 403 even with a bad filter.
    response = await client.get(url, params={"status": 4}, headers=stranger.headers)
    assert_error(response, 403, "user_forbidden")


async def test_sub_user_in_the_query_or_the_body_alike(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Contract §1: sub_user_id in the query string or the body (body wins; null is "not
    given"), on writes as on reads; a scope in the query of a write was ignored."""
    account = await _account(db)
    mine = await _sub_user(client, account)
    foreign = await _sub_user(client, await _account(db, "代理B"))
    created = await client.post(
        f"{account.base}/task",
        params={"sub_user_id": mine},
        json={"name": "q"},
        headers=account.headers,
    )
    assert created.json()["data"]["sub_user_id"] == mine
    main_task = await _create(client, account, name="主账号的任务")
    refused = await client.post(
        f"{account.base}/task",
        params={"sub_user_id": foreign},
        json={"name": "q"},
        headers=account.headers,
    )
    assert_error(refused, 403, "sub_user_forbidden")

    detail = f"{account.base}/task/{main_task['id']}"
    in_body = await client.request(
        "GET", detail, json={"sub_user_id": foreign}, headers=account.headers
    )
    assert_error(in_body, 403, "sub_user_forbidden")
    not_its = await client.request(
        "GET", detail, json={"sub_user_id": mine}, headers=account.headers
    )
    assert_error(not_its, 404, "task_not_found")

    delete = f"{detail}/number-batch-delete"
    body = {"customer_info_list": [{"phone": "13012121212"}]}
    scoped = await client.request(
        "DELETE", delete, params={"sub_user_id": mine}, json=body, headers=account.headers
    )
    assert_error(scoped, 404, "task_not_found")
    outside = await client.request(
        "DELETE", delete, params={"sub_user_id": foreign}, json=body, headers=account.headers
    )
    assert_error(outside, 403, "sub_user_forbidden")

    listed = await client.request(
        "GET",
        f"{account.base}/all_task",
        params={"sub_user_id": mine},
        json={"sub_user_id": None},
        headers=account.headers,
    )
    assert [t["name"] for t in listed.json()["data"]] == ["q"]


async def test_a_json_boolean_is_no_status_and_no_page(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Contract §1: a known field of the wrong type is a 422; lax integers took true as 1."""
    account = await _account(db)
    task = await _create(client, account, name="t")
    for path, body, field in [
        ("/task", {"name": "t", "status": True}, "status"),
        ("/all_task", {"status": [True]}, "status.0"),
        ("/all_task", {"per_page": True}, "per_page"),
        (f"/task/{task['id']}/number", {"status": [False]}, "status.0"),
        (f"/task/{task['id']}/number", {"page": True}, "page"),
    ]:
        method = "POST" if path == "/task" else "GET"
        response = await client.request(
            method, f"{account.base}{path}", json=body, headers=account.headers
        )
        error = assert_error(response, 422, "validation_failed")
        assert field in error["errors"], (path, body, error)
    # A query string's text is still a number.
    listed = await client.get(
        f"{account.base}/all_task", params={"status": "3", "per_page": "1"}, headers=account.headers
    )
    assert listed.status_code == 200 and listed.json()["meta"]["per_page"] == 1
