"""A pool batch's callback, from outside: configured over HTTP, delivered to a real receiver,
seen on identification, redelivered (issue 5 "Done when")."""

from __future__ import annotations

import json

import httpx

from highseas.config import Settings
from highseas.db import Database
from highseas.jobs import Queue
from tests.callbacks.steps import deliver, signed_by
from tests.fixtures.assertions import assert_error
from tests.fixtures.factories import make_agent, make_user, run_jobs
from tests.fixtures.receiver import Receiver, Reply

POOL_CALLBACK = "/agent-api/callback/api_async_customer"


async def test_500_503_200_then_redeliver(
    client: httpx.AsyncClient, db: Database, settings: Settings, receiver: Receiver
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    configured = await client.put(
        "/agent-api/callback/api_async_customer",
        json={"url": receiver.url()},
        headers=agent.headers,
    )
    secret = configured.json()["data"]["secret"]
    assert secret.startswith("whsec_")
    accepted = await client.post(
        f"{base}/async_customer",
        json={"data": [{"phone": "13800000001"}, {"phone": "123"}]},
        headers=agent.headers,
    )
    unique_id = accepted.json()["data"]["unique_id"]
    receiver.script(500, 503, 200)
    await run_jobs(db, settings, Queue.IMPORTS)
    await deliver(db, settings)

    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert all(signed_by(secret, r) for r in receiver.received)
    message = json.loads(receiver.received[-1].body)
    assert message["type"] == "api_async_customer" and message["unique_id"] == unique_id
    assert message["status"] == "success"
    assert (message["data"]["created"], message["data"]["rejected"]) == (1, 1)

    view = (await client.get(f"{base}/identification/{unique_id}", headers=agent.headers)).json()
    delivery = view["data"]["delivery"]
    assert delivery["state"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
    assert view["data"]["data"] == message["data"]

    again = await client.post(f"{base}/identification/{unique_id}/redeliver", headers=agent.headers)
    assert again.status_code == 200, again.text
    await deliver(db, settings)
    assert len(receiver.received) == 4
    assert receiver.received[3].headers["webhook-id"] == receiver.received[0].headers["webhook-id"]
    assert json.loads(receiver.received[3].body) == message


async def test_410_stops_and_no_callback_without_a_url(
    client: httpx.AsyncClient, db: Database, settings: Settings, receiver: Receiver
) -> None:
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    # No api_async_customer URL: the batch finishes, and no message is made.
    quiet = await client.post(
        f"{base}/async_customer", json={"data": [{"phone": "13800000001"}]}, headers=agent.headers
    )
    await run_jobs(db, settings, Queue.IMPORTS)
    view = await client.get(
        f"{base}/identification/{quiet.json()['data']['unique_id']}", headers=agent.headers
    )
    assert view.json()["data"]["state"] == "succeeded"
    assert view.json()["data"]["delivery"] is None
    not_yet = await client.post(
        f"{base}/identification/{quiet.json()['data']['unique_id']}/redeliver",
        headers=agent.headers,
    )
    assert_error(not_yet, 404, "callback_message_not_found")

    await client.put(
        "/agent-api/callback/api_async_customer",
        json={"url": receiver.url()},
        headers=agent.headers,
    )
    gone = await client.post(
        f"{base}/async_customer", json={"data": [{"phone": "13800000002"}]}, headers=agent.headers
    )
    receiver.script(Reply(status=410))
    await run_jobs(db, settings, Queue.IMPORTS)
    await deliver(db, settings)
    assert len(receiver.received) == 1
    view = await client.get(
        f"{base}/identification/{gone.json()['data']['unique_id']}", headers=agent.headers
    )
    delivery = view.json()["data"]["delivery"]
    assert delivery["state"] == "failed" and delivery["next_attempt_at"] is None
    assert [a["status_code"] for a in delivery["attempts"]] == [410]
